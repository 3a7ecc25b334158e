"""Writes of the game: the points ledger, streaks, achievements and page views."""

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from config.caching import CacheType, cache_key
from gamification import selectors
from gamification.models import (
    Achievement,
    ActivityKind,
    ActivityLog,
    Metric,
    PageView,
    Streak,
    UserAchievement,
)
from gamification.selectors import WINDOWS
from products.selectors import product_get, searches_for_user
from rankings.selectors import categories_ranked_count
from realtime.events import LIVE_GROUP, event_send, user_group

SUBMISSION_POINTS = 10
PAID_SUBMISSIONS_PER_DAY = 5
STREAK_BONUS_PER_DAY = 2
STREAK_BONUS_MAX = 20
STREAK_DAYS_PER_FREEZE = 7
FREEZES_MAX = 2


def local_date_for(*, user: User, now: datetime | None = None) -> date:
    """The calendar day it is (or was at `now`) in the user's own zone."""
    now = now or timezone.now()
    try:
        zone = zoneinfo.ZoneInfo(user.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return now.astimezone(zone).date()


def points_award(
    *,
    user: User,
    kind: str,
    points: int,
    local_date: date,
    data: dict[str, Any] | None = None,
    actor: User | None = None,
    reason: str = "",
    now: datetime | None = None,
    notify: bool = True,
) -> ActivityLog:
    """Append a ledger entry and move `User.points` by the same amount, in one transaction.

    The only writer of `User.points`: the total can never drift from the ledger.
    """
    with transaction.atomic():
        entry = ActivityLog.objects.create(
            user=user,
            kind=kind,
            points=points,
            local_date=local_date,
            data=data or {},
            actor=actor,
            reason=reason,
            created_at=now or timezone.now(),
        )
        if points:
            User.objects.filter(pk=user.pk).update(points=F("points") + points)
            user.points = User.objects.values_list("points", flat=True).get(pk=user.pk)
            if notify:
                points_changed_notify(user=user)
    return entry


def points_changed_notify(*, user: User) -> None:
    """Tell the user their new total and the live audience that the leaderboard moved.

    The user's own cached positions are dropped: they are the one reader who knows they moved.
    """
    stale = [cache_key(CacheType.LEADERBOARD_POSITION, f"{w}:{user.pk}") for w in WINDOWS]
    transaction.on_commit(lambda: cache.delete_many(stale))
    event_send(group=user_group(user.pk), event_type="points.updated", data={"points": user.points})
    event_send(group=LIVE_GROUP, event_type="leaderboard.updated", data={})


def points_rebuild(*, user: User | None = None) -> int:
    """Set `User.points` back to the sum of the ledger; returns how many totals were wrong."""
    users = User.objects.all() if user is None else User.objects.filter(pk=user.pk)
    ledger = (
        ActivityLog.objects.filter(user=OuterRef("pk"))
        .values("user")
        .annotate(total=Sum("points"))
        .values("total")
    )
    drifted = (
        users.annotate(ledger=Coalesce(Subquery(ledger), 0))
        .exclude(points=F("ledger"))
        .values_list("pk", flat=True)
    )
    fixed = 0
    for user_id in list(drifted):
        with transaction.atomic():
            # Recounted under the lock: a submission may have moved both since the scan.
            User.objects.select_for_update().filter(pk=user_id).values_list("pk").get()
            total = ActivityLog.objects.filter(user_id=user_id).aggregate(total=Sum("points"))
            fixed += (
                User.objects.filter(pk=user_id)
                .exclude(points=total["total"] or 0)
                .update(points=total["total"] or 0)
            )
    return fixed


@dataclass
class StreakChange:
    streak: Streak
    first_today: bool
    bonus: int = 0
    freeze_used: bool = False
    freeze_earned: bool = False


def streak_advance(*, user: User, local_date: date) -> StreakChange:
    """Count an active local day for the streak. The caller holds the user's row lock."""
    streak, _ = Streak.objects.select_for_update().get_or_create(user=user)
    last = streak.last_active_date
    if last is not None and local_date <= last:
        # Same day, or the user moved to a zone that is behind: nothing to count again.
        return StreakChange(streak=streak, first_today=False)
    change = StreakChange(streak=streak, first_today=True)
    if last == local_date - timedelta(days=1) and streak.current_length > 0:
        streak.current_length += 1
    elif (
        last == local_date - timedelta(days=2)
        and streak.current_length > 0
        and streak.freezes_left > 0
    ):
        streak.freezes_left -= 1
        streak.current_length += 1
        change.freeze_used = True
    else:
        streak.current_length = 1
    if streak.current_length % STREAK_DAYS_PER_FREEZE == 0 and streak.freezes_left < FREEZES_MAX:
        streak.freezes_left += 1
        change.freeze_earned = True
    streak.longest_length = max(streak.longest_length, streak.current_length)
    streak.last_active_date = local_date
    streak.updated_at = timezone.now()
    streak.save()
    change.bonus = min(STREAK_BONUS_PER_DAY * streak.current_length, STREAK_BONUS_MAX)
    return change


def streak_notify(*, user: User, streak: Streak) -> None:
    event_send(
        group=user_group(user.pk),
        event_type="streak.updated",
        data={
            "current_length": streak.current_length,
            "longest_length": streak.longest_length,
            "freezes_left": streak.freezes_left,
            "last_active_date": streak.last_active_date.isoformat()
            if streak.last_active_date
            else None,
        },
    )


def _metric_values(*, user: User, metrics: set[str]) -> dict[str, int]:
    values: dict[str, int] = {}
    if Metric.RANKINGS_SUBMITTED in metrics:
        values[Metric.RANKINGS_SUBMITTED] = selectors.activity_kind_count(
            user=user, kind=ActivityKind.RANKING_SUBMITTED
        )
    if Metric.STREAK_DAYS in metrics:
        streak = Streak.objects.filter(user=user).first()
        values[Metric.STREAK_DAYS] = streak.longest_length if streak else 0
    if Metric.CATEGORIES_RANKED in metrics:
        values[Metric.CATEGORIES_RANKED] = categories_ranked_count(user=user)
    if Metric.SEARCHES_MADE in metrics:
        values[Metric.SEARCHES_MADE] = searches_for_user(user_id=user.pk).count()
    if Metric.POINTS in metrics:
        values[Metric.POINTS] = User.objects.values_list("points", flat=True).get(pk=user.pk)
    return values


@dataclass
class Evaluation:
    unlocked: list[Achievement] = field(default_factory=list)
    points: int = 0


def _evaluate(*, user: User, metrics: Iterable[str], now: datetime, notify: bool) -> Evaluation:
    """Progress and unlocks for `metrics`; the caller holds the user's row lock."""
    result = Evaluation()
    pending = set(metrics)
    while pending:
        achievements = list(Achievement.objects.filter(is_active=True, metric__in=pending))
        values = _metric_values(user=user, metrics=pending)
        pending = set()
        held_by_id = {
            held.achievement_id: held
            for held in UserAchievement.objects.filter(user=user, achievement__in=achievements)
        }
        for achievement in achievements:
            value = values[achievement.metric]
            reached = value >= achievement.threshold
            held = held_by_id.get(achievement.pk) or UserAchievement(
                user=user, achievement=achievement
            )
            progress = min(value, achievement.threshold)
            if held.unlocked_at is not None or (
                held.pk and held.progress == progress and not reached
            ):
                continue
            held.progress = progress
            held.updated_at = now
            if reached:
                held.unlocked_at = now
            held.save()
            if not reached:
                continue
            result.unlocked.append(achievement)
            if achievement.points:
                points_award(
                    user=user,
                    kind=ActivityKind.ACHIEVEMENT_UNLOCKED,
                    points=achievement.points,
                    local_date=local_date_for(user=user, now=now),
                    data={"achievement": achievement.code},
                    now=now,
                    notify=False,
                )
                result.points += achievement.points
                # The unlock's own points may reach a points achievement.
                pending.add(Metric.POINTS)
            if notify:
                event_send(
                    group=user_group(user.pk),
                    event_type="achievement.unlocked",
                    data=achievement_event_data(achievement=achievement),
                )
    return result


def _user_lock(*, user: User) -> None:
    """Serialize every change of one user's points, streak and achievements."""
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).get()


