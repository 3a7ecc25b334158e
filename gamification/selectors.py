"""Reads of the game: leaderboards, achievements, streaks, the ledger and page views.

Each selector named in migrations/0002_performance_indexes.py runs the query its index serves.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

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
from accounts.selectors import user_day
from config.caching import CacheType, cache_get_or_set
from config.db_router import replica_reads
from gamification import boards
from gamification.boards import WINDOWS, Period, Window, period_of, score_encode, score_points
from gamification.hooks import metric_source_values
from gamification.models import (
    Achievement,
    ActivityKind,
    ActivityLog,
    Metric,
    PageView,
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


class _PeriodTotal(TypedDict):
    total: int
    reached: datetime | None


class _UserPeriodTotal(TypedDict):
    user_id: int
    total: int
    reached: datetime | None


class PathViews(TypedDict):
    path: str
    views: int


class DayViews(TypedDict):
    day: date
    views: int


class ProductViews(TypedDict):
    product_id: int
    views: int


class _PeriodUsers(TypedDict):
    period: Any
    users: int


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
    # Points and the time they were reached per user in a period (`_period_totals`).
    Totals = QuerySet[WithAnnotations[ActivityLog, _PeriodTotal], _UserPeriodTotal]

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


def _public_names(user_ids: Iterable[int]) -> dict[int, str]:
    """Each user's public name (`User.public_name`), never the e-mail address itself."""
    # Only the columns public_name reads: a page of 100 builds its users twice as fast.
    users = User.objects.filter(pk__in=list(user_ids)).only("id", "display_name", "handle")
    return {user.pk: user.public_name for user in users}


@dataclass(frozen=True)
class Standing:
    """One user's score on a board, in board order: more points, then reached first, then id."""

    user_id: int
    points: int
    reached_at: datetime | None = None


def _entries(
    standings: list[Standing], *, first_rank: int, first_index: int
) -> list[dict[str, Any]]:
    """Competition ranks (1, 1, 3) for a run of standings contiguous in board order, the first
    at 0-based place `first_index` with rank `first_rank`, each with its public name."""
    names = _public_names(s.user_id for s in standings)
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
    """`limit` entries of a board from place `offset` (0 = the top), with the board's size."""
    period = period_of(window=window, at=now or timezone.now())
    board = boards.board_page(period=period, offset=offset, limit=limit)
    if board is not None:
        standings = [Standing(user_id=pk, points=score_points(s)) for pk, s in board.members]
        total, first_rank = board.total, board.first_rank
    elif period.start is None:
        standings, total, first_rank = _sql_page_all(offset=offset, limit=limit)
    else:
        standings, total, first_rank = _sql_page_period(period=period, offset=offset, limit=limit)
    return {
        "window": window,
        "period_start": period.start,
        "generated_at": timezone.now(),
        "offset": offset,
        "total": total,
        "entries": _entries(standings, first_rank=first_rank, first_index=offset),
    }


def leaderboard_position(
    *, user: User, window: Window, around: int = AROUND_DEFAULT, now: datetime | None = None
) -> dict[str, Any]:
    """A user's rank, points, the share of players at or below them and `around` neighbours
    on each side (the user included); rank None when the user is not on the board."""
    period = period_of(window=window, at=now or timezone.now())
    found = boards.board_position(period=period, user_id=user.pk, around=around)
    if found is not None:
        total, rank, at_or_below = found.total, found.rank, found.at_or_below
        points = score_points(found.score) if found.score is not None else None
        run = [Standing(user_id=pk, points=score_points(s)) for pk, s in found.around.members]
        first_rank = found.around.first_rank
        first_index = (found.index or 0) - min(around, found.index or 0)
    elif period.start is None:
        total, rank, at_or_below, points, run, first_rank, first_index = _sql_position_all(
            user=user, around=around
        )
    else:
        total, rank, at_or_below, points, run, first_rank, first_index = _sql_position_period(
            user=user, period=period, around=around
        )
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
        }
    return {
        "window": window,
        "rank": rank,
        "points": points,
        "total": total,
        "percentile": _percentile(at_or_below=at_or_below, total=total),
        "around": _entries(run, first_rank=first_rank, first_index=first_index),
    }


