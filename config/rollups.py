"""Daily roll-ups of append-only tables: which closed UTC days (or weeks) a roll-up can answer,
and which stretches of a period must still be read from the raw rows.

An app's roll-up service recomputes a whole day from its raw rows, so running it twice or after
late rows is safe; its readers split a period with `period_split` and add both parts, so an
answer equals the raw query's whatever has been rolled up so far.
"""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.db.models import Q, QuerySet
from django.utils import timezone

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def week_of(day: date) -> date:
    """The Monday starting the ISO week of `day`."""
    return day - timedelta(days=day.weekday())


def today_utc(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date()


def rollup_earliest_day(now: datetime | None = None) -> date:
    """The first day whose raw rows the retention pruning has left whole: recomputing an earlier
    day would lose what its roll-up holds."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.RETENTION_DAYS)
    return today_utc(cutoff) + DAY


def rollup_days_due(*, last_rolled: date | None, now: datetime | None = None) -> list[date]:
    """The closed days a periodic run rolls up: yesterday again (rows that committed just after
    midnight) and every day since the last one rolled, within the retention period."""
    yesterday = today_utc(now) - DAY
    first = rollup_earliest_day(now)
    if last_rolled is not None:
        first = max(first, min(last_rolled + DAY, yesterday))
    return [first + DAY * n for n in range((yesterday - first).days + 1)]


def rollup_day_check(day: date, now: datetime | None = None) -> None:
    """Refuse a day that is not closed yet, or whose raw rows may already be pruned."""
    if day >= today_utc(now):
        raise ValueError(f"{day} is not a closed UTC day yet.")
    if day < rollup_earliest_day(now):
        raise ValueError(
            f"{day} is older than the {settings.RETENTION_DAYS}-day retention: its raw rows may "
            "be pruned, so its roll-up is kept as it is."
        )


@dataclass(frozen=True)
class Unit:
    """A kind of period: the start of the one holding a day, and the start of the next one."""

    first: Callable[[date], date]
    next: Callable[[date], date]


def month_of(day: date) -> date:
    return day.replace(day=1)


def month_next(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


DAYS = Unit(first=lambda day: day, next=lambda day: day + DAY)
WEEKS = Unit(first=week_of, next=lambda week: week + WEEK)
MONTHS = Unit(first=month_of, next=month_next)


@dataclass
class PeriodSplit:
    """A period as runs of rolled-up periods (first and last start, inclusive) and the
    stretches to read raw (start, end; end None = up to now and beyond)."""

    rolled: list[tuple[date, date]] = field(default_factory=list)
    raw: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    def covers(self, start: date) -> bool:
        """Whether the period starting `start` is answered by the roll-up."""
        return any(first <= start <= last for first, last in self.rolled)

    def rolled_q(self, field_name: str = "day") -> Q | None:
        """Rows of the roll-up in the rolled runs, or None when there are none."""
        if not self.rolled:
            return None
        q = Q()
        for first, last in self.rolled:
            q |= Q(**{f"{field_name}__range": (first, last)})
        return q

    def raw_q(self, field_name: str = "created_at") -> Q:
        """Raw rows in the raw stretches (never none: a period that ends now ends raw)."""
        q = Q()
        for start, end in self.raw:
            bounds = {f"{field_name}__gte": start}
            if end is not None:
                bounds[f"{field_name}__lt"] = end
            q |= Q(**bounds)
        return q


def period_split(
    *,
    since: datetime,
    rolled: Collection[date],
    unit: Unit = DAYS,
    until: datetime | None = None,
    now: datetime | None = None,
) -> PeriodSplit:
    """Split [since, until) (until None: up to now and beyond) into the periods of `unit` that
    lie wholly inside it, are over and are in `rolled`, and the stretches read raw."""
    now = now or timezone.now()
    end = now if until is None else min(until, now)
    split = PeriodSplit()
    # Where the current raw stretch began; None while the rolled periods run.
    raw_from: datetime | None = since
    start = unit.first(today_utc(since))
    while day_start(unit.next(start)) <= end:
        begin = day_start(start)
        if begin >= since and start in rolled:
            if raw_from is not None and raw_from < begin:
                split.raw.append((raw_from, begin))
            raw_from = None
            if split.rolled and unit.next(split.rolled[-1][1]) == start:
                split.rolled[-1] = (split.rolled[-1][0], start)
            else:
                split.rolled.append((start, start))
        elif raw_from is None:
            raw_from = begin
        start = unit.next(start)
    last_from = day_start(start) if raw_from is None else raw_from
    if until is None or last_from < until:
        split.raw.append((last_from, until))
    return split


def period_split_by_months(
    *,
    since: datetime,
    rolled_months: Collection[date],
    rolled_days: Collection[date],
    now: datetime | None = None,
) -> tuple[PeriodSplit, PeriodSplit]:
    """Split [since, now] into rolled months, then what is left into rolled days and raw
    stretches: a year reads a dozen month rows per key instead of 365 day rows."""
    months = period_split(since=since, rolled=rolled_months, unit=MONTHS, now=now)
    days = PeriodSplit()
    for start, end in months.raw:
        part = period_split(since=start, rolled=rolled_days, until=end, now=now)
        days.rolled += part.rolled
        days.raw += part.raw
    return PeriodSplit(rolled=months.rolled), days


def counts_top(
    *, parts: Sequence[QuerySet[Any, Any]], key: str, limit: int
) -> list[dict[str, Any]]:
    """The `limit` keys with the most `n`, adding up `n` over querysets of `key` and `n` (the
    roll-up's and the raw rows'), most first, then by key: one statement, ordered by the
    database as the raw query alone would be."""
    alias = router.db_for_read(parts[0].model)
    compiled = [part.order_by().query.get_compiler(using=alias).as_sql() for part in parts]
    union = " UNION ALL ".join(sql for sql, _ in compiled)
    params = [param for _, part_params in compiled for param in part_params]
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"SELECT {key}, SUM(n) AS n FROM ({union}) AS parts "
            f"GROUP BY {key} ORDER BY n DESC, {key} LIMIT %s",
            [*params, limit],
        )
        return [{key: row[0], "n": int(row[1])} for row in cursor.fetchall()]
