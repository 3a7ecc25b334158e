"""Writes of the game: the points ledger, streaks, achievements and page views."""

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_day
from accounts.services import user_day_settle
from config.audit import AuditAction, audit_record
from config.caching import CacheType, cache_invalidate, cache_types_invalidate_on_commit
from config.counters import BufferedCounter
from config.rollups import (
    WEEK,
    month_next,
    month_of,
    rollup_day_check,
    rollup_days_due,
    rollup_earliest_day,
    today_utc,
    week_of,
)
from config.services import (
    ActionRefused,
    Progress,
    audited_delete,
    fields_apply,
    rows_delete_in_batches,
    rows_insert,
)
from config.tasks import task_send, tasks_run_in_process
from gamification import boards, selectors
from gamification.hooks import metric_source_value
from gamification.models import (
    Achievement,
    ActiveUsersWeek,
    ActivityKind,
    ActivityLog,
    BoardLadder,
    Level,
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
from gamification.rules import (
    FREEZES_MAX,
    PAID_SUBMISSIONS_PER_DAY,
    STREAK_DAYS_PER_FREEZE,
    SUBMISSION_POINTS,
    streak_bonus,
)
from products.selectors import product_get, searches_daily_distinct_count
from products.services import product_view_counts_add
from realtime.events import LIVE_GROUP, event_send, user_group

# The metrics a ranking submission can move.
SUBMISSION_METRICS = (
    Metric.RANKINGS_SUBMITTED,
    Metric.STREAK_DAYS,
    Metric.CATEGORIES_RANKED,
    Metric.POINTS,
)


def local_date_for(*, user: User, now: datetime | None = None) -> date:
    """The user's date at `now`: their zone and day-start hour, a pending change once due."""
    return user_day(user=user, now=now).date


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
    """Append a ledger entry and move `User.points` by the same amount, in one transaction."""
    entry = ActivityLog(
        user=user,
        kind=kind,
        points=points,
        local_date=local_date,
        data=data or {},
        actor=actor,
        reason=reason,
        created_at=now or timezone.now(),
    )
    # No savepoint: a failure here fails the caller's whole transaction, never half of it.
    with transaction.atomic(savepoint=False):
        if points:
            _user_lock(user=user)
        _ledger_append(user=user, entries=[entry])
        if points and notify:
            points_changed_notify(user=user)
    return entry


def _ledger_append(*, user: User, entries: list[ActivityLog]) -> None:
    """Write ledger entries and move `User.points` by their sum: with `points_award`, the only
    writer of `User.points`, so the total can never drift from the ledger.

    The caller holds the user's row lock and read `user.points` under it (as `_user_lock`
    does), so the total in hand stays the stored one without reading it back.
    """
    ActivityLog.objects.bulk_create(entries)
    total = sum(entry.points for entry in entries)
    if total:
        # Whole seconds, as the Redis boards keep them: both order ties the same way.
        reached = max(entry.created_at for entry in entries).replace(microsecond=0)
        User.objects.filter(pk=user.pk).update(
            points=F("points") + total, points_reached_at=reached
        )
        user.points += total
        user.points_reached_at = reached
    _period_points_add(user=user, entries=entries)
    leaderboard_record(user=user, entries=entries)


# The periods whose totals PeriodPoints keeps, whichever boards Redis keeps.
PERIOD_WINDOWS: tuple[boards.Window, ...] = ("day", "week", "month")

_PERIOD_POINTS_ADD = """
INSERT INTO "gamification_periodpoints" ("user_id", "period", "start", "points", "reached_at")
{rows}
ON CONFLICT ("user_id", "period", "start") DO UPDATE SET
    "points" = "gamification_periodpoints"."points" + excluded."points",
    "reached_at" = CASE
        WHEN "gamification_periodpoints"."reached_at" IS NULL
            OR excluded."reached_at" > "gamification_periodpoints"."reached_at"
        THEN excluded."reached_at" ELSE "gamification_periodpoints"."reached_at" END
"""


def _period_points_add(*, user: User, entries: list[ActivityLog]) -> None:
    """Move the user's day, week and month totals by the entries' points, in one statement of
    the ledger write's transaction."""
    _period_points_add_many(gains=[(user.pk, entry.points, entry.created_at) for entry in entries])


def _period_points_add_many(*, gains: list[tuple[int, int, datetime]]) -> None:
    """Move users' day, week and month totals by points won at times (user id, points, time),
    every user's in one statement (on PostgreSQL the rows go in as arrays, as a batch of
    re-evaluation moves thousands)."""
    moves: dict[tuple[int, str, datetime], tuple[int, datetime]] = {}
    starts: dict[tuple[str, datetime], datetime] = {}
    for user_id, won, when in gains:
        if not won:
            continue
        # Whole seconds, as the ledger's sums (selectors.ledger_period_totals) keep them.
        at = when.replace(microsecond=0)
        for window in PERIOD_WINDOWS:
            if (window, when) not in starts:
                start = boards.period_of(window=window, at=when).start
                assert start is not None
                starts[window, when] = start
            key = (user_id, window, starts[window, when])
            points, reached = moves.get(key, (0, at))
            moves[key] = (points + won, max(reached, at))
    if not moves:
        return
    if connection.vendor == "postgresql":
        rows = (
            "SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::timestamptz[],"
            " %s::integer[], %s::timestamptz[])"
        )
        params: list[Any] = [
            [user_id for user_id, _, _ in moves],
            [name for _, name, _ in moves],
            [start for _, _, start in moves],
            [points for points, _ in moves.values()],
            [reached for _, reached in moves.values()],
        ]
    else:
        adapt = connection.ops.adapt_datetimefield_value
        rows = "VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(moves))
        params = []
        for (user_id, name, start), (points, reached) in moves.items():
            params += [user_id, name, adapt(start), points, adapt(reached)]
    with connection.cursor() as cursor:
        cursor.execute(_PERIOD_POINTS_ADD.format(rows=rows), params)


def points_changed_notify(*, user: User) -> None:
    """Tell the user their new total and the live audience that the leaderboard moved.

    The user's cached positions are keyed by their points, so the new ones are read afresh.
    """
    user_id = user.pk
    event_send(group=user_group(user_id), event_type="points.updated", data={"points": user.points})
    event_send(
        group=user_group(user_id),
        event_type="leaderboard.position",
        data=lambda: selectors.leaderboard_standing(user_id=user_id),
    )
    event_send(
        group=LIVE_GROUP,
        event_type="leaderboard.updated",
        # Read when sent: a coalesced event carries the time of the latest change it stands for.
        data=lambda: {
            "windows": list(selectors.leaderboard_windows()),
            "version": int(time.time() * 1000),
        },
    )


# Users per statement of the bulk tools (points rebuild, achievements re-evaluation).
BATCH_USERS = 2000


def _user_id_batches(users: QuerySet[User]) -> Iterator[list[int]]:
    """The ids of `users` in ascending batches of BATCH_USERS, one keyset query per batch."""
    last = 0
    while True:
        batch = list(
            users.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:BATCH_USERS]
        )
        if not batch:
            return
        yield batch
        last = batch[-1]