def leaderboard_standing(*, user_id: int) -> dict[str, Any]:
    """A user's rank on the `all` board (None when not ranked), points and the board's size."""
    found = leaderboard_position(user=User.objects.get(pk=user_id), window="all", around=0)
    return {key: found[key] for key in ("window", "rank", "points", "total")}


def leaderboard_scores(*, period: Period, batch: int) -> Iterator[dict[int, float]]:
    """Every ranked player's board score in a period, from the ledger, a batch at a time."""
    if period.start is None:
        last = 0
        while True:
            rows: list[tuple[int, int, datetime]] = list(
                ranked_users()
                .filter(points__gt=0, pk__gt=last)
                .order_by("pk")
                .values_list("pk", "points", "points_reached_at")[:batch]
            )
            if not rows:
                return
            last = rows[-1][0]
            yield {pk: score_encode(points=p, reached_at=at) for pk, p, at in rows}
    bounds = User.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return
    for low in range(bounds["low"], bounds["high"] + 1, batch):
        totals = _period_totals(period=period, users=Q(user_id__gte=low, user_id__lt=low + batch))
        yield {
            row["user_id"]: score_encode(points=row["total"], reached_at=row["reached"])
            for row in totals
        }


def leaderboard_user_score(*, user: User, period: Period) -> float | None:
    """The user's board score in a period, None when they have no points there."""
    if period.start is None:
        if user.points <= 0:
            return None
        return score_encode(points=user.points, reached_at=user.points_reached_at)
    row = _period_totals(period=period, users=Q(user_id=user.pk)).order_by("user_id").first()
    return None if row is None else score_encode(points=row["total"], reached_at=row["reached"])


# --- The SQL boards: every count and range walks an index, never a table -----------------------


def ranked_users() -> QuerySet[User]:
    return User.objects.filter(RANKED)


def _board_all() -> QuerySet[User]:
    return ranked_users().filter(points__gt=0)


def _count_in_board_order(users: QuerySet[User]) -> int:
    """Count users by walking the partial index user_leaderboard, never the table.

    Ordering the rows like the index makes PostgreSQL answer from an index-only scan whatever
    share of the board is counted, where a bare COUNT(*) falls back to reading the whole table
    once more than about a third of the users match.
    """
    sql, params = users.order_by(*BOARD_ORDER).values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) AS board", params)
        count: int = cursor.fetchone()[0]
        return count


def leaderboard_total() -> int:
    """How many users the `all` board ranks (cached: one walk of the index per TTL)."""
    return cache_get_or_set(
        CacheType.LEADERBOARD, "total", lambda: _count_in_board_order(_board_all())
    )


def leaderboard_rank(*, points: int) -> int:
    """The competition rank of a score on the `all` board: 1 + users with more points."""
    return _count_in_board_order(_board_all().filter(points__gt=points)) + 1


def _sql_page_all(*, offset: int, limit: int) -> tuple[list[Standing], int, int]:
    # The ids come from an index-only walk; only the page's own rows are read from the table.
    ids = list(_board_all().order_by(*BOARD_ORDER).values_list("id", flat=True)[offset:][:limit])
    rows = dict(
        (pk, (points, at))
        for pk, points, at in User.objects.filter(pk__in=ids).values_list(
            "id", "points", "points_reached_at"
        )
    )
    standings = [Standing(user_id=pk, points=rows[pk][0], reached_at=rows[pk][1]) for pk in ids]
    first_rank = leaderboard_rank(points=standings[0].points) if standings else 0
    return standings, leaderboard_total(), first_rank


