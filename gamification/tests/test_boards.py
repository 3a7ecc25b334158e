"""The Redis leaderboards against a private redis-server: they agree with the ledger (read from
SQL), move after each committed write, come back after a flush and give way to SQL while Redis
is down."""

import json
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from accounts.services import user_leaderboard_exclusion_set, user_update
from accounts.tests.factories import UserFactory
from config.tests.private_redis import private_redis
from gamification import boards, caching, selectors, services, tasks
from gamification.boards import GRACE, SLOTS, period_of, score_encode, score_points
from gamification.models import Achievement, ActivityKind, ActivityLog, Metric
from gamification.tests.factories import AchievementFactory

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

WINDOWS = ("all", "day", "week", "month")


@pytest.fixture
def redis_server():
    with private_redis() as server:
        caches = {
            "default": {
                "BACKEND": "config.cache_backend.ResilientRedisCache",
                "LOCATION": server.url,
                "KEY_PREFIX": "boards",
                "OPTIONS": {
                    "SOCKET_CONNECT_TIMEOUT": 0.5,
                    "SOCKET_TIMEOUT": 0.5,
                    "BREAKER_COOLDOWN": 60,
                },
            }
        }
        with override_settings(CACHES=caches):
            yield server


@pytest.fixture
def award(django_capture_on_commit_callbacks):
    """Award points and run the after-commit callbacks (the board writes) as a commit would."""

    def award(user, points, *, when=None):
        with django_capture_on_commit_callbacks(execute=True):
            services.points_award(
                user=user,
                kind=ActivityKind.ADJUSTMENT,
                points=points,
                local_date=date(2026, 1, 1),
                now=when,
            )

    return award


def rebuild_all() -> None:
    for window in WINDOWS:
        assert services.leaderboard_rebuild(window=window) is not None


def from_redis(read):
    """A read answered by Redis: its only queries look public names up by id, or read the
    period points of one user who is off the board."""
    with CaptureQueriesContext(connection) as queries:
        result = read()
    for query in queries.captured_queries:
        assert '"accounts_user"."id" IN (' in query["sql"] or (
            '"gamification_periodpoints"."user_id" = ' in query["sql"]
        ), query["sql"]
        assert "COUNT(" not in query["sql"], query["sql"]
    return result


def answer(read, **kwargs) -> dict:
    """What a reader is told, whichever store answered."""
    found = read(**kwargs)
    found.pop("source")
    return found


def everything(users) -> dict:
    """Every board's first pages and every user's position on every board."""
    return {
        (window, what): value
        for window in WINDOWS
        for what, value in [
            *(
                (
                    f"page {offset}",
                    selectors.leaderboard_page(window=window, offset=offset)["entries"],
                )
                for offset in (0, 3)
            ),
            *(
                (
                    f"position {u.pk}",
                    answer(selectors.leaderboard_position, user=u, window=window, around=2),
                )
                for u in users
            ),
        ]
    }


def seeded(award) -> list:
    """Ties of every kind: equal points reached at different times and at the same time, a
    player only in older periods, one who went back to 0, negative adjustments."""
    now = timezone.now()
    users = [UserFactory() for _ in range(8)]
    award(users[0], 40, when=now - timedelta(days=40))
    award(users[1], 30, when=now - timedelta(seconds=50))
    award(users[2], 30, when=now - timedelta(seconds=40))
    award(users[3], 30, when=now - timedelta(seconds=40))
    award(users[4], 50, when=now - timedelta(seconds=30))
    award(users[4], -20, when=now - timedelta(seconds=20))
    award(users[5], 10, when=now - timedelta(seconds=10))
    award(users[5], -10, when=now - timedelta(seconds=5))
    award(users[6], 5, when=now - timedelta(seconds=3))
    return users


def test_score_holds_points_and_time_exactly():
    late = datetime(2050, 1, 1, tzinfo=UTC)
    for points in (1, 7, 123_456, 2**23 - 1):
        early = score_encode(points=points, reached_at=late - timedelta(seconds=1))
        assert score_points(score_encode(points=points, reached_at=late)) == points
        assert early < score_encode(points=points, reached_at=late)
        assert score_encode(points=points + 1, reached_at=late) < early
    assert SLOTS * 2**23 <= 2**53


