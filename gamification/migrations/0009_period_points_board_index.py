"""The SQL period boards walk PeriodPoints' board index; the ledger index they summed before
serves nothing now, so ledger inserts stop paying for it."""

from django.db import migrations, models

from config.indexes import DropPerformanceIndex, PerformanceIndex


class Migration(migrations.Migration):
    # PostgreSQL builds and drops the indexes CONCURRENTLY, which cannot run in a transaction.
    atomic = False

    dependencies = [("gamification", "0008_period_points")]

    operations = [
        DropPerformanceIndex(
            model_name="activitylog",
            table="gamification_activitylog",
            index=models.Index(
                fields=["created_at", "user", "points"], name="activity_created_user"
            ),
            columns="created_at, user_id, points",
        ),
        # gamification.selectors.leaderboard_page and _position from SQL, day to month: pages,
        # counts and neighbours in board order
        PerformanceIndex(
            model_name="periodpoints",
            table="gamification_periodpoints",
            index=models.Index(
                fields=["period", "start", "-points", "reached_at", "user"],
                name="periodpoints_board",
                condition=models.Q(points__gt=0),
            ),
            columns="period, start, points DESC, reached_at, user_id",
            where="points > 0",
        ),
    ]