def _ledger_sums(**filters: Any) -> dict[int, int]:
    return dict(
        ActivityLog.objects.filter(**filters)
        .values("user_id")
        .annotate(total=Sum("points"))
        .values_list("user_id", "total")
    )


def _points_reset(*, user_ids: list[int]) -> int:
    """Set the users' totals to their ledger sums in one statement; returns how many moved."""
    with transaction.atomic():
        # Locked, then recounted: a submission may have moved a total since the scan.
        current = dict(
            User.objects.select_for_update()
            .filter(pk__in=user_ids)
            .order_by("pk")
            .values_list("pk", "points")
        )
        sums = _ledger_sums(user_id__in=user_ids)
        wrong = {pk: sums.get(pk, 0) for pk, points in current.items() if points != sums.get(pk, 0)}
        _points_store(totals=wrong)
    return len(wrong)


def _points_store(*, totals: dict[int, int], reached_at: dict[int, datetime] | None = None) -> None:
    """Write users' totals (and when they were reached), all in one statement; the caller holds
    their row locks.

    On PostgreSQL the values are joined in as arrays (`UPDATE ... FROM unnest(...)`): the
    portable CASE over thousands of ids costs about a second a batch there.
    """
    if not totals:
        return
    ids = list(totals)
    points = [totals[pk] for pk in ids]
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(User._meta.db_table)
        with connection.cursor() as cursor:
            if reached_at is None:
                cursor.execute(
                    f"UPDATE {table} AS u SET points = v.points"
                    " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, points) WHERE u.id = v.id",
                    [ids, points],
                )
            else:
                cursor.execute(
                    f"UPDATE {table} AS u SET points = v.points, points_reached_at = v.reached_at"
                    " FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[])"
                    " AS v(id, points, reached_at) WHERE u.id = v.id",
                    [ids, points, [reached_at[pk] for pk in ids]],
                )
        return
    users = [User(pk=pk, points=total) for pk, total in zip(ids, points, strict=True)]
    fields = ["points"]
    if reached_at is not None:
        fields.append("points_reached_at")
        for user in users:
            user.points_reached_at = reached_at[user.pk]
    User.objects.bulk_update(users, fields)


def points_rebuild(*, user: User | None = None, on_progress: Progress | None = None) -> int:
    """Set `User.points` back to the sum of the ledger, a batch of users per statement; returns
    how many totals were wrong."""
    users = User.objects.all() if user is None else User.objects.filter(pk=user.pk)
    total_users = users.count()
    fixed = done = 0
    for batch in _user_id_batches(users):
        # The batch's ledger sums in one grouped read, compared here: no subquery per user.
        in_batch = {"user_id__gte": batch[0], "user_id__lte": batch[-1]}
        sums = _ledger_sums(**in_batch)
        drifted = [
            pk
            for pk, points in User.objects.filter(pk__in=batch).values_list("pk", "points")
            if points != sums.get(pk, 0)
        ]
        if drifted:
            fixed += _points_reset(user_ids=drifted)
        done += len(batch)
        if on_progress is not None:
            on_progress(done, total_users)
    leaderboards_refresh(user=user)
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
    missed = (
        None
        if last is None
        else selectors.streak_missed_days(last=last, day=local_date, skipped=user.skipped_date)
    )
    if missed == 0 and streak.current_length > 0:
        streak.current_length += 1
    elif missed == 1 and streak.current_length > 0 and streak.freezes_left > 0:
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
    change.bonus = streak_bonus(streak_length=streak.current_length)
    return change


def streak_event_data(*, streak: Streak) -> dict[str, Any]:
    return {
        "current_length": streak.current_length,
        "longest_length": streak.longest_length,
        "freezes_left": streak.freezes_left,
        "last_active_date": streak.last_active_date.isoformat()
        if streak.last_active_date
        else None,
    }


def streak_notify(*, user: User, streak: Streak) -> None:
    event_send(
        group=user_group(user.pk),
        event_type="streak.updated",
        data=streak_event_data(streak=streak),
    )


def _metric_values(
    *, user: User, metrics: set[str], known: dict[str, int] | None = None
) -> dict[str, int]:
    """The user's value of each metric, reading only those not `known` already; `user.points`
    was read under the user's row lock."""
    values = {metric: value for metric, value in (known or {}).items() if metric in metrics}
    missing = metrics - values.keys()
    if Metric.RANKINGS_SUBMITTED in missing:
        values[Metric.RANKINGS_SUBMITTED] = selectors.rankings_submitted_count(user=user)
    if Metric.STREAK_DAYS in missing:
        streak = Streak.objects.filter(user=user).first()
        values[Metric.STREAK_DAYS] = streak.longest_length if streak else 0
    if Metric.CATEGORIES_RANKED in missing:
        values[Metric.CATEGORIES_RANKED] = metric_source_value(
            metric=Metric.CATEGORIES_RANKED, user=user
        )
    if Metric.SEARCHES_MADE in missing:
        rule = user_day(user=user).rule
        values[Metric.SEARCHES_MADE] = searches_daily_distinct_count(
            user_id=user.pk, zone=rule.zone, day_start_hour=rule.day_start_hour
        )
    if Metric.POINTS in missing:
        values[Metric.POINTS] = user.points
    return values


@dataclass(frozen=True)
class Unlock:
    """One level of an achievement reached: an achievement without levels has one."""

    achievement: Achievement
    level: Level

    @property
    def code(self) -> str:
        return self.achievement.code

    @property
    def name(self) -> str:
        return self.achievement.name

    @property
    def description(self) -> str:
        return self.achievement.description

    @property
    def icon(self) -> str:
        return self.achievement.icon

    @property
    def points(self) -> int:
        return self.level.points


# A standing that moved: achievement id, progress, levels reached, when the first was reached.
MovedStanding = tuple[int, int, int, datetime | None]


@dataclass
class Evaluation:
    unlocked: list[Unlock] = field(default_factory=list)
    points: int = 0
    # The standings that moved, still to write.
    standings: list[MovedStanding] = field(default_factory=list)


