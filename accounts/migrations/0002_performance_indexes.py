"""The accounts app's performance indexes, each beside the query it serves."""

from django.db import migrations, models

from config.indexes import PerformanceIndex


class Migration(migrations.Migration):
    # PostgreSQL builds the indexes CONCURRENTLY, which cannot run inside a transaction.
    atomic = False

    dependencies = [("accounts", "0001_initial")]

    operations = [
        # accounts.selectors.sessions_for_user: a user's devices, most recently seen first
        PerformanceIndex(
            model_name="usersession",
            table="accounts_usersession",
            index=models.Index(fields=["user", "-last_seen_at"], name="usersession_user_seen"),
            columns="user_id, last_seen_at DESC",
        ),
        # accounts.selectors.users_seen_since: users seen in the last minutes (online now without Redis)
        PerformanceIndex(
            model_name="usersession",
            table="accounts_usersession",
            index=models.Index(fields=["last_seen_at", "user"], name="usersession_seen_user"),
            columns="last_seen_at, user_id",
        ),
    ]
