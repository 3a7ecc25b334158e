"""Reads of the game: leaderboards, achievements, streaks, the ledger and page views.

Each selector named in migrations/0002_performance_indexes.py runs the query its index serves.
"""

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.conf import settings
from django.db import connection
from django.db.models import (
    Avg,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Concat, TruncDate, TruncSecond, TruncWeek
from django.utils import timezone

from accounts.models import User
from accounts.selectors import DayRule, user_day
from config.caching import CacheType, cache_get_or_set
from config.db_router import replica_reads
from config.rollups import (
    DAY,
    WEEK,
    WEEKS,
    PeriodSplit,
    counts_top,
    day_start,
    month_of,
    period_split,
    period_split_by_months,
    today_utc,
    week_of,
)
from gamification import boards
from gamification.boards import WINDOWS, Period, Window, period_of, score_encode, score_points
from gamification.hooks import metric_source_values
from gamification.models import (
    Achievement,
    ActiveUsersWeek,
    ActivityKind,
    ActivityLog,
    BoardLadder,
    Metric,
    PageView,
    PageViewDay,
    PageViewMonth,
    PathViewDay,
    PathViewMonth,
    PeriodPoints,
    ProductViewDay,
    ProductViewMonth,
    Streak,
    UserAchievement,
)
from products.selectors import (
    product_categories,
    products_top_ranked,
    searches_daily_distinct_counts,
)
from realtime.presence import users_online_count


class _Progress(TypedDict):
    progress: int | None
    held_level: int
    held_unlocked_at: datetime | None


class PathViews(TypedDict):
    path: str
    views: int


class DayViews(TypedDict):
    day: date
    views: int


class ProductViews(TypedDict):
    product_id: int
    views: int


class DayUsers(TypedDict):
    day: date
    users: int


class WeekUsers(TypedDict):
    week: date
    users: int


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    # An achievement with the user's progress on it (`achievements_to_unlock`).
    AchievementWithProgress = WithAnnotations[Achievement, _Progress]

LEADERBOARD_MAX = 100
LEADERBOARD_DEFAULT_LIMIT = 10
AROUND_MAX = 25
AROUND_DEFAULT = 2

# The leaderboard's population; the same predicate as the partial index user_leaderboard.
RANKED = Q(is_active=True, is_staff=False, leaderboard_opt_out=False, leaderboard_excluded=False)
# A board lists the ranked users with more than 0 points in its period, in this order.
BOARD_ORDER = ("-points", "points_reached_at", "id")


def leaderboard_windows() -> tuple[Window, ...]:
    """The windows this deployment keeps (setting LEADERBOARD_WINDOWS), in a fixed order."""
    return tuple(w for w in WINDOWS if w in settings.LEADERBOARD_WINDOWS)


def user_is_ranked(*, user: User) -> bool:
    return (
        user.is_active
        and not user.is_staff
        and not user.leaderboard_opt_out
        and not user.leaderboard_excluded
    )


def public_names(user_ids: Iterable[int]) -> dict[int, str]:
    """Each user's public name (`User.public_name`), never the e-mail address itself."""
    # Only the columns a public name is made of, and no users built from them.
    rows = User.objects.filter(pk__in=list(user_ids)).values_list("id", *User.PUBLIC_NAME_FIELDS)
    return {pk: User.public_name_of(*name) for pk, *name in rows}


@dataclass(frozen=True)
class Standing:
    """One user's score on a board, in board order: more points, then reached first, then id."""

    user_id: int
    points: int
    reached_at: datetime | None = None


def _entries(
    standings: list[Standing],
    *,
    first_rank: int,
    first_index: int,
    known: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    """Competition ranks (1, 1, 3) for a run of standings contiguous in board order, the first
    at 0-based place `first_index` with rank `first_rank`, each with its public name: from
    `known` (the names Redis holds beside the boards), the others from the database and then
    kept beside the boards for the next read."""
    names = dict(known or {})
    missing = [s.user_id for s in standings if s.user_id not in names]
    if missing:
        found = public_names(missing)
        names.update(found)
        if known is not None:
            boards.board_names_set(names=dict(found))
    entries: list[dict[str, Any]] = []
    for offset, standing in enumerate(standings):
        if offset == 0:
            rank = first_rank
        elif standing.points == standings[offset - 1].points:
            rank = entries[-1]["rank"]
        else:
            rank = first_index + offset + 1
        entries.append(
            {
                "rank": rank,
                "user_id": standing.user_id,
                "display_name": names.get(standing.user_id, ""),
                "points": standing.points,
            }
        )
    return entries


def _percentile(*, at_or_below: int, total: int) -> float:
    """The share of the board's players at or below a score, in per cent."""
    return round(100 * at_or_below / total, 1) if total else 0.0


# --- Leaderboards from Redis (gamification.boards), SQL while a board is not there ------------


def leaderboard_page(
    *,
    window: Window,
    offset: int = 0,
    limit: int = LEADERBOARD_DEFAULT_LIMIT,
    now: datetime | None = None,
) -> dict[str, Any]:
    """`limit` entries of a board from place `offset` (0 = the top), with the board's size.

    `source` says where it was read: "redis", or "sql" while the board is not in Redis.
    """
    period = period_of(window=window, at=now or timezone.now())
    board = boards.board_page(period=period, offset=offset, limit=limit)
    if board is not None:
        standings = [Standing(user_id=pk, points=score_points(s)) for pk, s in board.members]
        total, first_rank, known = board.total, board.first_rank, board.names
    else:
        known = None
        standings, total, first_rank = _sql_page(_sql_board(period), offset=offset, limit=limit)
    return {
        "window": window,
        "period_start": period.start,
        "generated_at": timezone.now(),
        "offset": offset,
        "total": total,
        "entries": _entries(standings, first_rank=first_rank, first_index=offset, known=known),
        "source": "sql" if board is None else "redis",
    }


def leaderboard_position(
    *, user: User, window: Window, around: int = AROUND_DEFAULT, now: datetime | None = None
) -> dict[str, Any]:
    """A user's rank, points, the share of players at or below them and `around` neighbours
    on each side (the user included); rank None when the user is not on the board.

    `source` says where it was read: "redis", or "sql" while the board is not in Redis.
    """
    period = period_of(window=window, at=now or timezone.now())
    found = boards.board_position(period=period, user_id=user.pk, around=around)
    if found is not None:
        total, rank, at_or_below = found.total, found.rank, found.at_or_below
        points = score_points(found.score) if found.score is not None else None
        run = [Standing(user_id=pk, points=score_points(s)) for pk, s in found.around.members]
        first_rank, known = found.around.first_rank, found.around.names
        first_index = (found.index or 0) - min(around, found.index or 0)
    else:
        known = None
        total, rank, at_or_below, points, run, first_rank, first_index = _sql_position(
            _sql_board(period), user_id=user.pk, around=around
        )
    source = "sql" if found is None else "redis"
    if rank is None:
        points = (
            user.points if period.start is None else _user_period_points(user=user, period=period)
        )
        return {
            "window": window,
            "rank": None,
            "points": points,
            "total": total,
            "percentile": None,
            "around": [],
            "source": source,
        }
    return {
        "window": window,
        "rank": rank,
        "points": points,
        "total": total,
        "percentile": _percentile(at_or_below=at_or_below, total=total),
        "around": _entries(run, first_rank=first_rank, first_index=first_index, known=known),
        "source": source,
    }


def leaderboard_standing(*, user_id: int) -> dict[str, Any]:
    """A user's rank on the `all` board (None when not ranked), points and the board's size."""
    found = leaderboard_position(user=User.objects.get(pk=user_id), window="all", around=0)
    return {key: found[key] for key in ("window", "rank", "points", "total")}


@dataclass(frozen=True)
class ScoresBatch:
    scores: dict[int, float]  # board scores by user id
    names: dict[int, str]  # the same users' public names


def leaderboard_scores(*, period: Period, batch: int) -> Iterator[ScoresBatch]:
    """Every ranked player's board score in a period and public name, a batch of user ids at
    a time: from `User.points` for `all`, from the period totals (PeriodPoints) for a period.
    Each batch is a range of ids (no list of them sent back) read along an index."""
    if period.start is None:
        last = 0
        while True:
            rows: list[tuple[int, int, datetime, str, str]] = list(
                ranked_users()
                .filter(points__gt=0, pk__gt=last)
                .order_by("pk")
                .values_list("pk", "points", "points_reached_at", *User.PUBLIC_NAME_FIELDS)[:batch]
            )
            if not rows:
                return
            last = rows[-1][0]
            yield ScoresBatch(
                scores={pk: score_encode(points=p, reached_at=at) for pk, p, at, _, _ in rows},
                names={pk: User.public_name_of(*name) for pk, _, _, *name in rows},
            )
    bounds = User.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return
    board = _sql_board(period).rows
    for low in range(bounds["low"], bounds["high"] + 1, batch):
        # The range walks the index periodpoints_user (user, period, start), the names the
        # users' primary key.
        in_range = {"user_id__gte": low, "user_id__lt": low + batch}
        scored = board.filter(**in_range).values_list("user_id", "points", "reached_at")
        scores = {pk: score_encode(points=p, reached_at=at) for pk, p, at in scored}
        names = User.objects.filter(pk__gte=low, pk__lt=low + batch).values_list(
            "pk", *User.PUBLIC_NAME_FIELDS
        )
        yield ScoresBatch(
            scores=scores,
            names={pk: User.public_name_of(*name) for pk, *name in names if pk in scores},
        )


def leaderboard_scores_of(*, period: Period, user_ids: list[int]) -> dict[int, float]:
    """The board scores in a period of those of the users who are on the board."""
    if period.start is None:
        rows = _board_all().filter(pk__in=user_ids).values_list("pk", "points", "points_reached_at")
    else:
        rows = (
            _sql_board(period)
            .rows.filter(user_id__in=user_ids)
            .values_list("user_id", "points", "reached_at")
        )
    return {pk: score_encode(points=p, reached_at=at) for pk, p, at in rows}


def leaderboard_user_score(*, user: User, period: Period) -> float | None:
    """The user's board score in a period, None when they have no points there."""
    if period.start is None:
        if user.points <= 0:
            return None
        return score_encode(points=user.points, reached_at=user.points_reached_at)
    row = _period_row(user=user, period=period)
    if row is None or row[0] <= 0:
        return None
    return score_encode(points=row[0], reached_at=row[1])


def _aware(at: datetime | None) -> datetime | None:
    # PostgreSQL truncates a time in UTC and hands it back without its zone.
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def ledger_period_totals(*, period: Period, user_ids: list[int]) -> dict[int, tuple[int, Any]]:
    """Each user's ledger sum in a period and the time of their latest scoring row in it (in
    whole seconds), for users with rows there (index activity_user_created)."""
    return {
        row["user_id"]: (row["total"], _aware(row["reached"]))
        for row in ActivityLog.objects.filter(
            user_id__in=user_ids, created_at__gte=period.start, created_at__lt=period.end
        )
        .values("user_id")
        .annotate(total=Sum("points"), reached=Max(TruncSecond("created_at"), filter=~Q(points=0)))
        .order_by()
    }


# --- The SQL boards: every count and range walks an index, never a table -----------------------


def ranked_users() -> QuerySet[User]:
    return User.objects.filter(RANKED)


def _board_all() -> QuerySet[User]:
    return ranked_users().filter(points__gt=0)


@dataclass(frozen=True)
class _SqlBoard:
    """A board read from SQL: its rows, in board order, walk one index (user_leaderboard for
    `all`, periodpoints_board for a day, week or month)."""

    rows: QuerySet[Any]
    user: str  # the column of the user's id
    reached: str  # the column of when the points were reached
    period: Period

    @property
    def label(self) -> str:
        return self.period.label

    @property
    def order(self) -> tuple[str, str, str]:
        return ("-points", self.reached, self.user)


def _sql_board(period: Period) -> _SqlBoard:
    if period.start is None:
        return _SqlBoard(rows=_board_all(), user="id", reached="points_reached_at", period=period)
    rows = PeriodPoints.objects.filter(
        period=period.window, start=period.start, points__gt=0
    ).exclude(
        # The few unranked users, from their own partial index (user_unranked): a join with
        # the ranked ones would read the whole users table.
        user_id__in=User.objects.exclude(RANKED).values("pk")
    )
    return _SqlBoard(rows=rows, user="user_id", reached="reached_at", period=period)


def _count(board: _SqlBoard, rows: QuerySet[Any]) -> int:
    """Count rows of a board by walking its index, never the table.

    Ordering the rows like the index makes PostgreSQL answer from an index-only scan whatever
    share of the board is counted, where a bare COUNT(*) falls back to reading the whole table
    once more than about a third of the rows match.
    """
    sql, params = rows.order_by(*board.order).values(board.user).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) AS board", params)
        count: int = cursor.fetchone()[0]
        return count


# A board's ladder has about this many rungs: a rank is counted live over at most this share
# of the board (and the players tied with the user), the rest is read from the ladder.
LADDER_RUNGS = 64


@dataclass(frozen=True)
class Ladder:
    """A board's size and, at some scores, how many players have at least that score."""

    total: int
    rungs: list[tuple[int, int]]  # (points, players with at least those points), descending


# A stored ladder older than this is counted again in the background by the first read that
# finds it so; the beat counts every kept board's ladder each minute while a worker runs.
LADDER_MAX_AGE = timedelta(minutes=2)

_ladders_counting: set[str] = set()
_ladders_counting_lock = threading.Lock()


def _ladder_count(board: _SqlBoard) -> Ladder:
    """Count the board's ladder: one walk of its whole index.

    Between two rungs lie no more than 1/LADDER_RUNGS of the players, so that a count from the
    nearest rung walks a small part of the index whatever the rank.
    """
    sql, params = board.rows.order_by(*board.order).values("points").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT points, COUNT(*) FROM ({sql}) AS board GROUP BY points", params)
        groups = sorted(cursor.fetchall(), reverse=True)
    total = sum(players for _, players in groups)
    step = max(total // LADDER_RUNGS, 1)
    rungs: list[tuple[int, int]] = []
    at_least = 0
    for points, players in groups:
        if not rungs or at_least + players - rungs[-1][1] > step:
            rungs.append((points, at_least + players))
        at_least += players
    return Ladder(total=total, rungs=rungs)


def ladder_store(period: Period) -> Ladder:
    """Count a board's ladder and store it (one row per board, BoardLadder)."""
    board = _sql_board(period)
    ladder = _ladder_count(board)
    BoardLadder.objects.bulk_create(
        [
            BoardLadder(
                label=board.label,
                total=ladder.total,
                rungs=ladder.rungs,
                counted_at=timezone.now(),
            )
        ],
        update_conflicts=True,
        unique_fields=["label"],
        update_fields=["total", "rungs", "counted_at"],
    )
    return ladder


def _ladder_recount_in_background(board: _SqlBoard) -> None:
    """Count a board's ladder again in a thread of this process, unless one already is."""
    with _ladders_counting_lock:
        if board.label in _ladders_counting:
            return
        _ladders_counting.add(board.label)

    def recount() -> None:
        try:
            ladder_store(board.period)
        finally:
            with _ladders_counting_lock:
                _ladders_counting.discard(board.label)
            connection.close()

    threading.Thread(target=recount, name=f"ladder {board.label}", daemon=True).start()


def _ladder(board: _SqlBoard) -> Ladder:
    """The board's stored ladder: one row, however large the board.

    A ladder older than LADDER_MAX_AGE is still used, and counted again off the request path;
    only a board with no ladder stored (a period that just began, when its board is small, or
    a deployment that never stored one) is counted by the read itself.
    """
    stored = BoardLadder.objects.filter(label=board.label).first()
    if stored is None:
        return ladder_store(board.period)
    if stored.counted_at < timezone.now() - LADDER_MAX_AGE:
        _ladder_recount_in_background(board)
    return Ladder(total=stored.total, rungs=[(points, n) for points, n in stored.rungs])


def _better(board: _SqlBoard, ladder: Ladder, points: int) -> int:
    """How many players of the board have more than `points`: the ladder up to the lowest
    rung above them, and a live count of the players between that rung and them."""
    above = [(rung, at_least) for rung, at_least in ladder.rungs if rung > points]
    if not above:
        return _count(board, board.rows.filter(points__gt=points))
    rung, at_least = above[-1]
    return at_least + _count(board, board.rows.filter(points__gt=points, points__lt=rung))


def leaderboard_total() -> int:
    """How many users the `all` board ranks (from its stored ladder)."""
    period = period_of(window="all", at=timezone.now())
    return _ladder(_sql_board(period)).total


def leaderboard_rank(*, points: int) -> int:
    """The competition rank of a score on the `all` board: 1 + users with more points."""
    period = period_of(window="all", at=timezone.now())
    board = _sql_board(period)
    return _better(board, _ladder(board), points) + 1


def _sql_page(board: _SqlBoard, *, offset: int, limit: int) -> tuple[list[Standing], int, int]:
    # Every column read is in the board's index: an index-only walk.
    rows = board.rows.order_by(*board.order).values_list(board.user, "points", board.reached)
    standings = [Standing(*row) for row in rows[offset:][:limit]]
    ladder = _ladder(board)
    first_rank = 0
    if standings:
        # The ladder may be older than the page: a rank never lies beyond the place.
        first_rank = min(_better(board, ladder, standings[0].points) + 1, offset + 1)
    return standings, max(ladder.total, offset + len(standings)), first_rank


# total, rank, players at or below, points, the run around the user, its first rank and place
SqlPosition = tuple[int, int | None, int, int | None, list[Standing], int, int]


def _sql_position(board: _SqlBoard, *, user_id: int, around: int) -> SqlPosition:
    user, reached_at = board.user, board.reached
    me = board.rows.filter(**{user: user_id}).values_list("points", reached_at).first()
    ladder = _ladder(board)
    if me is None:
        return ladder.total, None, 0, None, [], 0, 0
    points, reached = me
    better = _better(board, ladder, points)
    tied = board.rows.filter(points=points)
    before_me = Q(**{f"{reached_at}__lt": reached}) | Q(
        **{reached_at: reached, f"{user}__lt": user_id}
    )
    index = better + _count(board, tied.filter(before_me))
    columns = (user, "points", reached_at)
    # Each neighbour query is an index range next to the user's own entry, nearest first.
    above: list[tuple[int, int, datetime]] = []
    for part in (
        tied.filter(**{reached_at: reached, f"{user}__lt": user_id}).order_by(f"-{user}"),
        tied.filter(**{f"{reached_at}__lt": reached}).order_by(f"-{reached_at}", f"-{user}"),
        board.rows.filter(points__gt=points).order_by("points", f"-{reached_at}", f"-{user}"),
    ):
        if len(above) < around:
            above += part.values_list(*columns)[: around - len(above)]
    below: list[tuple[int, int, datetime]] = []
    for part in (
        tied.filter(**{reached_at: reached, f"{user}__gt": user_id}).order_by(user),
        tied.filter(**{f"{reached_at}__gt": reached}).order_by(reached_at, user),
        board.rows.filter(points__lt=points).order_by(*board.order),
    ):
        if len(below) < around:
            below += part.values_list(*columns)[: around - len(below)]
    run = [Standing(*row) for row in [*reversed(above), (user_id, points, reached), *below]]
    # Only the players between the first neighbour's score and the user's are counted again.
    first_rank = (
        better + 1 - _count(board, board.rows.filter(points__gt=points, points__lte=run[0].points))
    )
    total = max(ladder.total, index + 1)
    return total, better + 1, total - better, points, run, first_rank, index - len(above)


def _period_row(*, user: User, period: Period) -> tuple[int, datetime | None] | None:
    """The user's points in a period and when reached (index periodpoints_user)."""
    if period.start is None:
        return None
    return (
        PeriodPoints.objects.filter(user=user, period=period.window, start=period.start)
        .values_list("points", "reached_at")
        .first()
    )


def _user_period_points(*, user: User, period: Period) -> int:
    row = _period_row(user=user, period=period)
    return 0 if row is None else row[0]


# --- Ledger ----------------------------------------------------------------------------------


def activity_for_user(*, user: User) -> QuerySet[ActivityLog]:
    """A user's ledger, newest first (index activity_user_created)."""
    return ActivityLog.objects.filter(user=user).order_by("-created_at", "-id")


def paid_submissions_on(*, user: User, local_date: date) -> int:
    """How many submissions earned points on one local day (index activity_user_kind_day)."""
    return ActivityLog.objects.filter(
        user=user, kind=ActivityKind.RANKING_SUBMITTED, local_date=local_date, points__gt=0
    ).count()


# One submitted ranking for the rankings-submitted metric: a category on a date, so that
# replacing a category's ranking the same day adds nothing.
_SUBMITTED_RANKING = Concat(
    Cast("local_date", CharField()), Value(" "), KT("data__category"), output_field=CharField()
)


def rankings_submitted_count(*, user: User) -> int:
    """The rankings-submitted metric: the (date, category) pairs a user submitted a ranking
    for (index activity_user_kind_day)."""
    submitted: int = ActivityLog.objects.filter(
        user=user, kind=ActivityKind.RANKING_SUBMITTED
    ).aggregate(submitted=Count(_SUBMITTED_RANKING, distinct=True))["submitted"]
    return submitted


@dataclass(frozen=True)
class SubmissionCounts:
    paid_today: int
    submitted: int
    category_today: int


def submission_counts(*, user: User, local_date: date, category: str) -> SubmissionCounts:
    """Before a submission of `category` on `local_date` is written: the date's paid
    submissions, the rankings-submitted metric and the category's submissions that date, in
    one query (index activity_user_kind_day)."""
    if connection.vendor == "postgresql":
        # Every submission reads this: written out, as the ORM spent several times longer
        # building the statement than it runs. The same counts as the portable form below.
        with connection.cursor() as cursor:
            cursor.execute(
                _SUBMISSION_COUNTS,
                [local_date, local_date, category, user.pk, ActivityKind.RANKING_SUBMITTED],
            )
            paid_today, submitted, category_today = cursor.fetchone()
        return SubmissionCounts(
            paid_today=paid_today, submitted=submitted, category_today=category_today
        )
    counts = ActivityLog.objects.filter(user=user, kind=ActivityKind.RANKING_SUBMITTED).aggregate(
        paid_today=Count("pk", filter=Q(local_date=local_date, points__gt=0)),
        submitted=Count(_SUBMITTED_RANKING, distinct=True),
        category_today=Count("pk", filter=Q(local_date=local_date, data__category=category)),
    )
    return SubmissionCounts(**counts)


_SUBMISSION_COUNTS = f"""
SELECT
    COUNT(*) FILTER (WHERE local_date = %s AND points > 0),
    COUNT(DISTINCT local_date::varchar || ' ' || COALESCE(data ->> 'category', '')),
    COUNT(*) FILTER (WHERE local_date = %s AND data ->> 'category' = %s)
FROM {ActivityLog._meta.db_table}
WHERE user_id = %s AND kind = %s
"""


def activity_count_since(*, kind: str, since: datetime) -> int:
    """Ledger entries of a kind since a time: submissions today (index activity_kind_created)."""
    return ActivityLog.objects.filter(kind=kind, created_at__gte=since).count()


# --- Achievements ----------------------------------------------------------------------------


def achievement_definitions() -> list[Achievement]:
    return list(Achievement.objects.filter(is_active=True).order_by("order", "id"))


def achievements_for_user(*, user: User) -> QuerySet[UserAchievement]:
    """A user's unlocked achievements, newest first (index userach_user_unlocked)."""
    return (
        UserAchievement.objects.filter(user=user, unlocked_at__isnull=False)
        .select_related("achievement")
        .order_by("-unlocked_at")
    )


def achievements_in_progress(*, user: User) -> QuerySet[UserAchievement]:
    """A user's locked achievements, closest to unlocking first (index userach_user_progress).

    Hidden ones are left out: until unlocked, nothing of them shows but their count.
    """
    return (
        UserAchievement.objects.filter(
            user=user, unlocked_at__isnull=True, achievement__is_hidden=False
        )
        .select_related("achievement")
        .order_by("-progress")
    )


def hidden_achievements_locked_count(*, user: User) -> int:
    """How many active hidden achievements the user has still to find."""
    return (
        Achievement.objects.filter(is_active=True, is_hidden=True)
        .exclude(pk__in=achievements_for_user(user=user).values("achievement_id"))
        .count()
    )


def achievement_unlock_counts() -> dict[int, int]:
    """How many users unlocked each achievement (index userach_ach_unlocked)."""
    return dict(
        UserAchievement.objects.filter(unlocked_at__isnull=False)
        .values("achievement_id")
        .annotate(users=Count("*"))
        .values_list("achievement_id", "users")
    )


def achievements_unlocked_since(*, since: datetime) -> int:
    """Achievements unlocked since a time: home stats (index userach_unlocked)."""
    return UserAchievement.objects.filter(unlocked_at__gte=since).count()


def achievements_to_unlock(
    *, user: User, metrics: Iterable[str]
) -> "list[AchievementWithProgress]":
    """The active achievements of `metrics` with a level the user has still to reach, in
    order, in one query. Each carries the user's `progress` (None before the first
    evaluation), `held_level` (levels reached) and `held_unlocked_at` (first level's time)."""
    candidates: Iterable[AchievementWithProgress]
    if connection.vendor == "postgresql":
        # Every submission reads this: written out, as the ORM spent several times longer
        # building the statement than it runs. The same rows as the portable form below.
        candidates = cast(
            "Iterable[AchievementWithProgress]",
            Achievement.objects.raw(_ACHIEVEMENTS_TO_UNLOCK, [user.pk, list(metrics)]),
        )
    else:
        candidates = (
            Achievement.objects.filter(is_active=True, metric__in=metrics)
            .annotate(
                held=FilteredRelation(
                    "user_achievements", condition=Q(user_achievements__user=user)
                )
            )
            # Unlocked achievements without levels are done; tiered ones are sorted out below.
            .filter(Q(held__unlocked_at__isnull=True) | ~Q(levels=[]))
            .annotate(
                progress=F("held__progress"),
                held_level=F("held__level"),
                held_unlocked_at=F("held__unlocked_at"),
            )
        )
    to_unlock: list[AchievementWithProgress] = []
    for achievement in candidates:
        achievement.held_level = levels_reached(
            level=achievement.held_level, unlocked_at=achievement.held_unlocked_at
        )
        if achievement.held_level < len(achievement.tiers):
            to_unlock.append(achievement)
    return to_unlock


_ACHIEVEMENTS_TO_UNLOCK = f"""
SELECT a.*, held.progress, held.level AS held_level, held.unlocked_at AS held_unlocked_at
FROM {Achievement._meta.db_table} AS a
LEFT JOIN {UserAchievement._meta.db_table} AS held
    ON held.achievement_id = a.id AND held.user_id = %s
WHERE a.is_active AND a.metric = ANY(%s) AND (held.unlocked_at IS NULL OR a.levels <> '[]')
ORDER BY a."order", a.id
"""


def levels_reached(*, level: int | None, unlocked_at: datetime | None) -> int:
    """An unlocked achievement has reached its first level at least (rows written without
    a level, before levels or by a bulk load, count as one)."""
    return max(level or 0, 1 if unlocked_at is not None else 0)


@dataclass(frozen=True)
class AchievementStanding:
    """Where a user stands on an achievement: levels reached, progress counted (None before
    the first evaluation) and when the first level was reached."""

    level: int
    progress: int | None
    unlocked_at: datetime | None


def achievement_standings(
    *, user_ids: list[int], achievements: Iterable[Achievement]
) -> dict[tuple[int, int], AchievementStanding]:
    """The batch's standings on `achievements` by (user id, achievement id), in one query
    (index userach_user_ach_unique); no row, no standing yet."""
    rows = UserAchievement.objects.filter(
        user_id__in=user_ids, achievement_id__in=[a.pk for a in achievements]
    ).values_list("user_id", "achievement_id", "level", "progress", "unlocked_at")
    return {
        (user_id, achievement_id): AchievementStanding(
            level=levels_reached(level=level, unlocked_at=unlocked_at),
            progress=progress,
            unlocked_at=unlocked_at,
        )
        for user_id, achievement_id, level, progress, unlocked_at in rows
    }


def achievement_metric_values(
    *, users: list[User], metrics: set[str], rules: Mapping[int, DayRule]
) -> dict[str, dict[int, int]]:
    """Every metric of `metrics` for a batch of users, by metric then user id: one grouped
    query per metric whatever the batch's size, each counting as the single-user reads of
    `services._metric_values` do. `users` were read under their row locks (their points);
    `rules` are their day rules in force now (`user_day`)."""
    user_ids = [user.pk for user in users]
    values: dict[str, dict[int, int]] = {}
    if Metric.RANKINGS_SUBMITTED in metrics:
        values[Metric.RANKINGS_SUBMITTED] = dict(
            ActivityLog.objects.filter(user_id__in=user_ids, kind=ActivityKind.RANKING_SUBMITTED)
            .values("user_id")
            .annotate(submitted=Count(_SUBMITTED_RANKING, distinct=True))
            .values_list("user_id", "submitted")
        )
    if Metric.STREAK_DAYS in metrics:
        values[Metric.STREAK_DAYS] = dict(
            Streak.objects.filter(user_id__in=user_ids).values_list("user_id", "longest_length")
        )
    if Metric.CATEGORIES_RANKED in metrics:
        values[Metric.CATEGORIES_RANKED] = metric_source_values(
            metric=Metric.CATEGORIES_RANKED, user_ids=user_ids
        )
    if Metric.SEARCHES_MADE in metrics:
        values[Metric.SEARCHES_MADE] = searches_daily_distinct_counts(
            rules={pk: (rule.zone, rule.day_start_hour) for pk, rule in rules.items()}
        )
    if Metric.POINTS in metrics:
        values[Metric.POINTS] = {user.pk: user.points for user in users}
    return values


def unlocked_achievement_ids(*, user: User) -> set[int]:
    return set(achievements_for_user(user=user).values_list("achievement_id", flat=True))


# --- Streaks ---------------------------------------------------------------------------------


def streak_missed_days(*, last: date, day: date, skipped: date | None) -> int:
    """The dates strictly between `last` and `day` the user lived without activity: a date
    that a change of zone or day start skipped was never lived, so it is not missed."""
    missed = (day - last).days - 1
    if skipped is not None and last < skipped < day:
        missed -= 1
    return max(missed, 0)


def streak_for_user(*, user: User, now: datetime | None = None) -> Streak:
    """The user's streak as true at `now`: one that can no longer be extended (a missed date
    that no freeze covers) reads 0, keeping its longest length. Not saved."""
    streak = Streak.objects.filter(user=user).first() or Streak(user=user)
    if streak.last_active_date is not None and streak.current_length:
        day = user_day(user=user, now=now)
        missed = streak_missed_days(
            last=streak.last_active_date, day=day.date, skipped=day.skipped_date
        )
        # A freeze covers one missed date, used by the next active day.
        if missed > (1 if streak.freezes_left else 0):
            streak.current_length = 0
    return streak


def active_streak_count(*, today: date) -> int:
    """Streaks still alive: active yesterday or today (index streak_last_active).

    `today` is the earliest local date anywhere on Earth (UTC-12), so no live streak is missed.
    """
    return Streak.objects.filter(
        current_length__gt=0, last_active_date__gte=today - timedelta(days=1)
    ).count()


def top_streaks(*, today: date, limit: int = 10) -> QuerySet[Streak]:
    """The longest streaks still alive, active yesterday or today (index streak_current).

    `today` is the earliest local date anywhere on Earth, as in active_streak_count.
    """
    return (
        Streak.objects.filter(current_length__gt=0, last_active_date__gte=today - timedelta(days=1))
        .select_related("user")
        .order_by("-current_length", "user_id")[:limit]
    )


def streak_records(*, limit: int = 10) -> QuerySet[Streak]:
    """The longest streaks ever (index streak_longest)."""
    return Streak.objects.select_related("user").order_by("-longest_length", "user_id")[:limit]


def streak_freezes_held(*, today: date) -> dict[int, int]:
    """How many live streaks hold one freeze, two, ... (index-only scan of streak_freezes)."""
    return dict(
        Streak.objects.filter(freezes_left__gt=0, last_active_date__gte=today - timedelta(days=1))
        .values("freezes_left")
        .annotate(streaks=Count("*"))
        .values_list("freezes_left", "streaks")
    )


def achievement_unlocks_since(*, since: datetime) -> dict[int, dict[str, Any]]:
    """Per achievement, its unlocks since a time and the average time from a user joining to
    the unlock, in hours (index userach_unlocked)."""
    rows = (
        UserAchievement.objects.filter(unlocked_at__gte=since)
        .values("achievement_id")
        .annotate(
            unlocks=Count("*"),
            to_unlock=Avg(
                ExpressionWrapper(
                    F("unlocked_at") - F("user__date_joined"), output_field=DurationField()
                )
            ),
        )
    )
    return {
        row["achievement_id"]: {
            "unlocks": row["unlocks"],
            "average_hours_to_unlock": round(row["to_unlock"].total_seconds() / 3600, 1),
        }
        for row in rows
    }


# --- Page views ------------------------------------------------------------------------------


def _views_split(*, since: datetime, rolled: Iterable[date]) -> PeriodSplit:
    return period_split(since=since, rolled=set(rolled))


def _rolled_days(since: datetime) -> dict[date, PageViewDay]:
    """The days since a time rolled up so far: each one's totals, and the proof that its
    ProductViewDay and PathViewDay rows are complete."""
    return {row.day: row for row in PageViewDay.objects.filter(day__gte=today_utc(since))}


def _raw_per_day(views: QuerySet[PageView], aggregate: Count) -> dict[date, int]:
    return dict(
        views.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=aggregate)
        .values_list("day", "n")
    )


def page_views_per_day(*, since: datetime, product_id: int | None = None) -> list[DayViews]:
    """Views per UTC day since a time: closed days from PageViewDay (of one product,
    ProductViewDay), the rest from the raw rows (index pageview_created_path; of one product,
    pageview_product_created)."""
    rolled = _rolled_days(since)
    split = _views_split(since=since, rolled=rolled)
    views = PageView.objects.filter(split.raw_q())
    per_day: dict[date, int] = {}
    rolled_q = split.rolled_q()
    if product_id is not None:
        views = views.filter(product_id=product_id)
        if rolled_q is not None:
            per_day.update(
                ProductViewDay.objects.filter(rolled_q, product_id=product_id).values_list(
                    "day", "views"
                )
            )
    elif rolled_q is not None:
        per_day.update(
            (day, row.views) for day, row in rolled.items() if split.covers(day) and row.views
        )
    per_day.update(_raw_per_day(views, Count("*")))
    return [{"day": day, "views": per_day[day]} for day in sorted(per_day)]


def _views_split_by_months(since: datetime) -> tuple[PeriodSplit, PeriodSplit]:
    months = PageViewMonth.objects.filter(month__gte=month_of(today_utc(since)))
    return period_split_by_months(
        since=since,
        rolled_months=set(months.values_list("month", flat=True)),
        rolled_days=set(_rolled_days(since)),
    )


def _views_top(
    *, since: datetime, key: str, raw: QuerySet[PageView], day: Any, month: Any, limit: int
) -> list[dict[str, Any]]:
    """The `limit` keys most viewed since a time: closed months from the month roll-up, other
    closed days from the day roll-up, the rest (today, a partial first day) from the raw rows."""
    months, days = _views_split_by_months(since)
    parts: list[QuerySet[Any, Any]] = [raw.filter(days.raw_q()).values(key).annotate(n=Count("*"))]
    for split, rollup, field_name in ((days, day, "day"), (months, month, "month")):
        rolled_q = split.rolled_q(field_name)
        if rolled_q is not None:
            parts.append(rollup.objects.filter(rolled_q).values(key).annotate(n=Sum("views")))
    return counts_top(parts=parts, key=key, limit=limit)


@replica_reads()
def top_paths(*, since: datetime, limit: int = 10) -> list[PathViews]:
    """The most viewed paths since a time (PathViewMonth and PathViewDay for closed months and
    days; the raw rows by an index-only scan of pageview_created_path)."""
    rows = _views_top(
        since=since,
        key="path",
        raw=PageView.objects.all(),
        day=PathViewDay,
        month=PathViewMonth,
        limit=limit,
    )
    return [{"path": row["path"], "views": row["n"]} for row in rows]


def products_viewed_most(*, since: datetime, limit: int = 10) -> list[ProductViews]:
    """The products viewed most since a time (ProductViewMonth and ProductViewDay for closed
    months and days; the raw rows by an index-only scan of pageview_created_product)."""
    rows = _views_top(
        since=since,
        key="product_id",
        raw=PageView.objects.filter(product_id__isnull=False),
        day=ProductViewDay,
        month=ProductViewMonth,
        limit=limit,
    )
    return [{"product_id": row["product_id"], "views": row["n"]} for row in rows]


def _signed_in_views(q: Q) -> QuerySet[PageView]:
    return PageView.objects.filter(q, user_id__isnull=False)


def active_users_per_day(*, since: datetime) -> list[DayUsers]:
    """Signed-in users who viewed a page, per UTC day: closed days from PageViewDay, the rest
    from the raw rows (index pageview_created_user)."""
    rolled = _rolled_days(since)
    split = _views_split(since=since, rolled=rolled)
    per_day = {day: row.users for day, row in rolled.items() if split.covers(day) and row.users}
    per_day.update(_raw_per_day(_signed_in_views(split.raw_q()), Count("user_id", distinct=True)))
    return [{"day": day, "users": per_day[day]} for day in sorted(per_day)]


def active_users_per_week(*, since: datetime) -> list[WeekUsers]:
    """Signed-in users who viewed a page, per ISO week from Monday: closed weeks from
    ActiveUsersWeek, the rest (this week, a partial first week) from the raw rows (index
    pageview_created_user). Distinct users of a week do not add up from its days.

    The first week counts only the days since `since`.
    """
    rolled = dict(
        ActiveUsersWeek.objects.filter(week__gte=week_of(today_utc(since))).values_list(
            "week", "users"
        )
    )
    split = period_split(since=since, rolled=set(rolled), unit=WEEKS)
    per_week = {week: users for week, users in rolled.items() if split.covers(week) and users}
    per_week.update(
        (row["period"].date(), row["users"])
        for row in _signed_in_views(split.raw_q())
        .annotate(period=TruncWeek("created_at"))
        .values("period")
        .annotate(users=Count("user_id", distinct=True))
    )
    return [{"week": week, "users": per_week[week]} for week in sorted(per_week)]


# --- Roll-ups' raw reads --------------------------------------------------------------------


class DayTotals(TypedDict):
    views: int
    users: int


def page_views_rolled_last() -> date | None:
    """The latest day rolled up into PageViewDay, or None before the first roll-up."""
    return PageViewDay.objects.order_by("-day").values_list("day", flat=True).first()


def page_views_of_day(*, day: date) -> QuerySet[PageView]:
    start = day_start(day)
    return PageView.objects.filter(created_at__gte=start, created_at__lt=start + DAY)


def page_view_totals_of_day(*, day: date) -> DayTotals:
    """A UTC day's views and distinct signed-in viewers from the raw rows."""
    totals = page_views_of_day(day=day).aggregate(
        views=Count("*"), users=Count("user_id", distinct=True)
    )
    return {"views": totals["views"], "users": totals["users"]}


def product_views_of_day(*, day: date) -> list[tuple[int, int]]:
    """(product id, views) of a UTC day from the raw rows (index pageview_created_product)."""
    return list(
        page_views_of_day(day=day)
        .filter(product_id__isnull=False)
        .values("product_id")
        .annotate(n=Count("*"))
        .values_list("product_id", "n")
    )


def path_views_of_day(*, day: date) -> list[tuple[str, int]]:
    """(path, views) of a UTC day from the raw rows (index pageview_created_path)."""
    return list(
        page_views_of_day(day=day).values("path").annotate(n=Count("*")).values_list("path", "n")
    )


def page_views_rolled_days_in(*, first: date, last: date) -> int:
    """How many days from `first` to `last` are rolled up."""
    return PageViewDay.objects.filter(day__range=(first, last)).count()


def product_views_of_days(*, first: date, before: date) -> list[tuple[int, int]]:
    """(product id, views) summed over the day roll-ups from `first` to before `before`."""
    return list(
        ProductViewDay.objects.filter(day__gte=first, day__lt=before)
        .values("product_id")
        .annotate(n=Sum("views"))
        .values_list("product_id", "n")
    )


def path_views_of_days(*, first: date, before: date) -> list[tuple[str, int]]:
    """(path, views) summed over the day roll-ups from `first` to before `before`."""
    return list(
        PathViewDay.objects.filter(day__gte=first, day__lt=before)
        .values("path")
        .annotate(n=Sum("views"))
        .values_list("path", "n")
    )


def active_users_of_week(*, week: date) -> int:
    """Distinct signed-in viewers of the ISO week starting `week` (index pageview_created_user)."""
    start = day_start(week)
    users: int = PageView.objects.filter(
        created_at__gte=start, created_at__lt=start + WEEK, user_id__isnull=False
    ).aggregate(users=Count("user_id", distinct=True))["users"]
    return users


# --- Cached reads (each may be stale up to its type's TTL) ----------------------------


def home_stats() -> dict[str, Any]:
    """The community at a glance. "Today" starts at midnight UTC."""
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "users": User.objects.filter(is_active=True, is_staff=False).count(),
        "products": sum(row["product_count"] for row in product_categories()),
        "rankings_today": activity_count_since(kind=ActivityKind.RANKING_SUBMITTED, since=midnight),
        "active_streaks": active_streak_count(today=(now - timedelta(hours=12)).date()),
        "achievements_unlocked_today": achievements_unlocked_since(since=midnight),
        "users_online": users_online_count(),
        "top_products": [
            {
                "product_id": meta.product_id,
                "name": meta.product.name,
                "slug": meta.product.slug,
                "category": meta.product.category,
                "ranking_count": meta.ranking_count,
            }
            for meta in products_top_ranked(limit=5)
        ],
        "generated_at": now,
    }


