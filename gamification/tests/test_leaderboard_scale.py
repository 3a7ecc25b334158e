"""The SQL leaderboards (while Redis is away) at scale: counted and paged through indexes,
never a scan of the users or the ledger."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import UserFactory
from gamification import selectors, services
from gamification.boards import period_of
from gamification.models import ActivityKind, PeriodPoints

MILLION = 1_000_000


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def oracle_count(condition: str) -> int:
    """The same count the plain way (a table scan is fine for the test's own answer)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM accounts_user WHERE is_active AND NOT is_staff AND points > 0"
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
    top, middle, bottom = (UserFactory(points=p) for p in (99_999, 50_000, 1))
    ranked = oracle_count("TRUE")
    # Nine of the ranked bulk users have 0 points: they are not on the board.
    assert ranked == MILLION - MILLION // 50 - MILLION // 97 + MILLION // (50 * 97) + 3 - 9
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


def plans(read) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        read()
    return [explain(q["sql"]) for q in queries.captured_queries]


USERS = 200_000


@pytest.mark.postgres
@pytest.mark.slow
# Committed rows, so that VACUUM can mark them all-visible as autovacuum does on a live table:
# an index-only count then never visits the table.
@pytest.mark.django_db(transaction=True)
def test_sql_boards_page_and_position_never_scan_users_or_the_ledger():
    # 200,000 players with two ledger rows each over the last 200 days; one in a hundred
    # scored today as well. One statement per table, then fresh statistics.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, email, display_name, timezone,
                points, points_reached_at, leaderboard_opt_out, leaderboard_excluded,
                is_active, is_staff, date_joined, handle)
            SELECT '!', false, 'p' || g || '@example.com', '', 'UTC', 1 + g %% 5000,
                now() - (g %% 200) * interval '1 day', g %% 50 = 0, false, true, false, now(),
                'bulk-' || g
            FROM generate_series(1, %s) AS g
            """,
            [USERS],
        )
        cursor.execute(
            """
            INSERT INTO gamification_activitylog (user_id, kind, points, local_date, data,
                reason, created_at)
            SELECT u.id, 'adjustment', 1 + (u.id + k) % 50, current_date, '{}', '',
                CASE WHEN k = 2 AND u.id % 100 = 0 THEN now() - interval '1 minute'
                     ELSE now() - (2 + (u.id + 7 * k) % 200) * interval '1 day' END
            FROM accounts_user AS u, generate_series(1, 2) AS k
            """
        )
        cursor.execute("VACUUM ANALYZE accounts_user")
        cursor.execute("VACUUM ANALYZE gamification_activitylog")
    # The bulk ledger went around the writes: the repair tool sums it into the period totals.
    for window in ("day", "week", "month"):
        assert services.period_points_rebuild(window=window) > 0
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE gamification_periodpoints")
    player = UserFactory()
    services.points_award(
        user=player, kind=ActivityKind.ADJUSTMENT, points=2500, local_date=date.today()
    )
    # The beat counts each board's ladder along the board's index, and stores it for the reads.
    with CaptureQueriesContext(connection) as queries:
        services.leaderboard_ladders_store()
    walks = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    assert len(walks) == 4
    for sql in walks:
        plan = explain(sql)
        assert "Seq Scan on accounts_user" not in plan, plan
        assert "Seq Scan on gamification_periodpoints" not in plan, plan
    reads = {}
    for window in ("all", "day", "week", "month"):
        reads[f"{window} top page"] = lambda w=window: selectors.leaderboard_page(window=w)
        reads[f"{window} deep page"] = lambda w=window: selectors.leaderboard_page(
            window=w, offset=1000, limit=100
        )
        reads[f"{window} position"] = lambda w=window: selectors.leaderboard_position(
            user=player, window=w, around=25
        )
    period_counts = 0
    for name, read in reads.items():
        read_plans = plans(read)
        for plan in read_plans:
            for table in ("accounts_user", "gamification_activitylog", "gamification_periodpoints"):
                assert f"Seq Scan on {table}" not in plan, f"{name}:\n{plan}"
            assert "gamification_activitylog" not in plan, f"{name}:\n{plan}"
        if not name.startswith("all"):
            # The board's ladder is read from its row, a rank near it counted live.
            counts = [plan for plan in read_plans if "Aggregate" in plan]
            period_counts += len(counts)
            for plan in counts:
                assert "Index Only Scan using periodpoints_board" in plan, f"{name}:\n{plan}"
    assert period_counts >= 6
    # The answers are the ledger's: the player's rank among the period sums of ranked users.
    for window in ("day", "week"):
        since = period_of(window=window, at=timezone.now()).start
        position = selectors.leaderboard_position(user=player, window=window, around=25)
        assert position["source"] == "sql"
        assert position["rank"] == period_oracle(since, "> 2500") + 1, window
        assert position["total"] == period_oracle(since, "> 0"), window
        assert [e["user_id"] for e in position["around"]].count(player.pk) == 1
    # Once every period is past, the housekeeping deletes the totals along their index too.
    stored = PeriodPoints.objects.count()
    with CaptureQueriesContext(connection) as queries:
        pruned = services.period_points_prune(keep=1, now=timezone.now() + timedelta(days=100))
    assert pruned == stored > USERS // 100
    assert not PeriodPoints.objects.exists()
    statements = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith(("SELECT", "DELETE"))
    ]
    assert sum(sql.startswith("DELETE") for sql in statements) >= 1
    for sql in statements:
        plan = explain(sql)
        assert "Seq Scan" not in plan, plan
        assert not sql.startswith("DELETE") or "periodpoints_user" in plan, plan


def period_oracle(since, condition: str) -> int:
    """Ranked players whose ledger sum since a time meets a condition, the plain way."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT a.user_id FROM gamification_activitylog AS a"
            " JOIN accounts_user AS u ON u.id = a.user_id WHERE u.is_active AND NOT u.is_staff"
            " AND NOT u.leaderboard_opt_out AND NOT u.leaderboard_excluded"
            f" AND a.created_at >= %s GROUP BY a.user_id HAVING SUM(a.points) {condition}) AS b",
            [since],
        )
        return cursor.fetchone()[0]