def _evaluation_plan(
    *,
    held: "Sequence[tuple[Achievement, selectors.AchievementStanding]]",
    metrics: Iterable[str],
    values: dict[str, int],
    now: datetime,
    tiers: dict[int, list[Level]] | None = None,
) -> Evaluation:
    """Progress and unlocks of the `held` achievements of `metrics` given a user's metric
    `values`, written nowhere yet; the points achievements among them are checked again when
    unlocks paid points.

    Every level reached and not held yet is paid once, in order; progress is counted towards
    the next level. `held` are the active achievements with a level still to reach, in order,
    each with the user's standing, and `tiers` their levels if known; the caller holds the
    user's row lock (`_user_lock`).
    """
    tiers = tiers if tiers is not None else {a.pk: a.tiers for a, _ in held}
    result = Evaluation()
    standing = {achievement.pk: was for achievement, was in held}
    achievements = [achievement for achievement, _ in held]
    moved: dict[int, MovedStanding] = {}
    metrics = set(metrics)
    pending = [a for a in achievements if a.metric in metrics]
    while pending:
        unlocked_points = 0
        for achievement in pending:
            levels = tiers[achievement.pk]
            value = values[achievement.metric]
            was = standing[achievement.pk]
            had = was.level
            level = max(had, sum(1 for tier in levels if value >= tier.threshold))
            progress = min(value, levels[min(level, len(levels) - 1)].threshold)
            if level == had and was.progress == progress:
                continue
            unlocked_at = now if had == 0 and level else was.unlocked_at
            standing[achievement.pk] = selectors.AchievementStanding(
                level=level, progress=progress, unlocked_at=unlocked_at
            )
            moved[achievement.pk] = (achievement.pk, progress, level, unlocked_at)
            for tier in levels[had:level]:
                result.unlocked.append(Unlock(achievement=achievement, level=tier))
                unlocked_points += tier.points
        result.points += unlocked_points
        # The unlocks' own points may reach a points achievement.
        pending = [
            a
            for a in achievements
            if unlocked_points
            and a.metric == Metric.POINTS
            and standing[a.pk].level < len(tiers[a.pk])
        ]
        if pending:
            values = {**values, Metric.POINTS: values[Metric.POINTS] + unlocked_points}
    result.standings = list(moved.values())
    return result


STANDING_FIELDS = ("user_id", "achievement_id", "progress", "level", "unlocked_at", "updated_at")
LEDGER_FIELDS = (
    "user_id",
    "kind",
    "points",
    "local_date",
    "data",
    "actor_id",
    "reason",
    "created_at",
)


def _standings_write(rows: list[tuple[Any, ...]]) -> None:
    """Only levels not reached yet were evaluated, under the users' locks: each is written once.
    Rows are in STANDING_FIELDS order."""
    rows_insert(
        model=UserAchievement,
        fields=STANDING_FIELDS,
        rows=rows,
        unique_fields=["user", "achievement"],
        update_fields=["progress", "level", "unlocked_at", "updated_at"],
    )


def _unlock_ledger_rows(
    *, user_id: int, unlocked: list[Unlock], local_date: date, now: datetime
) -> list[tuple[Any, ...]]:
    """The ledger entries of the levels that pay points, in LEDGER_FIELDS order."""
    return [
        (
            user_id,
            ActivityKind.ACHIEVEMENT_UNLOCKED,
            unlock.points,
            local_date,
            {"achievement": unlock.code, "level": unlock.level.number},
            None,
            "",
            now,
        )
        for unlock in unlocked
        if unlock.points
    ]


def _unlocks_notify(*, user: User, unlocked: list[Unlock]) -> None:
    for unlock in unlocked:
        event_send(
            group=user_group(user.pk),
            event_type="achievement.unlocked",
            data=achievement_event_data(unlock=unlock),
        )


def _evaluate(
    *,
    user: User,
    achievements: "list[selectors.AchievementWithProgress]",
    metrics: Iterable[str],
    values: dict[str, int],
    now: datetime,
    notify: bool,
) -> Evaluation:
    """Evaluate and write (`_evaluation_plan`) the `achievements` of one user, announcing each
    level reached when `notify`. `achievements` come from `selectors.achievements_to_unlock`;
    the caller holds the user's row lock (`_user_lock`)."""
    held = [
        (
            achievement,
            selectors.AchievementStanding(
                level=achievement.held_level,
                progress=achievement.progress,
                unlocked_at=achievement.held_unlocked_at,
            ),
        )
        for achievement in achievements
    ]
    result = _evaluation_plan(held=held, metrics=metrics, values=values, now=now)
    if notify:
        _unlocks_notify(user=user, unlocked=result.unlocked)
    _standings_write([(user.pk, *moved, now) for moved in result.standings])
    if any(unlock.points for unlock in result.unlocked):
        rows = _unlock_ledger_rows(
            user_id=user.pk,
            unlocked=result.unlocked,
            local_date=local_date_for(user=user, now=now),
            now=now,
        )
        _ledger_append(
            user=user,
            entries=[ActivityLog(**dict(zip(LEDGER_FIELDS, row, strict=True))) for row in rows],
        )
    return result


def _user_lock(*, user: User) -> None:
    """Serialize every change of one user's points, streak and achievements, and read the
    user's points under the lock: while it is held, `user.points` is the stored total."""
    user.points = User.objects.select_for_update().values_list("points", flat=True).get(pk=user.pk)


def achievements_evaluate(
    *,
    user: User,
    metrics: Iterable[str],
    now: datetime | None = None,
    notify: bool = True,
) -> list[Unlock]:
    """Update progress on the achievements of `metrics`, unlocking (and paying) the ones reached.

    Each level is reached once: the user's row lock serializes evaluations and a level
    reached is never taken back. Returns the levels reached now.
    """
    with transaction.atomic():
        _user_lock(user=user)
        metrics = set(metrics)
        achievements = selectors.achievements_to_unlock(
            user=user, metrics={*metrics, Metric.POINTS}
        )
        if not achievements:
            return []
        result = _evaluate(
            user=user,
            achievements=achievements,
            metrics=metrics,
            values=_metric_values(user=user, metrics={a.metric for a in achievements}),
            now=now or timezone.now(),
            notify=notify,
        )
        if notify and result.points:
            points_changed_notify(user=user)
    return result.unlocked


def achievements_reevaluate(
    *, notify: bool = False, on_progress: Progress | None = None
) -> dict[str, int]:
    """Award what every user's history has earned and was never awarded. Safe to run twice.

    Employees run it after adding or changing achievements; by default nobody is notified.
    A batch of users at a time, in a fixed number of statements whatever the batch's size
    (`_achievements_reevaluate_batch`); progress is reported after every batch.
    """
    users = User.objects.filter(is_active=True)
    total = users.count()
    checked = unlocked = 0
    for batch in _user_id_batches(users):
        unlocked += _achievements_reevaluate_batch(user_ids=batch, notify=notify)
        checked += len(batch)
        if on_progress is not None:
            on_progress(checked, total)
    return {"users_checked": checked, "achievements_unlocked": unlocked}


# Levels reached by a batch's users, in the order `_evaluation_plan` reaches them for each user.
BatchUnlocks = dict[int, list[Unlock]]


def _achievements_reevaluate_batch(*, user_ids: list[int], notify: bool) -> int:
    """Evaluate every achievement for a batch of users as `achievements_evaluate` would for
    each, under the batch's row locks: one grouped read per metric, the levels decided and the
    standings and ledger entries written (`_batch_decide_sql` on PostgreSQL, in one statement;
    `_batch_decide_python` elsewhere), then totals and period totals in one statement each, as
    `_ledger_append` moves them for one user. Returns how many levels were reached."""
    now = timezone.now()
    with transaction.atomic():
        users = list(
            User.objects.select_for_update().filter(pk__in=user_ids, is_active=True).order_by("pk")
        )
        achievements = selectors.achievement_definitions()
        if not users or not achievements:
            return 0
        days = {user.pk: user_day(user=user, now=now) for user in users}
        values = selectors.achievement_metric_values(
            users=users,
            metrics={a.metric for a in achievements},
            rules={pk: day.rule for pk, day in days.items()},
        )
        decide = _batch_decide_sql if connection.vendor == "postgresql" else _batch_decide_python
        unlocked = decide(
            users=users,
            achievements=achievements,
            values=values,
            local_dates={pk: day.date for pk, day in days.items()},
            now=now,
        )
        _batch_points_move(users=users, unlocked=unlocked, now=now, notify=notify)
    return sum(len(unlocks) for unlocks in unlocked.values())