def achievement_definitions_public() -> list[dict[str, Any]]:
    """Every active achievement with how many users unlocked it, unmasked."""
    counts = achievement_unlock_counts()
    return [
        {
            "id": a.pk,
            "code": a.code,
            "name": a.name,
            "description": a.description,
            "icon": a.icon,
            # With levels, the first level's: what it takes to unlock at all.
            "points": a.tiers[0].points,
            "metric": a.metric,
            "threshold": a.tiers[0].threshold,
            "levels": a.levels,
            "is_hidden": a.is_hidden,
            "unlocked_by": counts.get(a.pk, 0),
        }
        for a in achievement_definitions()
    ]


def achievement_definitions_cached() -> list[dict[str, Any]]:
    return cache_get_or_set(
        CacheType.ACHIEVEMENT_DEFINITIONS, "all", achievement_definitions_public
    )


# What a hidden achievement shows until the viewer unlocks it: that it exists, nothing more.
HIDDEN_MASK = {
    "id": None,
    "code": None,
    "name": "Hidden achievement",
    "description": "Keep playing to find out.",
    "icon": "❓",
    "points": None,
    "metric": None,
    "threshold": None,
    "levels": None,
    "unlocked_by": None,
}


def achievements_for_viewer(*, user: User | None) -> list[dict[str, Any]]:
    """The definitions, hidden ones masked unless this viewer unlocked them."""
    unlocked = (
        unlocked_achievement_ids(user=user) if user is not None and user.is_authenticated else set()
    )
    return [
        {
            **definition,
            **(HIDDEN_MASK if definition["is_hidden"] and definition["id"] not in unlocked else {}),
            "unlocked": definition["id"] in unlocked,
        }
        for definition in achievement_definitions_cached()
    ]


def achievement_delete_blocker(*, achievement: Achievement) -> str | None:
    """Why an achievement must not be deleted (users unlocked it), or None."""
    if achievement.user_achievements.filter(unlocked_at__isnull=False).exists():
        return (
            "Users have unlocked this achievement; set is_active to false instead of deleting it."
        )
    return None