def test_rebuilt_boards_and_sql_give_the_same_answers(redis_server, award):
    users = seeded(award)
    from_sql = everything_from_sql(users)
    rebuild_all()
    from_board = from_redis(lambda: everything(users))
    assert from_board == from_sql
    # 30 points reached 50, 40 (twice: lower id first) and 20 seconds ago; 0 points is off.
    all_time = from_board[("all", "page 0")]
    assert [(e["rank"], e["user_id"], e["points"]) for e in all_time] == [
        (1, users[0].pk, 40),
        (2, users[1].pk, 30),
        (2, users[2].pk, 30),
        (2, users[3].pk, 30),
        (2, users[4].pk, 30),
        (6, users[6].pk, 5),
    ]
    position = from_board[("all", f"position {users[3].pk}")]
    assert (position["rank"], position["total"], position["percentile"]) == (2, 6, 83.3)


def test_each_committed_write_moves_every_board(redis_server, award):
    users = seeded(award)
    rebuild_all()
    award(users[6], 100)
    award(users[2], -30)
    award(users[7], 30)
    moved = from_redis(lambda: everything(users))
    assert moved == everything_from_sql(users)
    page = selectors.leaderboard_page(window="day", offset=0, limit=2)
    assert [(e["rank"], e["user_id"], e["points"]) for e in page["entries"]] == [
        (1, users[6].pk, 105),
        (2, users[1].pk, 30),
    ]


def everything_from_sql(users) -> dict:
    # A cache of its own: locmem caches with one LOCATION share their keys.
    local = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid4().hex}
    with override_settings(CACHES={"default": local}):
        # The ladders as the beat counts them each minute: up to date with the ledger.
        services.leaderboard_ladders_store()
        return everything(users)


def test_ties_go_to_who_reached_the_score_first(redis_server, award):
    rebuild_all()
    first, second, third = (UserFactory() for _ in range(3))
    award(third, 10)
    award(first, 20, when=timezone.now() - timedelta(minutes=3))
    award(second, 20, when=timezone.now() - timedelta(minutes=2))
    award(third, 10, when=timezone.now() - timedelta(minutes=1))
    for window in WINDOWS:
        entries = from_redis(lambda w=window: selectors.leaderboard_page(window=w)["entries"])
        assert [(e["rank"], e["user_id"]) for e in entries] == [
            (1, first.pk),
            (1, second.pk),
            (1, third.pk),
        ], window


def test_a_lost_board_is_rebuilt_on_first_use(redis_server, award):
    users = seeded(award)
    for window in WINDOWS:
        boards.board_forget(period=period_of(window=window, at=timezone.now()))
    award(users[7], 15)  # no board to move: it is not half built by a write
    assert boards.board_ready(period=period_of(window="all", at=timezone.now())) is False
    body = json.loads(caching.leaderboard_cached(window="week", offset=0, limit=10).body)
    assert boards.board_ready(period=period_of(window="week", at=timezone.now())) is True
    assert body["entries"] == everything_from_sql(users)[("week", "page 0")]
    assert users[7].pk in [e["user_id"] for e in body["entries"]]
    assert (
        from_redis(lambda: selectors.leaderboard_page(window="week")["entries"])
        == (body["entries"])
    )


def test_rebuild_command_rebuilds_every_kept_window(redis_server, award, settings):
    settings.LEADERBOARD_WINDOWS = ["all", "month"]
    users = seeded(award)
    call_command("rebuild_leaderboards")
    now = timezone.now()
    kept = {w: boards.board_ready(period=period_of(window=w, at=now)) for w in WINDOWS}
    assert kept == {"all": True, "day": False, "week": False, "month": True}
    assert from_redis(lambda: selectors.leaderboard_page(window="all")["total"]) == 6
    award(users[7], 5)
    assert boards.board_ready(period=period_of(window="day", at=now)) is False


def test_period_boards_expire_after_their_period_and_grace(redis_server):
    rebuild_all()
    now = timezone.now()
    client = redis_server.client()
    for window in ("day", "week", "month"):
        period = period_of(window=window, at=now)
        for key in (period.key(), period.key(":ready")):
            expires = client.expiretime(key)
            if expires > 0:
                assert expires == int((period.end + GRACE).timestamp()), (window, key)
        assert client.expiretime(period.key(":ready")) > 0
    assert client.ttl(period_of(window="all", at=now).key(":ready")) == -1