def _batch_points_move(
    *, users: list[User], unlocked: BatchUnlocks, now: datetime, notify: bool
) -> None:
    """Move the totals, period totals and boards of a batch by what its unlocks paid, as
    `_ledger_append` moves one user's; announce the unlocks when `notify`."""
    gains: dict[int, int] = {}
    totals: dict[int, int] = {}
    reached_at: dict[int, datetime] = {}
    increments: list[boards.Increment] = []
    # Whole seconds, as _ledger_append keeps them.
    reached = now.replace(microsecond=0)
    periods = [boards.period_of(window=w, at=now) for w in selectors.leaderboard_windows()]
    for user in users:
        unlocks = unlocked.get(user.pk, [])
        won = sum(unlock.points for unlock in unlocks)
        if won:
            user.points += won
            user.points_reached_at = reached
            gains[user.pk], totals[user.pk], reached_at[user.pk] = won, user.points, reached
            if selectors.user_is_ranked(user=user):
                # As _leaderboard_moves moves one user: on every kept board, once.
                increments += [
                    boards.Increment(period=p, user_id=user.pk, points=won, reached_at=now)
                    for p in periods
                ]
        if notify:
            _unlocks_notify(user=user, unlocked=unlocks)
            if won:
                points_changed_notify(user=user)
    _points_store(totals=totals, reached_at=reached_at)
    _period_points_add_many(gains=[(pk, won, now) for pk, won in gains.items()])
    if increments:
        transaction.on_commit(lambda: boards.board_increment(increments=increments))


_NO_STANDING = selectors.AchievementStanding(level=0, progress=None, unlocked_at=None)


def _batch_decide_python(
    *,
    users: list[User],
    achievements: list[Achievement],
    values: dict[str, dict[int, int]],
    local_dates: dict[int, date],
    now: datetime,
) -> BatchUnlocks:
    """The generic path of `_achievements_reevaluate_batch`: each user's levels decided by
    `_evaluation_plan` in memory, then the standings and ledger entries written in one
    statement each."""
    user_ids = [user.pk for user in users]
    standings = selectors.achievement_standings(user_ids=user_ids, achievements=achievements)
    tiers = {achievement.pk: achievement.tiers for achievement in achievements}
    standing_rows: list[tuple[Any, ...]] = []
    ledger_rows: list[tuple[Any, ...]] = []
    unlocked: BatchUnlocks = {}
    for user in users:
        held = [
            (achievement, standing)
            for achievement in achievements
            if (standing := standings.get((user.pk, achievement.pk), _NO_STANDING)).level
            < len(tiers[achievement.pk])
        ]
        if not held:
            continue
        result = _evaluation_plan(
            held=held,
            metrics=Metric.values,
            values={metric: by_user.get(user.pk, 0) for metric, by_user in values.items()},
            now=now,
            tiers=tiers,
        )
        standing_rows += [(user.pk, *moved, now) for moved in result.standings]
        ledger_rows += _unlock_ledger_rows(
            user_id=user.pk, unlocked=result.unlocked, local_date=local_dates[user.pk], now=now
        )
        if result.unlocked:
            unlocked[user.pk] = result.unlocked
    _standings_write(standing_rows)
    rows_insert(model=ActivityLog, fields=LEDGER_FIELDS, rows=ledger_rows)
    return unlocked


# The levels of a batch decided by the rules of `_evaluation_plan`, and written, in one
# statement. Per (user, active achievement): `had` levels held, and the `open` levels above
# them; an open level of another metric is reached when the user's value reaches its
# threshold. A points achievement's is reached when its threshold is within the user's points
# plus what the other metrics' levels pay plus what the open points levels below it pay, each
# of them reached: the fixed point that `_evaluation_plan` reaches round by round.
_BATCH_DECIDE = """
WITH batch AS (
    SELECT * FROM unnest(%(users)s::bigint[], %(points)s::bigint[], %(days)s::date[])
        AS b(user_id, points, local_date)
),
metric_values AS (
    SELECT * FROM unnest(%(value_users)s::bigint[], %(value_metrics)s::text[],
        %(values)s::bigint[]) AS v(user_id, metric, value)
),
achievements AS (
    SELECT * FROM unnest(%(achievements)s::bigint[], %(ranks)s::integer[], %(metrics)s::text[],
        %(codes)s::text[]) AS a(achievement_id, rank, metric, code)
),
tiers AS (
    SELECT * FROM unnest(%(tier_achievements)s::bigint[], %(tier_numbers)s::integer[],
        %(tier_thresholds)s::bigint[], %(tier_points)s::bigint[])
        AS t(achievement_id, number, threshold, points)
),
held AS (
    SELECT b.user_id, b.points AS user_points, a.achievement_id, a.rank, a.metric, a.code,
        GREATEST(COALESCE(s.level, 0), CASE WHEN s.unlocked_at IS NULL THEN 0 ELSE 1 END) AS had,
        s.id AS standing_id, s.progress AS had_progress, s.unlocked_at AS had_unlocked_at,
        CASE WHEN a.metric = %(points_metric)s THEN b.points ELSE COALESCE(v.value, 0) END
            AS value
    FROM batch AS b
    CROSS JOIN achievements AS a
    LEFT JOIN {standings} AS s
        ON s.user_id = b.user_id AND s.achievement_id = a.achievement_id
        AND s.user_id = ANY(%(users)s::bigint[])
    LEFT JOIN metric_values AS v ON v.user_id = b.user_id AND v.metric = a.metric
),
open AS (
    SELECT h.*, t.number, t.threshold, t.points
    FROM held AS h JOIN tiers AS t ON t.achievement_id = h.achievement_id AND t.number > h.had
),
points_base AS (
    SELECT b.user_id, b.points + COALESCE(SUM(o.points) FILTER (
        WHERE o.metric <> %(points_metric)s AND o.threshold <= o.value), 0) AS base
    FROM batch AS b LEFT JOIN open AS o ON o.user_id = b.user_id
    GROUP BY b.user_id, b.points
),
points_within AS (
    SELECT o.user_id, o.achievement_id, o.number, o.threshold, o.points,
        o.threshold <= p.base + SUM(o.points) OVER chain - o.points AS within
    FROM open AS o JOIN points_base AS p ON p.user_id = o.user_id
    WHERE o.metric = %(points_metric)s
    WINDOW chain AS (PARTITION BY o.user_id ORDER BY o.threshold, o.achievement_id, o.number
        ROWS UNBOUNDED PRECEDING)
),
points_chained AS (
    SELECT user_id, points, bool_and(within) OVER chain AS reached
    FROM points_within
    WINDOW chain AS (PARTITION BY user_id ORDER BY threshold, achievement_id, number
        ROWS UNBOUNDED PRECEDING)
),
points_reach AS (
    SELECT p.user_id, p.base + COALESCE(SUM(c.points) FILTER (WHERE c.reached), 0) AS value
    FROM points_base AS p LEFT JOIN points_chained AS c ON c.user_id = p.user_id
    GROUP BY p.user_id, p.base
),
reached AS (
    SELECT o.*, COALESCE(p.value, o.value) AS reach,
        o.threshold <= COALESCE(p.value, o.value) AS reached,
        -- Points levels beyond the user's own points are reached after every other level.
        o.metric = %(points_metric)s AND o.threshold > o.user_points AS later
    FROM open AS o
    LEFT JOIN points_reach AS p ON p.user_id = o.user_id AND o.metric = %(points_metric)s
),
moved AS (
    SELECT * FROM (
        SELECT user_id, achievement_id, standing_id, had, had_progress,
            had + COUNT(*) FILTER (WHERE reached) AS level,
            LEAST(reach, COALESCE(MIN(threshold) FILTER (WHERE NOT reached), MAX(threshold)))
                AS progress,
            CASE WHEN had = 0 AND bool_or(reached) THEN %(now)s ELSE had_unlocked_at END
                AS unlocked_at
        FROM reached
        GROUP BY user_id, achievement_id, standing_id, had, had_progress, had_unlocked_at, reach
    ) AS decided
    WHERE level > had OR progress IS DISTINCT FROM had_progress
),
-- The batch's users are locked, and every writer of standings locks the user first: a
-- standing missing when the batch was read is still missing.
standings_added AS (
    INSERT INTO {standings} (user_id, achievement_id, progress, level, unlocked_at, updated_at)
    SELECT user_id, achievement_id, progress, level, unlocked_at, %(now)s
    FROM moved WHERE standing_id IS NULL
),
standings_moved AS (
    UPDATE {standings} AS s SET progress = m.progress, level = m.level,
        unlocked_at = m.unlocked_at, updated_at = %(now)s
    FROM moved AS m WHERE s.id = m.standing_id
),
ledger_written AS (
    INSERT INTO {ledger} (user_id, kind, points, local_date, data, actor_id, reason, created_at)
    SELECT r.user_id, %(kind)s, r.points, b.local_date,
        jsonb_build_object('achievement', r.code, 'level', r.number), NULL, '', %(now)s
    FROM reached AS r JOIN batch AS b ON b.user_id = r.user_id
    WHERE r.reached AND r.points <> 0
    ORDER BY r.user_id, r.later, CASE WHEN r.later THEN r.threshold END, r.rank, r.number
)
SELECT user_id, achievement_id, number FROM reached
WHERE reached
ORDER BY user_id, later, CASE WHEN later THEN threshold END, rank, number
"""


