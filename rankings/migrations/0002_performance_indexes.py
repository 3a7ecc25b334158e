"""The rankings app's performance indexes, each beside the query it serves."""

from django.db import migrations, models

from config.indexes import PerformanceIndex


class Migration(migrations.Migration):
    # PostgreSQL builds the indexes CONCURRENTLY, which cannot run inside a transaction.
    atomic = False

    dependencies = [("rankings", "0001_initial")]

    operations = [
        # rankings.selectors.rankings_for_user: a user's ranking of a category, in order; its replacement
        PerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(
                fields=["user", "category", "position"], name="ranking_user_cat_pos"
            ),
            columns="user_id, category, position",
        ),
        # rankings.selectors.ranking_stats_for_product: rankers, average position, first places
        PerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(fields=["product", "position"], name="ranking_product_pos"),
            columns="product_id, position",
        ),
        # rankings.selectors.ranking_stats_for_category: Borda totals per product of a category
        PerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(
                fields=["category", "product", "points"], name="ranking_cat_product"
            ),
            columns="category, product_id, points",
        ),
        # rankings.selectors.recent_rankings: the latest rankings across the community
        PerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(fields=["-updated_at"], name="ranking_updated"),
            columns="updated_at DESC",
        ),
        # rankings.selectors.recent_rankings_for_user: a user's most recently updated rankings
        PerformanceIndex(
            model_name="productranking",
            table="rankings_productranking",
            index=models.Index(fields=["user", "-updated_at"], name="ranking_user_updated"),
            columns="user_id, updated_at DESC",
        ),
    ]