@pytest.mark.parametrize(
    "leave",
    [
        lambda user: user_update(user=user, leaderboard_opt_out=True),
        lambda user: user_leaderboard_exclusion_set(
            actor=UserFactory(is_staff=True), user=user, excluded=True
        ),
        lambda user: setattr(user, "is_active", False) or user.save(),
        lambda user: setattr(user, "is_staff", True) or user.save(),
        lambda user: user.delete(),
    ],
    ids=["opt-out", "exclusion", "deactivation", "staff", "deletion"],
)
def test_leaving_the_boards_takes_effect_at_once(
    redis_server, award, leave, django_capture_on_commit_callbacks
):
    users = seeded(award)
    rebuild_all()
    leaver = users[4]
    cached = json.loads(caching.leaderboard_cached(window="all", offset=0, limit=10).body)
    assert leaver.pk in [e["user_id"] for e in cached["entries"]]
    leaver_id = leaver.pk
    with django_capture_on_commit_callbacks(execute=True):
        leave(leaver)
    for window in WINDOWS:
        body = json.loads(caching.leaderboard_cached(window=window, offset=0, limit=10).body)
        assert leaver_id not in [e["user_id"] for e in body["entries"]], window
        assert body["total"] == (5 if window == "all" else 4), window
    if not User.objects.filter(pk=leaver_id).exists():
        return
    for window in WINDOWS:
        position = from_redis(
            lambda w=window: selectors.leaderboard_position(user=leaver, window=w)
        )
        assert position["rank"] is None
    # Coming back puts the user's points back on every board.
    with django_capture_on_commit_callbacks(execute=True):
        leaver.refresh_from_db()
        leaver.leaderboard_opt_out = leaver.leaderboard_excluded = leaver.is_staff = False
        leaver.is_active = True
        leaver.save()
    assert from_redis(lambda: everything(users)) == everything_from_sql(users)


def test_reads_come_from_sql_while_redis_is_down(redis_server, award):
    users = seeded(award)
    rebuild_all()
    up = everything(users)
    redis_server.kill()
    award(users[7], 1)
    # Ranks start from the ladders the beat stored within the minute (a stale one is clamped,
    # test_period_points); here they are counted after the write.
    services.leaderboard_ladders_store()
    down = everything(users)
    assert down == everything_from_sql(users)
    assert [e["user_id"] for e in down[("all", "page 0")]] != [
        e["user_id"] for e in up[("all", "page 0")]
    ]
    body = json.loads(caching.leaderboard_cached(window="day", offset=0, limit=10).body)
    assert body["entries"] == down[("day", "page 0")]


def scores_read_then(change, *, reads=selectors.leaderboard_scores):
    """The rebuild's batches, the first read before `change` commits and reaching Redis after."""

    def scores(**kwargs):
        for index, batch in enumerate(reads(**kwargs)):
            if index == 0:
                change()
            yield batch

    return scores


@pytest.mark.parametrize("built", [True, False], ids=["board built", "board lost"])
@pytest.mark.parametrize("window", WINDOWS)
def test_a_change_between_a_rebuild_batch_read_and_its_write_reaches_the_new_board(
    redis_server, award, monkeypatch, django_capture_on_commit_callbacks, window, built
):
    users = seeded(award)
    scorer, leaver = users[1], users[6]
    rebuild_all()
    if not built:
        boards.board_forget(period=period_of(window=window, at=timezone.now()))

    def change():
        award(scorer, 15)
        with django_capture_on_commit_callbacks(execute=True):
            user_update(user=leaver, leaderboard_opt_out=True)

    monkeypatch.setattr(selectors, "leaderboard_scores", scores_read_then(change))
    players = services.leaderboard_rebuild(window=window)
    monkeypatch.undo()
    position = from_redis(lambda: selectors.leaderboard_position(user=scorer, window=window))
    assert (position["rank"], position["points"]) == (1, 45)
    assert (
        from_redis(lambda: selectors.leaderboard_position(user=leaver, window=window))["rank"]
        is None
    )
    assert players == position["total"]
    assert from_redis(lambda: everything(users)) == everything_from_sql(users)


def test_a_rebuild_under_writes_that_never_pause_ends_with_the_ledger_on_its_board(
    redis_server, award, monkeypatch
):
    users = seeded(award)
    rebuild_all()
    scorer, rounds = users[6], 3
    monkeypatch.setattr(services, "REBUILD_CATCH_UP_ROUNDS", rounds)
    monkeypatch.setattr(selectors, "leaderboard_scores", scores_read_then(lambda: award(scorer, 1)))
    # Each read of the players written meanwhile is followed by a new write, up to the swap.
    reads, rereads = selectors.leaderboard_scores_of, []

    def reread_then_write(**kwargs):
        scores = reads(**kwargs)
        rereads.append(kwargs["user_ids"])
        if len(rereads) <= rounds:
            award(scorer, 1)
        return scores

    monkeypatch.setattr(selectors, "leaderboard_scores_of", reread_then_write)
    assert services.leaderboard_rebuild(window="all") == 6
    monkeypatch.undo()
    assert rereads == [[scorer.pk]] * (rounds + 1)
    position = from_redis(lambda: selectors.leaderboard_position(user=scorer, window="all"))
    assert position["points"] == 5 + 1 + rounds
    assert from_redis(lambda: everything(users)) == everything_from_sql(users)


