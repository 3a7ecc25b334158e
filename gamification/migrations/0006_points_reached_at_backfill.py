from django.db import migrations

# A user reached their points with their latest scoring ledger entry, or by joining.
BACKFILL = """
UPDATE accounts_user SET points_reached_at = COALESCE((
    SELECT MAX(created_at) FROM gamification_activitylog
    WHERE gamification_activitylog.user_id = accounts_user.id
      AND gamification_activitylog.points <> 0
), date_joined)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_user_points_reached_at"),
        ("gamification", "0005_tiered_starter_achievements"),
    ]

    operations = [migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop)]
