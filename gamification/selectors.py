"""Reads of the game: leaderboards, achievements, streaks, the ledger and page views.

Each selector named in migrations/0002_performance_indexes.py runs the query its index serves.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from django.db import connection
from django.db.models import (
    Avg,
    BooleanField,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Concat, TruncDate, TruncWeek
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_day
from config.caching import CacheType, cache_get_or_set
from config.db_router import replica_reads
from gamification.models import (
    Achievement,
    ActivityKind,
    ActivityLog,
    PageView,
    Streak,
    UserAchievement,
)
from products.selectors import product_categories, products_top_ranked
from realtime.presence import users_online_count


class _Progress(TypedDict):
    progress: int | None
    held_level: int
    held_unlocked_at: datetime | None


class _Total(TypedDict):
    total: int


class _UserTotal(TypedDict):
    user_id: int
    total: int


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

Window = Literal["all", "week"]
WINDOWS: tuple[Window, ...] = ("all", "week")
LEADERBOARD_MAX = 100
LEADERBOARD_DEFAULT_LIMIT = 10
WEEK = timedelta(days=7)

# The leaderboard's population; the same predicate as the partial index user_leaderboard.
RANKED = Q(is_active=True, is_staff=False, leaderboard_opt_out=False, leaderboard_excluded=False)


@dataclass(frozen=True)
class Entry:
    user_id: int
    display_name: str
    points: int


def _display_name(*, display_name: str, handle: str) -> str:
    # Never derived from the e-mail: the board is public.
    return display_name or handle


def _ranked(entries: list[Entry], *, first_rank: int, first_position: int) -> list[dict[str, Any]]:
    """Competition ranks (1, 1, 3) for a run of entries that is contiguous in board order."""
    ranked: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        if index == 0:
            rank = first_rank
        elif entry.points == entries[index - 1].points:
            rank = ranked[-1]["rank"]
        else:
            rank = first_position + index
        ranked.append({"rank": rank, **entry.__dict__})
    return ranked


def ranked_users() -> QuerySet[User]:
    return User.objects.filter(RANKED)


def leaderboard_all(*, limit: int) -> list[dict[str, Any]]:
    """The top users by total points; ties list the lower user id first (index user_leaderboard)."""
    rows = (
        ranked_users()
        .order_by("-points", "id")
        .values_list("id", "display_name", "handle", "points")[:limit]
    )
    entries = [
        Entry(user_id=pk, display_name=_display_name(display_name=name, handle=handle), points=p)
        for pk, name, handle, p in rows
    ]
    return _ranked(entries, first_rank=1, first_position=1)


def _week_totals(
    *, since: datetime
) -> "QuerySet[WithAnnotations[ActivityLog, _Total], _UserTotal]":
    """Points per ranked user since a time, from the ledger (index activity_created_user)."""
    return (
        ActivityLog.objects.filter(created_at__gte=since)
        .values("user_id")
        .annotate(total=Sum("points"))
        .filter(total__gt=0)
    )


def leaderboard_week(*, limit: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """The top users by points earned in the last 7 days (index activity_created_user)."""
    since = (now or timezone.now()) - WEEK
    totals = list(
        _week_totals(since=since)
        .filter(user__in=ranked_users())
        .order_by("-total", "user_id")[:limit]
    )
    names = dict(
        (pk, _display_name(display_name=name, handle=handle))
        for pk, name, handle in User.objects.filter(
            pk__in=[row["user_id"] for row in totals]
        ).values_list("id", "display_name", "handle")
    )
    entries = [
        Entry(user_id=row["user_id"], display_name=names[row["user_id"]], points=row["total"])
        for row in totals
    ]
    return _ranked(entries, first_rank=1, first_position=1)


def leaderboard(*, window: Window, limit: int, now: datetime | None = None) -> list[dict[str, Any]]:
    if window == "week":
        return leaderboard_week(limit=limit, now=now)
    return leaderboard_all(limit=limit)


def leaderboard_position(
    *, user: User, window: Window, around: int = 2, now: datetime | None = None
) -> dict[str, Any]:
    """A user's rank, points, how many are ranked and the neighbours just above and below."""
    if window == "week":
        return _position_week(user=user, around=around, now=now)
    return _position_all(user=user, around=around)


def _count_in_board_order(users: QuerySet[User]) -> int:
    """Count users by walking the partial index user_leaderboard, never the table.

    Ordering the rows like the index makes PostgreSQL answer from an index-only scan whatever
    share of the board is counted, where a bare COUNT(*) falls back to reading the whole table
    once more than about a third of the users match.
    """
    sql, params = users.order_by("-points", "id").values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) AS board", params)
        count: int = cursor.fetchone()[0]
        return count


