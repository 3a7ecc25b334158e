"""The leaderboard position with a million users: counted through an index, never the table."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
from gamification import selectors

MILLION = 1_000_000


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def oracle_count(condition: str) -> int:
    """The same count the plain way (a table scan is fine for the test's own answer)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM accounts_user WHERE is_active AND NOT is_staff"
            f" AND NOT leaderboard_opt_out AND NOT leaderboard_excluded AND {condition}"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db
def test_position_among_a_million_users_counts_through_the_index():
    # One statement. Ids, e-mails and scores ascend together, so every index grows at its right
    # edge and the load stays quick; one user in 50 opted out and one in 97 inactive.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, email, display_name, timezone,
                points, leaderboard_opt_out, leaderboard_excluded, is_active, is_staff, date_joined,
                handle)
            SELECT '!', false, 'u' || lpad(g::text, 7, '0') || '@example.com', '', 'UTC',
                (%s - g) / 10, g %% 50 = 0, false, g %% 97 <> 0, false, now(), 'bulk-' || g
            FROM generate_series(1, %s) AS g
            """,
            [MILLION, MILLION],
        )
        cursor.execute("ANALYZE accounts_user")
    top, middle, bottom = (UserFactory(points=p) for p in (99_999, 50_000, 0))
    ranked = oracle_count("TRUE")
    assert ranked == MILLION - MILLION // 50 - MILLION // 97 + MILLION // (50 * 97) + 3
    plans = {}
    for name, user in (("top", top), ("middle", middle), ("bottom", bottom)):
        with CaptureQueriesContext(connection) as queries:
            position = selectors.leaderboard_position(user=user, window="all")
        assert position["total"] == ranked
        assert position["rank"] == oracle_count(f"points > {user.points}") + 1
        assert [e["user_id"] for e in position["around"]].count(user.pk) == 1
        plans[name] = [explain(q["sql"]) for q in queries.captured_queries]
    for name, user_plans in plans.items():
        for plan in user_plans:
            assert "Seq Scan" not in plan, f"{name}: {plan}"
        counts = [plan for plan in user_plans if "Aggregate" in plan]
        assert counts and all("user_leaderboard" in plan for plan in counts), (name, counts)