def test_a_lost_board_is_rebuilt_by_one_queued_job_while_reads_come_from_sql(
    redis_server, award, monkeypatch
):
    users = seeded(award)
    rebuild_all()
    week = period_of(window="week", at=timezone.now())
    boards.board_forget(period=week)
    sent = []
    # The broker is the outside world here: what reaches it is recorded, not run.
    monkeypatch.setattr(tasks.leaderboard_rebuild, "apply_async", lambda **send: sent.append(send))
    pages = [
        json.loads(caching.leaderboard_cached(window="week", offset=offset, limit=3).body)
        for offset in range(1000)
    ]
    assert [s["kwargs"] for s in sent] == [{"window": "week"}]
    assert boards.board_ready(period=week) is False
    expected = everything_from_sql(users)[("week", "page 0")]
    assert pages[0]["entries"] + pages[3]["entries"] == expected
    # The worker runs the job: the board is back, and the next loss queues a new one.
    tasks.leaderboard_rebuild.apply(kwargs=sent[0]["kwargs"])
    assert from_redis(lambda: selectors.leaderboard_page(window="week")["entries"]) == expected
    boards.board_forget(period=week)
    caching.leaderboard_position_cached(user=users[1], window="week", around=2)
    assert len(sent) == 2


def test_the_points_rebuild_puts_the_repaired_totals_on_every_board(redis_server, award):
    users = seeded(award)
    rebuild_all()
    # A row that reached the ledger without moving the totals (a lost update).
    ActivityLog.objects.create(
        user=users[6], kind=ActivityKind.ADJUSTMENT, points=40, local_date=date(2026, 1, 1)
    )
    assert services.points_rebuild() == 1
    for window in WINDOWS:
        position = from_redis(
            lambda w=window: selectors.leaderboard_position(user=users[6], window=w)
        )
        assert (position["rank"], position["points"]) == (1, 45), window
    assert from_redis(lambda: everything(users)) == everything_from_sql(users)


def test_a_read_from_redis_needs_no_database_and_shows_a_new_name_at_once(
    redis_server, award, django_assert_num_queries, django_capture_on_commit_callbacks
):
    users = seeded(award)
    rebuild_all()
    with django_assert_num_queries(0):
        page = selectors.leaderboard_page(window="week")
        position = selectors.leaderboard_position(user=users[3], window="all", around=2)
    assert [e["display_name"] for e in page["entries"]] == [
        User.objects.get(pk=e["user_id"]).public_name for e in page["entries"]
    ]
    assert len(position["around"]) == 5
    with django_capture_on_commit_callbacks(execute=True):
        user_update(user=users[1], display_name="Renamed")
    with django_assert_num_queries(0):
        entries = selectors.leaderboard_page(window="all")["entries"]
    assert {e["user_id"]: e["display_name"] for e in entries}[users[1].pk] == "Renamed"
    # A deleted user's name does not stay behind in Redis.
    names = redis_server.client()
    assert names.hexists(boards._names_key(), boards.member(users[2].pk))
    with django_capture_on_commit_callbacks(execute=True):
        users[2].delete()
    assert not names.hexists(boards._names_key(), boards.member(users[2].pk))


def test_names_redis_lost_are_read_from_the_database_once(redis_server, award):
    users = seeded(award)
    rebuild_all()
    redis_server.client().unlink(boards._names_key())
    with CaptureQueriesContext(connection) as first:
        before = selectors.leaderboard_page(window="all")
    assert len(first.captured_queries) == 1
    with CaptureQueriesContext(connection) as second:
        assert selectors.leaderboard_page(window="all")["entries"] == before["entries"]
    assert len(second.captured_queries) == 0
    assert users[0].pk in [e["user_id"] for e in before["entries"]]


def test_a_batch_of_moves_reaches_every_board_a_chunk_at_a_time(
    redis_server, award, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(boards, "INCREMENT_CHUNK", 2)
    users = seeded(award)
    rebuild_all()
    # Paid to every player by one re-evaluation: one move per player and board, in chunks.
    Achievement.objects.update(is_active=False)
    AchievementFactory(metric=Metric.POINTS, threshold=0, points=7)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.achievements_reevaluate()["achievements_unlocked"] == len(users)
    page = from_redis(lambda: selectors.leaderboard_page(window="day", offset=0, limit=3))
    # Equal points reached in the same second: the lower id first.
    assert [(e["user_id"], e["points"]) for e in page["entries"]] == [
        (users[1].pk, 37),
        (users[2].pk, 37),
        (users[3].pk, 37),
    ]
    assert from_redis(lambda: everything(users)) == everything_from_sql(users)
