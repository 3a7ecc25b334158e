"""The period totals (PeriodPoints) the SQL period boards read: written with each ledger row,
set back to the ledger's sums by the rebuild, ranked exactly from a board's ladder (stored, so
that no read walks a whole board), and pruned once their periods are past."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import UserFactory
from gamification import selectors, services
from gamification.boards import period_of
from gamification.models import ActivityKind, ActivityLog, BoardLadder, PeriodPoints
from gamification.tasks import leaderboard_ladders_store

pytestmark = pytest.mark.django_db

PERIODS = ("day", "week", "month")


def award(user, points, *, when):
    services.points_award(
        user=user, kind=ActivityKind.ADJUSTMENT, points=points, local_date=date.today(), now=when
    )


def stored(period) -> dict[int, tuple]:
    return {
        pk: (points, at)
        for pk, points, at in PeriodPoints.objects.filter(
            period=period.window, start=period.start
        ).values_list("user_id", "points", "reached_at")
    }


def from_ledger(period) -> dict[int, tuple]:
    users = list(ActivityLog.objects.values_list("user_id", flat=True).distinct())
    return selectors.ledger_period_totals(period=period, user_ids=users)


def test_each_ledger_write_moves_the_totals_of_its_day_week_and_month():
    # Sunday 31 May, Monday 1 June 2026 (a new week and month), and a negative adjustment.
    sunday = datetime(2026, 5, 31, 23, 59, 30, 500_000, tzinfo=UTC)
    monday = datetime(2026, 6, 1, 0, 0, 10, tzinfo=UTC)
    one, two = UserFactory(), UserFactory()
    award(one, 10, when=sunday)
    award(one, 5, when=monday)
    award(two, 7, when=monday - timedelta(hours=1))
    award(two, -7, when=monday + timedelta(seconds=5))
    for at in (sunday, monday):
        for window in PERIODS:
            period = period_of(window=window, at=at)
            assert stored(period) == from_ledger(period), (window, at)
    june = period_of(window="month", at=monday)
    assert stored(june)[one.pk] == (5, monday)
    # Whole seconds, as the Redis boards keep them.
    assert stored(period_of(window="day", at=sunday))[one.pk] == (10, sunday.replace(microsecond=0))
    assert stored(period_of(window="week", at=sunday)) == {
        one.pk: (10, sunday.replace(microsecond=0)),
        two.pk: (7, monday - timedelta(hours=1)),
    }
    # Below 0 in June: the row stays, off the board.
    assert stored(june)[two.pk] == (-7, monday + timedelta(seconds=5))
    assert selectors.leaderboard_page(window="month", now=monday)["total"] == 1


def test_a_rolled_back_write_leaves_the_totals_as_they_were():
    user = UserFactory()
    award(user, 3, when=timezone.now())
    with pytest.raises(RuntimeError), transaction.atomic():
        award(user, 50, when=timezone.now())
        raise RuntimeError
    assert stored(period_of(window="day", at=timezone.now()))[user.pk][0] == 3


def test_the_rebuild_sets_wrong_missing_and_stray_totals_back_to_the_ledger():
    now = timezone.now()
    users = [UserFactory() for _ in range(4)]
    for points, user in zip((4, 8, 15, 16), users, strict=True):
        award(user, points, when=now - timedelta(seconds=points))
    day = period_of(window="day", at=now)
    right = stored(day)
    PeriodPoints.objects.filter(user=users[0]).update(points=999)
    PeriodPoints.objects.filter(user=users[1], period="day").delete()
    PeriodPoints.objects.create(user=users[2], period="day", start=day.start - timedelta(days=1))
    stray = UserFactory()
    PeriodPoints.objects.create(user=stray, period="day", start=day.start, points=42)
    assert services.period_points_rebuild(window="day") == 3
    assert stored(day) == right
    assert services.period_points_rebuild(window="day") == 0
    # The day before is not the rebuilt period: left as it was.
    assert PeriodPoints.objects.filter(user=users[2], start=day.start - timedelta(days=1)).exists()
    assert services.period_points_rebuild(window="week") == 1
    assert services.period_points_rebuild(window="month") == 1


@pytest.mark.postgres
def test_the_rebuild_locks_only_the_users_whose_total_differs_from_the_ledger():
    now = timezone.now()
    users = [UserFactory() for _ in range(3)]
    for user in users:
        award(user, 5, when=now)
    PeriodPoints.objects.filter(user=users[1], period="day").update(points=999)

    with CaptureQueriesContext(connection) as queries:
        assert services.period_points_rebuild(window="day") == 1
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert len(locks) == 1
    assert f"IN ({users[1].pk})" in locks[0]

    with CaptureQueriesContext(connection) as queries:
        assert services.period_points_rebuild(window="day") == 0
    assert not [q for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]


@pytest.mark.parametrize("window", ["all", "week"])
def test_ranks_from_the_ladder_are_exact_at_every_place(window, settings, monkeypatch):
    # Four rungs over 60 players in runs of ties: most counts start from a rung.
    monkeypatch.setattr(selectors, "LADDER_RUNGS", 4)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    now = timezone.now()
    users = [UserFactory() for _ in range(60)]
    for index, user in enumerate(users):
        award(user, 1 + index // 3 + (index % 7 == 0) * 5, when=now - timedelta(seconds=index))
    points = {
        user.pk: (
            user.points
            if window == "all"
            else selectors._user_period_points(user=user, period=period_of(window=window, at=now))
        )
        for user in users
    }
    board = selectors._sql_board(period_of(window=window, at=now))
    assert len(selectors._ladder(board).rungs) > 3
    for user in users:
        position = selectors.leaderboard_position(user=user, window=window, around=1)
        better = sum(1 for p in points.values() if p > points[user.pk])
        assert (position["rank"], position["total"]) == (better + 1, 60), user.pk
    page = selectors.leaderboard_page(window=window, offset=30, limit=5)["entries"]
    for entry in page:
        assert entry["rank"] == 1 + sum(1 for p in points.values() if p > entry["points"])


def test_the_pruning_keeps_the_current_and_the_last_closed_periods_only(
    settings, django_assert_num_queries, monkeypatch
):
    # Tuesday 2 June 2026: the day, ISO week and month before it all closed within 2 days.
    now = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)
    users = [UserFactory() for _ in range(3)]
    # Each window's periods, newest first: the current, two closed ones, one long gone.
    starts = {
        window: [datetime(*ymd, tzinfo=UTC) for ymd in dates]
        for window, dates in {
            "day": [(2026, 6, 2), (2026, 6, 1), (2026, 5, 31), (2025, 12, 1)],
            "week": [(2026, 6, 1), (2026, 5, 25), (2026, 5, 18)],
            "month": [(2026, 6, 1), (2026, 5, 1), (2026, 4, 1), (2025, 1, 1)],
        }.items()
    }
    for user in users:
        for window, dates in starts.items():
            for start in dates:
                PeriodPoints.objects.create(user=user, period=window, start=start, points=3)

    def kept() -> set[tuple[str, datetime]]:
        return set(PeriodPoints.objects.values_list("period", "start").distinct())

    current = {(w, period_of(window=w, at=now).start) for w in PERIODS}
    assert current == {(w, dates[0]) for w, dates in starts.items()}
    page = selectors.leaderboard_page(window="week", now=now)
    # Two users per statement: one query for the users' range, one per range.
    monkeypatch.setattr(services, "PRUNE_USERS", 2)
    with django_assert_num_queries(1 + 2):
        assert services.period_points_prune(keep=2, now=now) == 3 * 2
    assert kept() == {(w, start) for w, dates in starts.items() for start in dates[:3]}
    assert services.period_points_prune(keep=0, now=now) == 3 * 3
    assert kept() == {(w, start) for w, dates in starts.items() for start in dates[:2]}
    after = selectors.leaderboard_page(window="week", now=now)
    assert (after["total"], after["entries"]) == (page["total"], page["entries"])
    assert page["total"] == 3
    assert services.period_points_prune(keep=1, now=now) == 0
    # The housekeeping's task, with the setting's retention, at the real time: months later.
    settings.PERIOD_POINTS_KEEP_PAST = 1
    from gamification.tasks import period_points_prune

    assert period_points_prune.apply().get() == 3 * 2 * 3
    assert not PeriodPoints.objects.exists()


def no_redis(settings) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def board_walks(queries) -> list[str]:
    """The statements that walked a whole board: a ladder's count."""
    return [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]