def _batch_decide_sql(
    *,
    users: list[User],
    achievements: list[Achievement],
    values: dict[str, dict[int, int]],
    local_dates: dict[int, date],
    now: datetime,
) -> BatchUnlocks:
    """The PostgreSQL path of `_achievements_reevaluate_batch`: the batch's metric values and
    the achievements' levels go in as arrays, and one statement (`_BATCH_DECIDE`) decides the
    levels reached, writes the standings that moved and the ledger entries, and returns the
    levels reached. Users with nothing to reach cost a join, no write."""
    user_ids = [user.pk for user in users]
    value_rows = [
        (pk, metric, value)
        for metric, by_user in values.items()
        if metric != Metric.POINTS
        for pk, value in by_user.items()
    ]
    levels = [(a, level) for a in achievements for level in a.tiers]
    unlock_of = {(a.pk, level.number): Unlock(achievement=a, level=level) for a, level in levels}
    quote = connection.ops.quote_name
    sql = _BATCH_DECIDE.format(
        standings=quote(UserAchievement._meta.db_table), ledger=quote(ActivityLog._meta.db_table)
    )
    params: dict[str, Any] = {
        "users": user_ids,
        "points": [user.points for user in users],
        "days": [local_dates[pk] for pk in user_ids],
        "value_users": [pk for pk, _, _ in value_rows],
        "value_metrics": [metric for _, metric, _ in value_rows],
        "values": [value for _, _, value in value_rows],
        "achievements": [a.pk for a in achievements],
        "ranks": list(range(len(achievements))),
        "metrics": [a.metric for a in achievements],
        "codes": [a.code for a in achievements],
        "tier_achievements": [a.pk for a, _ in levels],
        "tier_numbers": [level.number for _, level in levels],
        "tier_thresholds": [level.threshold for _, level in levels],
        "tier_points": [level.points for _, level in levels],
        "points_metric": Metric.POINTS.value,
        "kind": ActivityKind.ACHIEVEMENT_UNLOCKED.value,
        "now": now,
    }
    unlocked: BatchUnlocks = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for user_id, achievement_id, number in cursor.fetchall():
            unlocked.setdefault(user_id, []).append(unlock_of[achievement_id, number])
    return unlocked


@dataclass
class SubmissionReward:
    points_awarded: int
    streak: Streak
    new_achievements: list[Unlock]


