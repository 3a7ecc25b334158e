"""Page-view analytics get their indexes: views per day and per path, most viewed products and
active users. Nothing reads one user's views, and the created_at index is now a prefix of one."""

from django.db import migrations, models

from config.indexes import DropPerformanceIndex, PerformanceIndex


class Migration(migrations.Migration):
    # PostgreSQL builds and drops the indexes CONCURRENTLY, which cannot run in a transaction.
    atomic = False

    dependencies = [("gamification", "0006_points_reached_at_backfill")]

    operations = [
        DropPerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(fields=["user", "-created_at"], name="pageview_user_created"),
            columns="user_id, created_at DESC",
        ),
        DropPerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(fields=["created_at"], name="pageview_created"),
            columns="created_at",
        ),
        DropPerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(fields=["path", "created_at"], name="pageview_path_created"),
            columns="path, created_at",
        ),
        # gamification.selectors.page_views_per_day and top_paths: views by time, with the path
        PerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(fields=["created_at", "path"], name="pageview_created_path"),
            columns="created_at, path",
        ),
        # gamification.selectors.products_viewed_most: views per product over a window
        PerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(
                fields=["created_at", "product"],
                name="pageview_created_product",
                condition=models.Q(product__isnull=False),
            ),
            columns="created_at, product_id",
            where="product_id IS NOT NULL",
        ),
        # gamification.selectors.active_users_per_day and _per_week: signed-in viewers
        PerformanceIndex(
            model_name="pageview",
            table="gamification_pageview",
            index=models.Index(
                fields=["created_at", "user"],
                name="pageview_created_user",
                condition=models.Q(user__isnull=False),
            ),
            columns="created_at, user_id",
            where="user_id IS NOT NULL",
        ),
    ]
