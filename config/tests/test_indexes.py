"""The 28 performance indexes exist, and the accounts and products queries they serve use them."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.models import User
from products import selectors as product_selectors

pytestmark = pytest.mark.django_db

PERFORMANCE_INDEXES = {
    "accounts_usersession": ["usersession_user_seen", "usersession_seen_user"],
    "products_productmetadata": ["pmeta_ranking_count", "pmeta_view_count"],
    "products_userproductsearch": [
        "search_user_created",
        "search_created_query",
        "search_zero_created",
    ],
    "rankings_productranking": [
        "ranking_user_cat_pos",
        "ranking_cat_product",
        "ranking_created_cat",
        "ranking_cat_created",
        "ranking_product_created",
    ],
    "gamification_userachievement": [
        "userach_user_unlocked",
        "userach_user_progress",
        "userach_ach_unlocked",
        "userach_unlocked",
    ],
    "gamification_streak": [
        "streak_last_active",
        "streak_current",
        "streak_longest",
        "streak_freezes",
    ],
    "gamification_activitylog": [
        "activity_user_created",
        "activity_user_kind_day",
        "activity_kind_created",
    ],
    "gamification_periodpoints": ["periodpoints_board"],
    "gamification_pageview": [
        "pageview_product_created",
        "pageview_created_path",
        "pageview_created_product",
        "pageview_created_user",
    ],
}
# Indexes whose queries are gone, dropped by later migrations so that inserts stop paying for them.
DROPPED_INDEXES = [
    "search_query_created",
    "ranking_product_pos",
    "ranking_updated",
    "ranking_user_updated",
    "pageview_user_created",
    "pageview_created",
    "pageview_path_created",
    "activity_created_user",
]
EXPECTED_COUNTS = {
    "gamification_userachievement": 4,
    "rankings_productranking": 5,
    "gamification_pageview": 4,
    "gamification_activitylog": 3,
    "gamification_periodpoints": 1,
    "gamification_streak": 4,
    "products_userproductsearch": 3,
    "accounts_usersession": 2,
    "products_productmetadata": 2,
}


# The analytics roll-ups (recomputed from closed days, read by the analytics) are not among
# the 28: each holds its primary key, its unique key per day or month and, for one product's
# days, one lookup.
ROLLUP_INDEXES = {
    "products_searchday": set(),
    "products_searchqueryday": {"searchqueryday_day_query"},
    "gamification_pageviewday": set(),
    "gamification_activeusersweek": set(),
    "gamification_productviewday": {"productviewday_day_product", "productviewday_product_day"},
    "gamification_pathviewday": {"pathviewday_day_path"},
    "products_searchmonth": set(),
    "products_searchquerymonth": {"searchquerymonth_month_query"},
    "gamification_pageviewmonth": set(),
    "gamification_productviewmonth": {"productviewmonth_month_product"},
    "gamification_pathviewmonth": {"pathviewmonth_month_path"},
}


def index_tables() -> dict[str, str]:
    """Every index in the database: name -> table."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = current_schema()"
            )
        else:
            cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'")
        return dict(cursor.fetchall())


def assert_performance_indexes_exist() -> None:
    existing = index_tables()
    names = [name for names in PERFORMANCE_INDEXES.values() for name in names]

    assert len(names) == len(set(names)) == 28
    assert Counter({t: len(n) for t, n in PERFORMANCE_INDEXES.items()}) == Counter(EXPECTED_COUNTS)
    for table, table_names in PERFORMANCE_INDEXES.items():
        for name in table_names:
            assert existing.get(name) == table, f"index {name} missing on {table}"
    assert not set(DROPPED_INDEXES) & set(existing)


@pytest.mark.postgres
def test_the_28_indexes_exist_on_their_tables_in_postgresql():
    assert_performance_indexes_exist()


@pytest.mark.postgres
def test_roll_up_tables_hold_only_their_keys():
    existing = index_tables()

    for table, names in ROLLUP_INDEXES.items():
        on_table = {name for name, on in existing.items() if on == table}
        assert on_table == names | {f"{table}_pkey"}, table
    assert not set(ROLLUP_INDEXES) & set(PERFORMANCE_INDEXES)


def test_the_28_indexes_exist_on_their_tables():
    assert_performance_indexes_exist()


# --- EXPLAIN on PostgreSQL ------------------------------------------------------------------

USERS = 2000


