"""A generated public handle for every user, so no public name comes from an e-mail address."""

from django.db import migrations, models

import accounts.models


def handles_fill(apps, schema_editor) -> None:
    User = apps.get_model("accounts", "User")
    for user in User.objects.filter(handle__isnull=True).only("pk").iterator():
        User.objects.filter(pk=user.pk).update(handle=accounts.models.handle_generate())


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_canonical_emails")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="handle",
            field=models.CharField(editable=False, max_length=20, null=True),
        ),
        migrations.RunPython(handles_fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="handle",
            field=models.CharField(
                default=accounts.models.handle_generate,
                editable=False,
                help_text="Shown publicly until the user chooses a display name.",
                max_length=20,
                unique=True,
            ),
        ),
    ]