def submission_reward(
    *,
    user: User,
    category: str,
    product_ids: list[int],
    categories_ranked: int,
    now: datetime,
) -> SubmissionReward:
    """Ledger, points, streak and achievements of one ranking submission.

    Runs inside the submission's transaction with the user's row already locked, so that
    concurrent submissions of one user count the daily cap one after the other; the caller
    has just replaced the user's rankings and knows how many categories they now cover.
    """
    user_day_settle(user=user, now=now)
    local_date = local_date_for(user=user, now=now)
    achievements = selectors.achievements_to_unlock(user=user, metrics=SUBMISSION_METRICS)
    metrics = {a.metric for a in achievements}
    known: dict[str, int] = {Metric.CATEGORIES_RANKED: categories_ranked}
    if Metric.RANKINGS_SUBMITTED in metrics:
        # The daily cap and the metric in one query, before this submission's entry is written.
        counts = selectors.submission_counts(user=user, local_date=local_date, category=category)
        paid = counts.paid_today
        known[Metric.RANKINGS_SUBMITTED] = counts.submitted + (counts.category_today == 0)
    else:
        paid = selectors.paid_submissions_on(user=user, local_date=local_date)
    entries = [
        ActivityLog(
            user=user,
            kind=ActivityKind.RANKING_SUBMITTED,
            points=SUBMISSION_POINTS if paid < PAID_SUBMISSIONS_PER_DAY else 0,
            local_date=local_date,
            data={"category": category, "product_ids": product_ids},
            created_at=now,
        )
    ]
    change = streak_advance(user=user, local_date=local_date)
    known[Metric.STREAK_DAYS] = change.streak.longest_length
    if change.first_today and change.bonus:
        entries.append(
            ActivityLog(
                user=user,
                kind=ActivityKind.STREAK_BONUS,
                points=change.bonus,
                local_date=local_date,
                data={"streak_days": change.streak.current_length},
                created_at=now,
            )
        )
    _ledger_append(user=user, entries=entries)
    awarded = sum(entry.points for entry in entries)
    evaluation = _evaluate(
        user=user,
        achievements=achievements,
        metrics=SUBMISSION_METRICS,
        values=_metric_values(user=user, metrics=metrics, known=known),
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


def achievement_event_data(*, unlock: Unlock) -> dict[str, Any]:
    return {
        "code": unlock.code,
        "name": unlock.name,
        "description": unlock.description,
        "icon": unlock.icon,
        "points": unlock.points,
        "level": unlock.level.number,
        "level_name": unlock.level.name,
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
    """Count one page view; a product id must name an active product.

    The product's view count moves through a buffer (`page_views_flush`), so that a popular
    product does not turn each view into a lock on its row.
    """
    if product_id is not None and product_get(product_id=product_id) is None:
        raise InvalidPageView("No active product has this id.")
    view = PageView.objects.create(
        path=path,
        product_id=product_id,
        user=user if user is not None and user.is_authenticated else None,
        session_key=(session_key or "")[:40],
        referrer=referrer[:500],
    )
    if product_id is not None:
        if not PRODUCT_VIEWS.add(product_id):
            product_view_counts_add(counts={product_id: 1})
        if tasks_run_in_process():
            # No worker and no beat: this process flushes its own buffer when a flush is due.
            _page_views_flush_if_due()
    return view


PRODUCT_VIEWS = BufferedCounter("product-views")
_last_flush = 0.0


def page_views_flush() -> int:
    """Move the buffered page views into the products' view counts; returns products moved."""
    global _last_flush
    _last_flush = time.monotonic()
    counts = PRODUCT_VIEWS.drain()
    if not counts:
        return 0
    with transaction.atomic():
        moved = product_view_counts_add(counts=counts)
    PRODUCT_VIEWS.ack()
    return moved


def _page_views_flush_if_due() -> None:
    if time.monotonic() - _last_flush >= settings.PAGE_VIEW_FLUSH_SECONDS:
        page_views_flush()


def page_views_prune(*, older_than: timedelta) -> int:
    """Delete page views older than the retention period, a batch at a time; returns how many."""
    return rows_delete_in_batches(
        PageView.objects.filter(created_at__lt=timezone.now() - older_than)
    )


def page_views_rollup_day(*, day: date) -> int:
    """Recompute a closed UTC day's roll-ups (PageViewDay, ProductViewDay, PathViewDay) from its
    raw page views, replacing what was there (a rerun or late rows are safe), and its week's
    ActiveUsersWeek once the week is over; returns the day's views. Refuses an open day and a
    day older than the retention period (its raw rows may be gone)."""
    rollup_day_check(day)
    with transaction.atomic():
        # The day's PageViewDay row, locked first, keeps two runs of one day from interleaving.
        marker, _ = PageViewDay.objects.select_for_update().get_or_create(
            day=day, defaults={"views": 0, "users": 0, "rolled_at": timezone.now()}
        )
        ProductViewDay.objects.filter(day=day).delete()
        ProductViewDay.objects.bulk_create(
            [
                ProductViewDay(day=day, product_id=product_id, views=views)
                for product_id, views in selectors.product_views_of_day(day=day)
            ],
            batch_size=2000,
        )
        PathViewDay.objects.filter(day=day).delete()
        PathViewDay.objects.bulk_create(
            [
                PathViewDay(day=day, path=path, views=views)
                for path, views in selectors.path_views_of_day(day=day)
            ],
            batch_size=2000,
        )
        totals = selectors.page_view_totals_of_day(day=day)
        marker.views, marker.users = totals["views"], totals["users"]
        marker.rolled_at = timezone.now()
        marker.save()
        week = week_of(day)
        if week + WEEK <= today_utc() and week >= rollup_earliest_day():
            ActiveUsersWeek.objects.update_or_create(
                week=week,
                defaults={
                    "users": selectors.active_users_of_week(week=week),
                    "rolled_at": timezone.now(),
                },
            )
        _page_views_rollup_month(month_of(day))
    return totals["views"]


def _page_views_rollup_month(month: date) -> None:
    """Sum a closed month's day roll-ups into its month roll-ups, once all its days are in."""
    end = month_next(month)
    if (
        end > today_utc()
        or selectors.page_views_rolled_days_in(first=month, last=end - timedelta(days=1))
        < (end - month).days
    ):
        return
    PageViewMonth.objects.update_or_create(month=month, defaults={"rolled_at": timezone.now()})
    ProductViewMonth.objects.filter(month=month).delete()
    ProductViewMonth.objects.bulk_create(
        [
            ProductViewMonth(month=month, product_id=product_id, views=views)
            for product_id, views in selectors.product_views_of_days(first=month, before=end)
        ],
        batch_size=2000,
    )
    PathViewMonth.objects.filter(month=month).delete()
    PathViewMonth.objects.bulk_create(
        [
            PathViewMonth(month=month, path=path, views=views)
            for path, views in selectors.path_views_of_days(first=month, before=end)
        ],
        batch_size=2000,
    )


def page_views_rollup() -> int:
    """Roll up the closed days due (yesterday again, and any day missed); returns days rolled."""
    days = rollup_days_due(last_rolled=selectors.page_views_rolled_last())
    for day in days:
        page_views_rollup_day(day=day)
    return len(days)


# --- Edits made by employees ----------------------------------------------------------------

ACHIEVEMENT_CACHE_TYPES = (CacheType.ACHIEVEMENT_DEFINITIONS,)
LEADERBOARD_CACHE_TYPES = (CacheType.LEADERBOARD, CacheType.LEADERBOARD_POSITION)


def achievement_create(*, actor: User | None, fields: dict[str, Any]) -> Achievement:
    with transaction.atomic():
        achievement = Achievement.objects.create(**fields)
        audit_record(
            actor=actor,
            action=AuditAction.ACHIEVEMENT_CREATE,
            target_type="achievement",
            target_id=achievement.pk,
            data={"fields": fields},
        )
        cache_types_invalidate_on_commit(cache_types=ACHIEVEMENT_CACHE_TYPES)
    return achievement


def achievement_update(
    *, actor: User | None, achievement: Achievement, fields: dict[str, Any]
) -> Achievement:
    with transaction.atomic():
        changes = fields_apply(achievement, fields)
        achievement.save()
        audit_record(
            actor=actor,
            action=AuditAction.ACHIEVEMENT_UPDATE,
            target_type="achievement",
            target_id=achievement.pk,
            data={"changes": changes},
        )
        cache_types_invalidate_on_commit(cache_types=ACHIEVEMENT_CACHE_TYPES)
    return achievement


def achievement_delete(*, actor: User | None, achievement: Achievement) -> None:
    """Delete an achievement nobody unlocked; an unlocked one is deactivated instead."""
    audited_delete(
        actor=actor,
        instance=achievement,
        blocker=selectors.achievement_delete_blocker(achievement=achievement),
        action=AuditAction.ACHIEVEMENT_DELETE,
        data={"code": achievement.code, "name": achievement.name},
        cache_types=ACHIEVEMENT_CACHE_TYPES,
    )


def achievement_admin_edit_record(
    *, actor: User, achievement: Achievement, created: bool, changed: list[str]
) -> None:
    """Audit an achievement the Django admin just saved, and invalidate the definitions."""
    cache_types_invalidate_on_commit(cache_types=ACHIEVEMENT_CACHE_TYPES)
    audit_record(
        actor=actor,
        action=AuditAction.ACHIEVEMENT_CREATE if created else AuditAction.ACHIEVEMENT_UPDATE,
        target_type="achievement",
        target_id=achievement.pk,
        data={"changed": changed, "via": "django-admin"},
    )


def user_points_adjust(*, actor: User, user: User, points: int, reason: str) -> User:
    """Add (or take away) points through the ledger, naming the employee and the reason."""

    with transaction.atomic():
        points_award(
            user=user,
            kind=ActivityKind.ADJUSTMENT,
            points=points,
            local_date=local_date_for(user=user),
            data={"employee_id": actor.pk},
            actor=actor,
            reason=reason,
        )
        user.refresh_from_db(fields=["points"])
        audit_record(
            actor=actor,
            action=AuditAction.POINTS_ADJUST,
            target_type="user",
            target_id=user.pk,
            reason=reason,
            data={"points": points, "total": user.points},
        )
        cache_types_invalidate_on_commit(cache_types=LEADERBOARD_CACHE_TYPES)
    return user


def streak_lengths_refusal(*, current_length: int, longest_length: int) -> str | None:
    """Why a streak cannot have these lengths, or None."""
    if longest_length < current_length:
        return "longest_length cannot be shorter than current_length."
    return None


def _streak_state(streak: Streak) -> dict[str, Any]:
    return {
        "current_length": streak.current_length,
        "longest_length": streak.longest_length,
        "last_active_date": streak.last_active_date,
    }


def _streak_repaired(
    *, actor: User, streak: Streak, before: dict[str, Any], reason: str, data: dict[str, Any]
) -> None:
    """Audit a streak set by hand and tell the user's sockets, in the caller's transaction."""
    audit_record(
        actor=actor,
        action=AuditAction.STREAK_REPAIR,
        target_type="user",
        target_id=streak.user_id,
        reason=reason,
        data={"before": before, "after": _streak_state(streak), **data},
    )
    event_send(
        group=user_group(streak.user_id),
        event_type="streak.updated",
        data=streak_event_data(streak=streak),
    )


def streak_repair(
    *, actor: User, user: User, current_length: int, longest_length: int, reason: str
) -> Streak:
    """Set a user's streak by hand; a live repaired streak counts yesterday as active."""
    refusal = streak_lengths_refusal(current_length=current_length, longest_length=longest_length)
    if refusal:
        raise ActionRefused(refusal)
    today = local_date_for(user=user)
    with transaction.atomic():
        streak, _ = Streak.objects.select_for_update().get_or_create(user=user)
        before = _streak_state(streak)
        streak.current_length = current_length
        streak.longest_length = longest_length
        # Without this the next submission would restart the repaired streak at 1.
        yesterday = today - timedelta(days=1)
        if current_length and (
            streak.last_active_date is None or streak.last_active_date < yesterday
        ):
            streak.last_active_date = yesterday
        streak.updated_at = timezone.now()
        streak.save()
        _streak_repaired(actor=actor, streak=streak, before=before, reason=reason, data={})
    return streak


def streak_admin_edit(*, actor: User, streak: Streak, fields: dict[str, Any]) -> Streak:
    """Save the fields of a streak edited in the Django admin, audited as a repair."""
    with transaction.atomic():
        locked = Streak.objects.select_for_update().get(pk=streak.pk)
        before = _streak_state(locked)
        changes = fields_apply(locked, fields)
        refusal = streak_lengths_refusal(
            current_length=locked.current_length, longest_length=locked.longest_length
        )
        if refusal:
            raise ActionRefused(refusal)
        locked.updated_at = timezone.now()
        locked.save()
        _streak_repaired(
            actor=actor,
            streak=locked,
            before=before,
            reason="",
            data={"changed": sorted(changes), "via": "django-admin"},
        )
    return locked


# --- Leaderboards (gamification.boards): Redis mirrors of the ledger ---------------------------

# Players read from the database and written to Redis per round trip of a rebuild.
REBUILD_BATCH = 10_000
# A rebuild that dies leaves its lock this long; then the next read tries again.
REBUILD_LOCK_SECONDS = 300


def leaderboard_record(*, user: User, entries: list[ActivityLog]) -> None:
    """After commit, move the user on every kept board by the entries' points, pipelined."""
    moves = _leaderboard_moves(user=user, points_at=[(e.points, e.created_at) for e in entries])
    if moves:
        transaction.on_commit(lambda: boards.board_increment(increments=moves))


def _leaderboard_moves(
    *, user: User, points_at: list[tuple[int, datetime]]
) -> list[boards.Increment]:
    """The user's move on every kept board by points won at times, one move per board."""
    if not selectors.user_is_ranked(user=user):
        return []
    moves: dict[str, boards.Increment] = {}
    for window in selectors.leaderboard_windows():
        for points, at in points_at:
            if not points:
                continue
            period = boards.period_of(window=window, at=at)
            held = moves.get(period.label)
            moves[period.label] = boards.Increment(
                period=period,
                user_id=user.pk,
                points=points + (held.points if held else 0),
                reached_at=max(at, held.reached_at) if held else at,
            )
    return list(moves.values())


# Rounds of reading again the players written during a rebuild before its board is swapped in
# all the same (each round reads those written since the last; a quiet moment ends them).
REBUILD_CATCH_UP_ROUNDS = 20


def leaderboard_rebuild(*, window: boards.Window, now: datetime | None = None) -> int | None:
    """Rebuild the current board of a window from the ledger, in batches, and swap it in.

    A write that commits meanwhile may have been read by a batch or not: every player written
    since the rebuild began is read again before the swap, until a swap finds none written
    since the last read (or, after REBUILD_CATCH_UP_ROUNDS, the swapped board takes the last
    ones). Returns how many players the board holds; None when Redis is away or another
    process is rebuilding it.
    """
    period = boards.period_of(window=window, at=now or timezone.now())
    if not boards.board_lock(period=period, seconds=REBUILD_LOCK_SECONDS):
        return None
    try:
        boards.board_build_start(period=period)
        for batch in selectors.leaderboard_scores(period=period, batch=REBUILD_BATCH):
            boards.board_build_add(period=period, scores=batch.scores)
            boards.board_names_set(names=dict(batch.names))
        for _ in range(REBUILD_CATCH_UP_ROUNDS):
            finish = boards.board_build_finish(period=period)
            if finish is None:
                return None
            if finish.swapped:
                break
            boards.board_build_add(period=period, scores=_leaderboard_reread(period, finish))
        else:
            finish = boards.board_build_finish(period=period, force=True)
            if finish is None:
                return None
            boards.board_put(period=period, scores=_leaderboard_reread(period, finish))
    finally:
        boards.board_unlock(period=period)
    return boards.board_size(period=period)


def _leaderboard_reread(
    period: boards.Period, finish: boards.BuildFinish
) -> dict[int, float | None]:
    """The board scores of the players written during a rebuild, read afresh (None: off it)."""
    scores = selectors.leaderboard_scores_of(period=period, user_ids=finish.written)
    boards.board_names_set(names=dict(selectors.public_names(scores)))
    return {pk: scores.get(pk) for pk in finish.written}


def leaderboard_rebuild_request(*, window: boards.Window, now: datetime | None = None) -> bool:
    """Queue the rebuild of a board Redis lost (flush, failover, a new period), once: the
    first reader to find it missing sends the task, every other reader meanwhile reads SQL.
    True when this call sent it."""
    period = boards.period_of(window=window, at=now or timezone.now())
    if not boards.board_rebuild_claim(period=period, seconds=REBUILD_LOCK_SECONDS):
        return False
    task_send("gamification.tasks.leaderboard_rebuild", kwargs={"window": window})
    return True


def leaderboard_rebuild_requested(*, window: boards.Window) -> int | None:
    """The queued rebuild of a board: rebuild it, then let the next loss queue another."""
    period = boards.period_of(window=window, at=timezone.now())
    try:
        return leaderboard_rebuild(window=window)
    finally:
        boards.board_rebuild_release(period=period)


def leaderboard_ladders_store(*, now: datetime | None = None) -> int:
    """Count and store the ladder of each kept window's current board (the SQL fallback's
    ranks start from it), and delete the others'; returns how many were stored."""
    at = now or timezone.now()
    periods = [boards.period_of(window=window, at=at) for window in selectors.leaderboard_windows()]
    for period in periods:
        selectors.ladder_store(period)
    BoardLadder.objects.exclude(label__in=[period.label for period in periods]).delete()
    return len(periods)


def period_points_rebuild(
    *, window: boards.Window, user: User | None = None, now: datetime | None = None
) -> int:
    """Set the users' totals of the current period of a window back to the ledger's sums, a
    batch of users at a time under their row locks (which every ledger write takes first, so
    none is lost in between); returns how many totals were wrong."""
    period = boards.period_of(window=window, at=now or timezone.now())
    users = User.objects.all() if user is None else User.objects.filter(pk=user.pk)
    in_period = {"period": window, "start": period.start}

    def held(user_ids: Iterable[int]) -> dict[int, tuple[int, Any]]:
        rows = PeriodPoints.objects.filter(user_id__in=list(user_ids), **in_period)
        return {pk: (p, at) for pk, p, at in rows.values_list("user_id", "points", "reached_at")}

    fixed = 0
    for batch in _user_id_batches(users):
        # A ledger write changes a user's sum and total in one transaction, so a user whose two
        # agree here, read without locks, is right; those who differ are read again under lock.
        found, have = selectors.ledger_period_totals(period=period, user_ids=batch), held(batch)
        candidates = sorted(
            pk for pk in found.keys() | have.keys() if found.get(pk) != have.get(pk)
        )
        if not candidates:
            continue
        with transaction.atomic():
            list(User.objects.select_for_update().filter(pk__in=candidates).values_list("pk"))
            sums = selectors.ledger_period_totals(period=period, user_ids=candidates)
            have = held(candidates)
            wrong = [pk for pk in candidates if sums.get(pk) != have.get(pk)]
            PeriodPoints.objects.filter(user_id__in=wrong, **in_period).delete()
            PeriodPoints.objects.bulk_create(
                PeriodPoints(user_id=pk, points=sums[pk][0], reached_at=sums[pk][1], **in_period)
                for pk in wrong
                if pk in sums
            )
        fixed += len(wrong)
    return fixed


# Users whose past period totals one statement of the pruning deletes (a range of the index
# periodpoints_user, so each statement walks those users' rows only).
PRUNE_USERS = 10_000


def period_points_prune(*, keep: int, now: datetime | None = None) -> int:
    """Delete the period totals of every day, week and month older than the current one and
    the `keep` closed ones before it (never fewer than one), a range of users per statement;
    returns how many rows went.

    The boards (Redis and SQL) read only the current periods' totals; the closed periods kept
    serve reads and rebuilds that began before a period turned.
    """
    at = now or timezone.now()
    older = Q()
    for window in PERIOD_WINDOWS:
        start = boards.period_of(window=window, at=at).start
        for _ in range(max(keep, 1)):
            assert start is not None
            start = boards.period_of(window=window, at=start - timedelta(microseconds=1)).start
        older |= Q(period=window, start__lt=start)
    bounds = PeriodPoints.objects.aggregate(low=Min("user_id"), high=Max("user_id"))
    if bounds["low"] is None:
        return 0
    deleted = 0
    for low in range(bounds["low"], bounds["high"] + 1, PRUNE_USERS):
        in_range = PeriodPoints.objects.filter(user_id__gte=low, user_id__lt=low + PRUNE_USERS)
        deleted += in_range.filter(older).delete()[0]
    return deleted


def leaderboards_refresh(*, user: User | None = None) -> dict[str, int | None]:
    """Repair the boards from the ledger after totals were repaired: the current periods'
    totals, then every kept Redis board (of one user: their place on each). Returns the
    players per rebuilt board (None: Redis away or a rebuild running)."""
    for window in PERIOD_WINDOWS:
        period_points_rebuild(window=window, user=user)
    if user is not None:
        leaderboard_membership_sync(user=user)
        return {}
    return {
        window: leaderboard_rebuild(window=window) for window in selectors.leaderboard_windows()
    }


def leaderboard_membership_sync(*, user: User) -> None:
    """After commit, put the user on every kept board or take them off, as their opt-out,
    exclusion, activity and staff flags say now, and drop the boards' cached pages."""

    # Read now: a deleted user's instance loses its pk before the transaction commits.
    user_id = user.pk

    def sync() -> None:
        fresh = User.objects.filter(pk=user_id).first()
        now = timezone.now()
        periods = [boards.period_of(window=w, at=now) for w in selectors.leaderboard_windows()]
        scores = {}
        if fresh is not None and selectors.user_is_ranked(user=fresh):
            scores = {
                period.label: selectors.leaderboard_user_score(user=fresh, period=period)
                for period in periods
            }
        boards.board_set(periods=periods, user_id=user_id, scores=scores)
        if fresh is None:
            boards.board_names_set(names={user_id: None})
        cache_invalidate(CacheType.LEADERBOARD)
        cache_invalidate(CacheType.LEADERBOARD_POSITION)

    transaction.on_commit(sync)


def leaderboard_name_sync(*, user: User) -> None:
    """After commit, show the user's new public name on the boards read from Redis."""
    user_id, name = user.pk, user.public_name
    transaction.on_commit(lambda: boards.board_names_set(names={user_id: name}))
