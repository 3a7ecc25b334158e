"""Existing addresses in their canonical spelling, so that old and new sign-ins meet."""

from django.db import migrations, models


def canonical_emails(apps, schema_editor) -> None:
    from accounts.models import normalize_email

    User = apps.get_model("accounts", "User")
    taken = set(User.objects.values_list("email", flat=True))
    for user in User.objects.only("email").iterator():
        try:
            email = normalize_email(user.email)
        except ValueError:
            continue
        # Two accounts already share the mailbox: an employee merges them, not a migration.
        if email == user.email or email in taken:
            continue
        taken.add(email)
        User.objects.filter(pk=user.pk).update(email=email)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_login_failure")]

    operations = [
        migrations.AlterField(
            model_name="user",
            name="email",
            field=models.EmailField(
                help_text="Stored canonically: lower case, the domain in ASCII.",
                max_length=254,
                unique=True,
            ),
        ),
        migrations.RunPython(canonical_emails, migrations.RunPython.noop),
    ]
