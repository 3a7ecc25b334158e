"""The gamification app's performance indexes, each beside the query it serves."""

from django.db import migrations, models

from config.indexes import PerformanceIndex


class Migration(migrations.Migration):
    # PostgreSQL builds the indexes CONCURRENTLY, which cannot run inside a transaction.
    atomic = False

    dependencies = [("gamification", "0001_initial")]

    operations = [
        # gamification.selectors.achievements_for_user: a user's unlocked achievements, newest first
        PerformanceIndex(
            model_name="userachievement",
            table="gamification_userachievement",
            index=models.Index(
                fields=["user", "-unlocked_at"],
                name="userach_user_unlocked",
                condition=models.Q(unlocked_at__isnull=False),
            ),
            columns="user_id, unlocked_at DESC",
            where="unlocked_at IS NOT NULL",
        ),
        # gamification.selectors.achievements_in_progress: locked achievements, closest first
        PerformanceIndex(
            model_name="userachievement",
            table="gamification_userachievement",
            index=models.Index(
                fields=["user", "-progress"],
                name="userach_user_progress",
                condition=models.Q(unlocked_at__isnull=True),
            ),
            columns="user_id, progress DESC",
            where="unlocked_at IS NULL",
        ),
        # gamification.selectors.achievement_unlock_counts: users per unlocked achievement
        PerformanceIndex(
            model_name="userachievement",
            table="gamification_userachievement",
            index=models.Index(
                fields=["achievement", "unlocked_at"],
                name="userach_ach_unlocked",
                condition=models.Q(unlocked_at__isnull=False),
            ),
            columns="achievement_id, unlocked_at",
            where="unlocked_at IS NOT NULL",
        ),
        # gamification.selectors.achievements_unlocked_since: home stats, unlocked today
        PerformanceIndex(
            model_name="userachievement",
            table="gamification_userachievement",
            index=models.Index(
                fields=["unlocked_at"],
                name="userach_unlocked",
                condition=models.Q(unlocked_at__isnull=False),
            ),
            columns="unlocked_at",
            where="unlocked_at IS NOT NULL",
        ),
        # gamification.selectors.active_streak_count: home stats, streaks still alive
        PerformanceIndex(
            model_name="streak",
            table="gamification_streak",
            index=models.Index(
                fields=["last_active_date"],
                name="streak_last_active",
                condition=models.Q(current_length__gt=0),
            ),
            columns="last_active_date",
            where="current_length > 0",
        ),
        # gamification.selectors.top_streaks: the longest running streaks
        PerformanceIndex(
            model_name="streak",
            table="gamification_streak",
            index=models.Index(
                fields=["-current_length", "user"],
                name="streak_current",
                condition=models.Q(current_length__gt=0),
            ),
            columns="current_length DESC, user_id",
            where="current_length > 0",
        ),
        # gamification.selectors.streak_records: the longest streaks ever
        PerformanceIndex(
            model_name="streak",
            table="gamification_streak",
            index=models.Index(fields=["-longest_length", "user"], name="streak_longest"),
            columns="longest_length DESC, user_id",
        ),
        # gamification.selectors.streaks_with_freezes: alive streaks holding a freeze
        PerformanceIndex(
            model_name="streak",
            table="gamification_streak",
            index=models.Index(
                fields=["last_active_date", "freezes_left"],
                name="streak_freezes",
                condition=models.Q(freezes_left__gt=0),
            ),
            columns="last_active_date, freezes_left",
            where="freezes_left > 0",
        ),
        # gamification.selectors.activity_for_user: a user's ledger, newest first
        PerformanceIndex(
            model_name="activitylog",
            table="gamification_activitylog",
            index=models.Index(fields=["user", "-created_at"], name="activity_user_created"),
            columns="user_id, created_at DESC",
        ),
        # gamification.selectors.paid_submissions_on: paid submissions on one local day
        PerformanceIndex(
            model_name="activitylog",
            table="gamification_activitylog",
            index=models.Index(
                fields=["user", "kind", "local_date"], name="activity_user_kind_day"
            ),
            columns="user_id, kind, local_date",
        ),
        # gamification.selectors: the SQL period boards, points per user in a period
        PerformanceIndex(
            model_name="activitylog",
            table="gamification_activitylog",
            index=models.Index(
                fields=["created_at", "user", "points"], name="activity_created_user"
            ),
            columns="created_at, user_id, points",
        ),
        # gamification.selectors.activity_count_since: home stats, submissions today
        PerformanceIndex(
            model_name="activitylog",
            table="gamification_activitylog",
            index=models.Index(fields=["kind", "created_at"], name="activity_kind_created"),
            columns="kind, created_at",
        ),
        # gamification.selectors.product_view_counts: views of a product over a window
        PerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(fields=["product", "created_at"], name="pageview_product_created"),
            columns="product_id, created_at",
        ),
        # gamification.selectors.page_views_for_user: a user's recent views
        PerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(fields=["user", "-created_at"], name="pageview_user_created"),
            columns="user_id, created_at DESC",
        ),
        # gamification.selectors.traffic_since: all views since a time
        PerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(fields=["created_at"], name="pageview_created"),
            columns="created_at",
        ),
        # gamification.selectors.top_paths: views per path over a window
        PerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(fields=["path", "created_at"], name="pageview_path_created"),
            columns="path, created_at",
        ),
    ]
