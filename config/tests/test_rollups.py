"""Splitting a period between the closed days a roll-up holds and the raw rows."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.test import override_settings

from config.rollups import (
    WEEKS,
    day_start,
    period_split,
    rollup_day_check,
    rollup_days_due,
    rollup_earliest_day,
)

NOW = datetime(2026, 3, 12, 15, 30, tzinfo=UTC)  # a Thursday


def days(first: int, last: int) -> set[date]:
    return {date(2026, 3, d) for d in range(first, last + 1)}


def test_nothing_rolled_reads_the_whole_period_raw():
    since = NOW - timedelta(days=5)

    split = period_split(since=since, rolled=set(), now=NOW)

    assert split.rolled == []
    assert split.raw == [(since, None)]


def test_rolled_days_wholly_inside_the_period_are_read_rolled_and_the_edges_raw():
    since = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)

    # The 5th starts before `since` and the 12th is today: both raw even if rolled.
    split = period_split(since=since, rolled=days(5, 12), now=NOW)

    assert split.rolled == [(date(2026, 3, 6), date(2026, 3, 11))]
    assert split.raw == [(since, day_start(date(2026, 3, 6))), (day_start(date(2026, 3, 12)), None)]


def test_a_day_not_rolled_yet_is_read_raw_between_rolled_runs():
    since = day_start(date(2026, 3, 1))

    split = period_split(since=since, rolled=days(1, 11) - {date(2026, 3, 4)}, now=NOW)

    assert split.rolled == [
        (date(2026, 3, 1), date(2026, 3, 3)),
        (date(2026, 3, 5), date(2026, 3, 11)),
    ]
    assert split.raw == [
        (day_start(date(2026, 3, 4)), day_start(date(2026, 3, 5))),
        (day_start(date(2026, 3, 12)), None),
    ]
    assert split.covers(date(2026, 3, 3)) and not split.covers(date(2026, 3, 4))


def test_weeks_roll_only_whole_closed_weeks():
    since = datetime(2026, 2, 18, 12, 0, tzinfo=UTC)  # a Wednesday
    mondays = {date(2026, 2, 16), date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9)}

    split = period_split(since=since, rolled=mondays, unit=WEEKS, now=NOW)

    # The week of the 16th began before `since`; the week of the 9th is not over.
    assert split.rolled == [(date(2026, 2, 23), date(2026, 3, 2))]
    assert split.raw == [(since, day_start(date(2026, 2, 23))), (day_start(date(2026, 3, 9)), None)]


@override_settings(RETENTION_DAYS=10)
def test_a_periodic_run_rolls_yesterday_again_and_every_day_missed_within_retention():
    assert rollup_earliest_day(NOW) == date(2026, 3, 3)
    assert rollup_days_due(last_rolled=None, now=NOW) == sorted(days(3, 11))
    assert rollup_days_due(last_rolled=date(2026, 3, 8), now=NOW) == sorted(days(9, 11))
    assert rollup_days_due(last_rolled=date(2026, 3, 11), now=NOW) == [date(2026, 3, 11)]


@override_settings(RETENTION_DAYS=10)
@pytest.mark.parametrize("day", [date(2026, 3, 12), date(2026, 3, 13), date(2026, 3, 2)])
def test_an_open_day_or_one_the_pruning_may_have_cut_is_refused(day):
    with pytest.raises(ValueError):
        rollup_day_check(day, NOW)


@override_settings(RETENTION_DAYS=10)
def test_closed_days_within_retention_are_accepted():
    rollup_day_check(date(2026, 3, 3), NOW)
    rollup_day_check(date(2026, 3, 11), NOW)