def leaderboard_total() -> int:
    """How many users the `all` board ranks (cached: one walk of the index per TTL)."""
    return cache_get_or_set(
        CacheType.LEADERBOARD, "total", lambda: _count_in_board_order(ranked_users())
    )


def leaderboard_rank(*, points: int) -> int:
    """The competition rank of a score on the `all` board: 1 + users with more points."""
    return _count_in_board_order(ranked_users().filter(points__gt=points)) + 1


def leaderboard_standing(*, user_id: int) -> dict[str, Any]:
    """A user's rank on the `all` board (None when not ranked), points and the board's size."""
    points, ranked = (
        User.objects.filter(pk=user_id)
        .annotate(ranked=ExpressionWrapper(RANKED, output_field=BooleanField()))
        .values_list("points", "ranked")
        .get()
    )
    total = leaderboard_total()
    if not ranked:
        return {"window": "all", "rank": None, "points": points, "total": total}
    rank = leaderboard_rank(points=points)
    return {"window": "all", "rank": rank, "points": points, "total": max(total, rank)}


def _position_all(*, user: User, around: int) -> dict[str, Any]:
    board = ranked_users()
    me = board.filter(pk=user.pk).values_list("points", flat=True).first()
    points = user.points if me is None else me
    total = leaderboard_total()
    if me is None:
        return {"rank": None, "points": points, "total": total, "around": []}
    rank = leaderboard_rank(points=points)
    columns = ("id", "display_name", "handle", "points")
    # Each neighbour query is an index range next to the user's own entry: a tie first, then
    # the next scores, so none walks the board from one end.
    above = list(
        board.filter(points=points, id__lt=user.pk).order_by("-id").values_list(*columns)[:around]
    )
    above += (
        board.filter(points__gt=points)
        .order_by("points", "-id")
        .values_list(*columns)[: around - len(above)]
    )
    below = list(
        board.filter(points=points, id__gt=user.pk).order_by("id").values_list(*columns)[:around]
    )
    below += (
        board.filter(points__lt=points)
        .order_by("-points", "id")
        .values_list(*columns)[: around - len(below)]
    )
    run = [*reversed(above), (user.pk, user.display_name, user.handle, points), *below]
    first_id, first_points = run[0][0], run[0][3]
    # Only the few users between the first neighbour's score and ours are counted again.
    first_rank = rank - board.filter(points__gt=points, points__lte=first_points).count()
    tied_before = board.filter(points=first_points, id__lt=first_id).count()
    entries = [
        Entry(user_id=pk, display_name=_display_name(display_name=name, handle=handle), points=p)
        for pk, name, handle, p in run
    ]
    return {
        "rank": rank,
        # The board may have grown since the cached total; never show a rank past the end.
        "total": max(total, rank),
        "points": points,
        "around": _ranked(entries, first_rank=first_rank, first_position=first_rank + tied_before),
    }


def _position_week(*, user: User, around: int, now: datetime | None) -> dict[str, Any]:
    since = (now or timezone.now()) - WEEK
    totals = list(
        _week_totals(since=since)
        .filter(user__in=ranked_users())
        .order_by("-total", "user_id")
        .values_list("user_id", "total")
    )
    index = next((i for i, (pk, _) in enumerate(totals) if pk == user.pk), None)
    mine = (
        ActivityLog.objects.filter(user=user, created_at__gte=since).aggregate(s=Sum("points"))["s"]
        or 0
    )
    if index is None:
        return {"rank": None, "points": mine, "total": len(totals), "around": []}
    start = max(index - around, 0)
    window = totals[start : index + around + 1]
    first_points = window[0][1]
    first_position = start + 1
    first_rank = next(i for i, (_, t) in enumerate(totals) if t == first_points) + 1
    names = dict(
        (pk, _display_name(display_name=name, handle=handle))
        for pk, name, handle in User.objects.filter(pk__in=[pk for pk, _ in window]).values_list(
            "id", "display_name", "handle"
        )
    )
    entries = [Entry(user_id=pk, display_name=names[pk], points=t) for pk, t in window]
    ranked = _ranked(entries, first_rank=first_rank, first_position=first_position)
    rank = next(e["rank"] for e in ranked if e["user_id"] == user.pk)
    return {"rank": rank, "points": mine, "total": len(totals), "around": ranked}


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