# total, rank, players at or below, points, the run around the user, its first rank and place
SqlPosition = tuple[int, int | None, int, int | None, list[Standing], int, int]


def _sql_position_all(*, user: User, around: int) -> SqlPosition:
    board = _board_all()
    me = board.filter(pk=user.pk).values_list("points", "points_reached_at").first()
    total = leaderboard_total()
    if me is None:
        return total, None, 0, None, [], 0, 0
    points, reached = me
    pk = user.pk
    better = _count_in_board_order(board.filter(points__gt=points))
    tied_before = board.filter(points=points).filter(
        Q(points_reached_at__lt=reached) | Q(points_reached_at=reached, id__lt=pk)
    )
    index = better + _count_in_board_order(tied_before)
    columns = ("id", "points", "points_reached_at")
    # Each neighbour query is an index range next to the user's own entry, nearest first.
    above: list[tuple[int, int, datetime]] = []
    for part in (
        board.filter(points=points, points_reached_at=reached, id__lt=pk).order_by("-id"),
        board.filter(points=points, points_reached_at__lt=reached).order_by(
            "-points_reached_at", "-id"
        ),
        board.filter(points__gt=points).order_by("points", "-points_reached_at", "-id"),
    ):
        if len(above) < around:
            above += part.values_list(*columns)[: around - len(above)]
    below: list[tuple[int, int, datetime]] = []
    for part in (
        board.filter(points=points, points_reached_at=reached, id__gt=pk).order_by("id"),
        board.filter(points=points, points_reached_at__gt=reached).order_by(
            "points_reached_at", "id"
        ),
        board.filter(points__lt=points).order_by(*BOARD_ORDER),
    ):
        if len(below) < around:
            below += part.values_list(*columns)[: around - len(below)]
    run = [Standing(*row) for row in [*reversed(above), (pk, points, reached), *below]]
    # Only the users between the first neighbour's score and the user's are counted again.
    first_rank = better + 1 - board.filter(points__gt=points, points__lte=run[0].points).count()
    return (
        max(total, index + 1),
        better + 1,
        max(total, index + 1) - better,
        points,
        run,
        first_rank,
        index - len(above),
    )


def _period_totals(*, period: Period, users: Q) -> "Totals":
    """Points and the time they were reached per ranked user in a period, from the ledger
    (index activity_created_user: its cost grows with the period's ledger rows); users with
    no more than 0 points are left out."""
    return (
        ActivityLog.objects.filter(users, created_at__gte=period.start, created_at__lt=period.end)
        # The few unranked users, from their own partial index (user_unranked): a join with
        # the ranked ones would read the whole users table.
        .exclude(user__in=User.objects.exclude(RANKED).values("pk"))
        .values("user_id")
        .annotate(total=Sum("points"), reached=Max(TruncSecond("created_at"), filter=~Q(points=0)))
        .filter(total__gt=0)
    )


def _period_order(totals: "Totals") -> "Totals":
    return totals.order_by("-total", "reached", "user_id")


def _user_period_points(*, user: User, period: Period) -> int:
    return (
        ActivityLog.objects.filter(
            user=user, created_at__gte=period.start, created_at__lt=period.end
        ).aggregate(total=Sum("points"))["total"]
        or 0
    )


def _sql_page_period(*, period: Period, offset: int, limit: int) -> tuple[list[Standing], int, int]:
    totals = _period_totals(period=period, users=Q())
    rows = list(_period_order(totals)[offset:][:limit])
    standings = [
        Standing(user_id=row["user_id"], points=row["total"], reached_at=row["reached"])
        for row in rows
    ]
    first_rank = totals.filter(total__gt=rows[0]["total"]).count() + 1 if rows else 0
    return standings, totals.count(), first_rank