def execute(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def plan_of(run_selector) -> str:
    """The plans PostgreSQL picks for the queries the selector really sends."""
    with CaptureQueriesContext(connection) as queries:
        run_selector()
    plans = []
    with connection.cursor() as cursor:
        for query in queries:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return "\n\n".join(plans)


@pytest.fixture
def many_users() -> int:
    """USERS users inserted in one statement; returns the first id."""
    execute(
        "INSERT INTO accounts_user (password, is_superuser, email, display_name, timezone, "
        "points, leaderboard_opt_out, leaderboard_excluded, is_active, is_staff, date_joined, "
        "handle) "
        "SELECT '!', false, 'bulk' || g || '@example.com', '', 'UTC', 0, false, false, true, "
        "false, now(), 'bulk-' || g FROM generate_series(1, %s) AS g",
        [USERS],
    )
    return User.objects.order_by("id").values_list("id", flat=True).first()


@pytest.fixture
def many_sessions(many_users: int) -> int:
    # 20 devices per user, last seen over the past week: few in the last minutes.
    execute(
        "INSERT INTO accounts_usersession (user_id, token_hash, session_key, device, "
        "created_at, last_seen_at) "
        "SELECT %s + g %% %s, md5(g::text), '', 'bulk', now() - interval '8 days', "
        "now() - (g %% 10080) * interval '1 minute' FROM generate_series(1, %s) AS g",
        [many_users, USERS, USERS * 20],
    )
    execute("ANALYZE accounts_usersession")
    return many_users


@pytest.fixture
def many_products() -> None:
    execute(
        "INSERT INTO products_product (name, slug, brand, category, image_url, is_active, "
        "created_at, updated_at) "
        "SELECT 'Product ' || g, 'product-' || g, 'Brand', 'category-' || g %% 20, '', "
        "g %% 25 <> 0, now(), now() FROM generate_series(1, 20000) AS g"
    )
    execute(
        "INSERT INTO products_productmetadata (product_id, description, attributes, tags, "
        "view_count, ranking_count, updated_at) "
        "SELECT id, '', '{}', '[]', (id * 7919) %% 100000, (id * 104729) %% 5000, now() "
        "FROM products_product"
    )
    execute("ANALYZE products_product")
    execute("ANALYZE products_productmetadata")


@pytest.fixture
def many_searches(many_users: int) -> int:
    # 3,000 distinct queries over a year: a day or one query is a small slice.
    execute(
        "INSERT INTO products_userproductsearch (user_id, query, result_count, created_at) "
        "SELECT %s + g %% %s, 'query ' || g %% 3000, g %% 40, "
        "now() - (g %% 365) * interval '1 day' - (g %% 1440) * interval '1 minute' "
        "FROM generate_series(1, 100000) AS g",
        [many_users, USERS],
    )
    execute("ANALYZE products_userproductsearch")
    return many_users


@pytest.mark.postgres
def test_sessions_for_user_uses_usersession_user_seen(many_sessions):
    user = User.objects.get(pk=many_sessions + 7)

    plan = plan_of(lambda: list(account_selectors.sessions_for_user(user=user)))

    assert "usersession_user_seen" in plan, plan


@pytest.mark.postgres
def test_users_seen_since_uses_usersession_seen_user(many_sessions):
    plan = plan_of(lambda: account_selectors.users_seen_since(minutes=5))

    assert "usersession_seen_user" in plan, plan


@pytest.mark.postgres
def test_products_top_ranked_uses_pmeta_ranking_count(many_products):
    plan = plan_of(lambda: list(product_selectors.products_top_ranked(limit=10)))

    assert "pmeta_ranking_count" in plan, plan


@pytest.mark.postgres
def test_products_most_viewed_uses_pmeta_view_count(many_products):
    plan = plan_of(lambda: list(product_selectors.products_most_viewed(limit=10)))

    assert "pmeta_view_count" in plan, plan


@pytest.mark.postgres
def test_searches_for_user_uses_search_user_created(many_searches):
    plan = plan_of(lambda: list(product_selectors.searches_for_user(user_id=many_searches + 3)))

    assert "search_user_created" in plan, plan


@pytest.mark.postgres
def test_popular_searches_uses_search_created_query(many_searches):
    since = timezone.now() - timedelta(hours=12)

    plan = plan_of(lambda: product_selectors.popular_searches(since=since))

    assert "search_created_query" in plan, plan


@pytest.mark.postgres
def test_searches_without_results_uses_search_zero_created(many_searches):
    since = timezone.now() - timedelta(hours=12)

    plan = plan_of(lambda: product_selectors.searches_without_results(since=since))

    assert "search_zero_created" in plan, plan
