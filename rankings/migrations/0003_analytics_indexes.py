"""Rankings per category per day and a product's rank movement get their indexes; nothing
reads the latest rankings by update time, and a product's stats read the movement's index."""

from django.db import migrations, models

from config.indexes import DropPerformanceIndex, PerformanceIndex


class Migration(migrations.Migration):
    # PostgreSQL builds and drops the indexes CONCURRENTLY, which cannot run in a transaction.
    atomic = False

    dependencies = [("rankings", "0002_performance_indexes")]

    operations = [
        DropPerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(fields=["-updated_at"], name="ranking_updated"),
            columns="updated_at DESC",
        ),
        DropPerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(fields=["user", "-updated_at"], name="ranking_user_updated"),
            columns="user_id, updated_at DESC",
        ),
        DropPerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(fields=["product", "position"], name="ranking_product_pos"),
            columns="product_id, position",
        ),
        # rankings.selectors.rankings_per_category_per_day: rankers per category and day
        PerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(
                fields=["created_at", "category"],
                name="ranking_created_cat",
                condition=models.Q(position=1),
            ),
            columns="created_at, category",
            where="position = 1",
        ),
        # rankings.selectors.rankings_per_category_per_day: the same, of one category
        PerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(
                fields=["category", "created_at"],
                name="ranking_cat_created",
                condition=models.Q(position=1),
            ),
            columns="category, created_at",
            where="position = 1",
        ),
        # rankings.selectors.product_rank_movement and ranking_stats_for_product: a product's
        # positions by day
        PerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(
                fields=["product", "created_at", "position"], name="ranking_product_created"
            ),
            columns="product_id, created_at, position",
        ),
    ]