@pytest.mark.parametrize("window", ["all", "week"])
def test_the_fallback_ranks_from_the_stored_ladder_without_walking_the_board(
    window, settings, monkeypatch
):
    no_redis(settings)
    monkeypatch.setattr(selectors, "LADDER_RUNGS", 4)
    now = timezone.now()
    users = [UserFactory() for _ in range(30)]
    for index, user in enumerate(users):
        award(user, 1 + index // 2, when=now - timedelta(seconds=index))
    assert services.leaderboard_ladders_store() == 4
    with CaptureQueriesContext(connection) as queries:
        page = selectors.leaderboard_page(window=window, offset=10, limit=5)
        position = selectors.leaderboard_position(user=users[7], window=window, around=2)
    assert board_walks(queries) == []
    assert page["source"] == position["source"] == "sql"
    assert [e["rank"] for e in page["entries"]] == [11, 11, 13, 13, 15]
    assert (position["rank"], position["total"]) == (23, 30)


def test_a_stale_ladder_is_used_and_counted_again_once_off_the_request_path(settings, monkeypatch):
    no_redis(settings)
    started: list = []

    class Thread:
        def __init__(self, *, target, name, daemon):
            self.target = target

        def start(self):
            started.append(self)

    monkeypatch.setattr(selectors.threading, "Thread", Thread)
    users = [UserFactory() for _ in range(3)]
    for user in users:
        award(user, 10, when=timezone.now())
    services.leaderboard_ladders_store()
    BoardLadder.objects.update(counted_at=timezone.now() - selectors.LADDER_MAX_AGE * 2)
    award(UserFactory(), 50, when=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        reads = [selectors.leaderboard_page(window="all") for _ in range(3)]
    # Every read is answered at once, from the old ladder: ranks clamped to their places, the
    # size never below the players listed.
    assert board_walks(queries) == []
    assert [e["rank"] for e in reads[-1]["entries"]] == [1, 2, 2, 2]
    assert reads[-1]["total"] == 4
    assert len(started) == 1
    # The recount stores the new ladder (its connection is the test's: left open here).
    monkeypatch.setattr(selectors.connection, "close", lambda: None)
    started[0].target()
    assert BoardLadder.objects.get(label="all").total == 4
    assert selectors.leaderboard_page(window="all")["entries"][1]["rank"] == 2
    # Once counted, the next stale ladder may be counted again.
    BoardLadder.objects.update(counted_at=timezone.now() - selectors.LADDER_MAX_AGE * 2)
    selectors.leaderboard_page(window="all")
    assert len(started) == 2


def test_a_board_with_no_ladder_stored_is_counted_by_its_first_read_and_stored(settings):
    no_redis(settings)
    award(UserFactory(), 5, when=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        selectors.leaderboard_position(user=UserFactory(), window="day")
    assert len(board_walks(queries)) == 1
    day = period_of(window="day", at=timezone.now())
    assert BoardLadder.objects.get(label=day.label).total == 1
    with CaptureQueriesContext(connection) as queries:
        selectors.leaderboard_position(user=UserFactory(), window="day")
    assert board_walks(queries) == []


def test_the_beat_stores_the_ladders_of_the_kept_windows_only(settings):
    settings.LEADERBOARD_WINDOWS = ["all", "week"]
    award(UserFactory(), 5, when=timezone.now())
    BoardLadder.objects.create(label="day:2020-01-01", total=9, rungs=[], counted_at=timezone.now())
    assert leaderboard_ladders_store.apply().get() == 2
    now = timezone.now()
    assert set(BoardLadder.objects.values_list("label", "total")) == {
        ("all", 1),
        (period_of(window="week", at=now).label, 1),
    }
