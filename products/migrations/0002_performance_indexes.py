"""The products app's performance indexes, each beside the query it serves."""

from django.db import migrations, models

from config.indexes import PerformanceIndex


class Migration(migrations.Migration):
    # PostgreSQL builds the indexes CONCURRENTLY, which cannot run inside a transaction.
    atomic = False

    dependencies = [("products", "0001_initial")]

    operations = [
        # products.selectors.products_top_ranked: most ranked products (home stats)
        PerformanceIndex(
            model_name="productmetadata",
            table="products_productmetadata",
            index=models.Index(fields=["-ranking_count", "product"], name="pmeta_ranking_count"),
            columns="ranking_count DESC, product_id",
        ),
        # products.selectors.products_most_viewed: most viewed products
        PerformanceIndex(
            model_name="productmetadata",
            table="products_productmetadata",
            index=models.Index(fields=["-view_count", "product"], name="pmeta_view_count"),
            columns="view_count DESC, product_id",
        ),
        # products.selectors.searches_for_user: a user's searches, newest first; the searches-made count
        PerformanceIndex(
            model_name="userproductsearch",
            table="products_userproductsearch",
            index=models.Index(fields=["user", "-created_at"], name="search_user_created"),
            columns="user_id, created_at DESC",
        ),
        # products.selectors.popular_searches: most searched queries over a window
        PerformanceIndex(
            model_name="userproductsearch",
            table="products_userproductsearch",
            index=models.Index(fields=["created_at", "query"], name="search_created_query"),
            columns="created_at, query",
        ),
        # products.selectors.search_history_for_query: when one query was searched
        PerformanceIndex(
            model_name="userproductsearch",
            table="products_userproductsearch",
            index=models.Index(fields=["query", "-created_at"], name="search_query_created"),
            columns="query, created_at DESC",
        ),
    ]
