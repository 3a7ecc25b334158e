"""Searches with no result get their index; nothing asks when one query was searched."""

from django.db import migrations, models

from config.indexes import DropPerformanceIndex, PerformanceIndex


class Migration(migrations.Migration):
    # PostgreSQL builds and drops the indexes CONCURRENTLY, which cannot run in a transaction.
    atomic = False

    dependencies = [("products", "0002_performance_indexes")]

    operations = [
        DropPerformanceIndex(
            model_name="userproductsearch",
            table="products_userproductsearch",
            index=models.Index(fields=["query", "-created_at"], name="search_query_created"),
            columns="query, created_at DESC",
        ),
        # products.selectors.searches_without_results: queries that found nothing over a window
        PerformanceIndex(
            model_name="userproductsearch",
            table="products_userproductsearch",
            index=models.Index(
                fields=["created_at", "query"],
                name="search_zero_created",
                condition=models.Q(result_count=0),
            ),
            columns="created_at, query",
            where="result_count = 0",
        ),
    ]