def achievements_evaluate(
    *,
    user: User,
    metrics: Iterable[str],
    now: datetime | None = None,
    notify: bool = True,
) -> list[Achievement]:
    """Update progress on the achievements of `metrics`, unlocking (and paying) the ones reached.

    Each unlock happens once: the user's row lock serializes evaluations and an unlocked time
    is never cleared. Returns the achievements unlocked now.
    """
    with transaction.atomic():
        _user_lock(user=user)
        result = _evaluate(user=user, metrics=metrics, now=now or timezone.now(), notify=notify)
        if notify and result.points:
            points_changed_notify(user=user)
    return result.unlocked


def achievements_reevaluate(*, notify: bool = False) -> dict[str, int]:
    """Award what every user's history has earned and was never awarded. Safe to run twice.

    Employees run it after adding or changing achievements; by default nobody is notified.
    """
    metrics = list(Metric.values)
    checked = unlocked = 0
    for user in User.objects.filter(is_active=True).order_by("pk").iterator(chunk_size=500):
        unlocked += len(achievements_evaluate(user=user, metrics=metrics, notify=notify))
        checked += 1
    return {"users_checked": checked, "achievements_unlocked": unlocked}


@dataclass
class SubmissionReward:
    points_awarded: int
    streak: Streak
    new_achievements: list[Achievement]