def _sql_position_period(*, user: User, period: Period, around: int) -> SqlPosition:
    totals = _period_totals(period=period, users=Q())
    total = totals.count()
    mine = _period_totals(period=period, users=Q(user_id=user.pk)).order_by("user_id").first()
    if mine is None:
        return total, None, 0, None, [], 0, 0
    points, reached = mine["total"], mine["reached"]
    better = totals.filter(total__gt=points).count()
    index = better + (
        totals.filter(total=points)
        .filter(Q(reached__lt=reached) | Q(reached=reached, user_id__lt=user.pk))
        .count()
    )
    start = max(index - around, 0)
    rows = list(_period_order(totals)[start : index + around + 1])
    run = [Standing(user_id=r["user_id"], points=r["total"], reached_at=r["reached"]) for r in rows]
    first_rank = totals.filter(total__gt=run[0].points).count() + 1
    return total, better + 1, total - better, points, run, first_rank, start


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
    counts = ActivityLog.objects.filter(user=user, kind=ActivityKind.RANKING_SUBMITTED).aggregate(
        paid_today=Count("pk", filter=Q(local_date=local_date, points__gt=0)),
        submitted=Count(_SUBMITTED_RANKING, distinct=True),
        category_today=Count("pk", filter=Q(local_date=local_date, data__category=category)),
    )
    return SubmissionCounts(**counts)


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
    candidates = (
        Achievement.objects.filter(is_active=True, metric__in=metrics)
        .annotate(
            held=FilteredRelation("user_achievements", condition=Q(user_achievements__user=user))
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
    *, users: list[User], metrics: set[str], now: datetime
) -> dict[str, dict[int, int]]:
    """Every metric of `metrics` for a batch of users, by metric then user id: one grouped
    query per metric whatever the batch's size, each counting as the single-user reads of
    `services._metric_values` do. `users` were read under their row locks (their points)."""
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
        rules = {user.pk: user_day(user=user, now=now).rule for user in users}
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


def page_views_per_day(*, since: datetime, product_id: int | None = None) -> list[DayViews]:
    """Views per UTC day since a time (index pageview_created_path; of one product,
    pageview_product_created)."""
    views = PageView.objects.filter(created_at__gte=since)
    if product_id is not None:
        views = views.filter(product_id=product_id)
    return list(
        views.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(views=Count("*"))
        .order_by("day")
    )


@replica_reads()
def top_paths(*, since: datetime, limit: int = 10) -> list[PathViews]:
    """The most viewed paths since a time (index-only scan of pageview_created_path)."""
    return list(
        PageView.objects.filter(created_at__gte=since)
        .values("path")
        .annotate(views=Count("*"))
        .order_by("-views", "path")[:limit]
    )


def products_viewed_most(*, since: datetime, limit: int = 10) -> list[ProductViews]:
    """The products viewed most since a time (index-only scan of pageview_created_product)."""
    return list(
        PageView.objects.filter(created_at__gte=since, product_id__isnull=False)
        .values("product_id")
        .annotate(views=Count("*"))
        .order_by("-views", "product_id")[:limit]
    )


def _active_users(
    *, since: datetime, trunc: type[TruncDate] | type[TruncWeek]
) -> list[_PeriodUsers]:
    return list(
        PageView.objects.filter(created_at__gte=since, user_id__isnull=False)
        .annotate(period=trunc("created_at"))
        .values("period")
        .annotate(users=Count("user_id", distinct=True))
        .order_by("period")
    )


def active_users_per_day(*, since: datetime) -> list[DayUsers]:
    """Signed-in users who viewed a page, per UTC day (index pageview_created_user)."""
    return [
        {"day": row["period"], "users": row["users"]}
        for row in _active_users(since=since, trunc=TruncDate)
    ]


def active_users_per_week(*, since: datetime) -> list[WeekUsers]:
    """Signed-in users who viewed a page, per ISO week from Monday (index pageview_created_user).

    The first week counts only the days since `since`.
    """
    return [
        {"week": row["period"].date(), "users": row["users"]}
        for row in _active_users(since=since, trunc=TruncWeek)
    ]


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
