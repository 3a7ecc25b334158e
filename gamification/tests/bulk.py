"""Bulk test data for query-plan tests: one INSERT ... SELECT generate_series per table."""

from collections.abc import Callable

from django.db import connection
from django.test.utils import CaptureQueriesContext


def sql(statement: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def bulk_users(count: int) -> int:
    """Insert `count` users; returns the first id (one statement, so the ids are consecutive)."""
    rows = sql(
        """
        INSERT INTO accounts_user (password, is_superuser, email, display_name, timezone, points,
            leaderboard_opt_out, leaderboard_excluded, is_active, is_staff, date_joined, handle)
        SELECT '!', false, 'bulk' || g || '@example.com', 'Bulk ' || g, 'UTC', g %% 1000,
            false, false, true, false, now(), 'bulk-' || g
        FROM generate_series(1, %s) AS g
        RETURNING id
        """,
        [count],
    )
    return min(row[0] for row in rows)


def bulk_products(count: int, *, categories: int) -> int:
    """Insert `count` active products spread over `categories` categories; returns the first id."""
    rows = sql(
        """
        INSERT INTO products_product (name, slug, brand, category, image_url, is_active,
            created_at, updated_at)
        SELECT 'Bulk ' || g, 'bulk-' || g, 'Acme', 'category-' || (g %% %s), '', true, now(), now()
        FROM generate_series(1, %s) AS g
        RETURNING id
        """,
        [categories, count],
    )
    return min(row[0] for row in rows)


def analyze(*tables: str) -> None:
    for table in tables:
        sql(f"ANALYZE {table}")


def plans_of(call: Callable[[], object]) -> str:
    """Run a selector and EXPLAIN every query it ran, as PostgreSQL would plan them now."""
    with CaptureQueriesContext(connection) as queries:
        call()
    return "\n\n".join(
        "\n".join(row[0] for row in sql(f"EXPLAIN {query['sql']}"))
        for query in queries.captured_queries
    )