def submission_reward(
    *, user: User, category: str, product_ids: list[int], now: datetime
) -> SubmissionReward:
    """Ledger, points, streak and achievements of one ranking submission.

    Runs inside the submission's transaction with the user's row already locked, so that
    concurrent submissions of one user count the daily cap one after the other.
    """
    local_date = local_date_for(user=user, now=now)
    paid = selectors.paid_submissions_on(user=user, local_date=local_date)
    submission_points = SUBMISSION_POINTS if paid < PAID_SUBMISSIONS_PER_DAY else 0
    points_award(
        user=user,
        kind=ActivityKind.RANKING_SUBMITTED,
        points=submission_points,
        local_date=local_date,
        data={"category": category, "product_ids": product_ids},
        now=now,
        notify=False,
    )
    change = streak_advance(user=user, local_date=local_date)
    awarded = submission_points
    if change.first_today and change.bonus:
        points_award(
            user=user,
            kind=ActivityKind.STREAK_BONUS,
            points=change.bonus,
            local_date=local_date,
            data={"streak_days": change.streak.current_length},
            now=now,
            notify=False,
        )
        awarded += change.bonus
    evaluation = _evaluate(
        user=user,
        metrics=[
            Metric.RANKINGS_SUBMITTED,
            Metric.STREAK_DAYS,
            Metric.CATEGORIES_RANKED,
            Metric.POINTS,
        ],
        now=now,
        notify=True,
    )
    awarded += evaluation.points
    if change.first_today:
        streak_notify(user=user, streak=change.streak)
    if awarded:
        points_changed_notify(user=user)
    return SubmissionReward(
        points_awarded=awarded, streak=change.streak, new_achievements=evaluation.unlocked
    )


def achievement_event_data(*, achievement: Achievement) -> dict[str, Any]:
    return {
        "code": achievement.code,
        "name": achievement.name,
        "description": achievement.description,
        "icon": achievement.icon,
        "points": achievement.points,
    }


class InvalidPageView(ValueError):
    """The page view names something that does not exist."""


def page_view_record(
    *,
    path: str,
    product_id: int | None = None,
    user: User | None = None,
    session_key: str = "",
    referrer: str = "",
) -> PageView:
    """Count one page view; a product id must name an active product."""
    if product_id is not None and product_get(product_id=product_id) is None:
        raise InvalidPageView("No active product has this id.")
    return PageView.objects.create(
        path=path,
        product_id=product_id,
        user=user if user is not None and user.is_authenticated else None,
        session_key=(session_key or "")[:40],
        referrer=referrer[:500],
    )
