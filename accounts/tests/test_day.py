from datetime import UTC, date, datetime, timedelta

import pytest

from accounts.selectors import DayRule, user_day
from accounts.services import user_day_change, user_day_settle
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- The rule: zone and day-start hour ---------------------------------------------------------


def test_day_start_hour_counts_the_small_hours_for_the_previous_date():
    night_owl = DayRule(timezone="UTC", day_start_hour=3)
    assert night_owl.date_at(utc(2026, 6, 2, 1, 30)) == date(2026, 6, 1)
    assert night_owl.date_at(utc(2026, 6, 2, 3, 0)) == date(2026, 6, 2)
    assert night_owl.day_end(date(2026, 6, 1)) == utc(2026, 6, 2, 3, 0)


@pytest.mark.parametrize(
    ("zone", "hour", "day", "end"),
    [
        # Berlin springs forward at 02:00 CET: a 02:00 start is the moment of the jump.
        ("Europe/Berlin", 2, date(2026, 3, 28), utc(2026, 3, 29, 1, 0)),
        # Berlin falls back at 03:00 CEST: 02:00 happens twice and the first one starts the day.
        ("Europe/Berlin", 2, date(2026, 10, 24), utc(2026, 10, 25, 0, 0)),
        ("America/New_York", 0, date(2026, 3, 8), utc(2026, 3, 9, 4, 0)),
        ("Asia/Kathmandu", 4, date(2026, 6, 1), utc(2026, 6, 1, 22, 15)),
    ],
)
def test_day_end_is_the_first_moment_of_the_next_date(zone, hour, day, end):
    rule = DayRule(timezone=zone, day_start_hour=hour)
    assert rule.day_end(day) == end
    assert rule.date_at(end) == day + timedelta(days=1)
    assert rule.date_at(end - timedelta(microseconds=1)) == day


# --- Changes wait for the end of the current day -----------------------------------------------


def test_zone_change_waits_for_the_end_of_the_current_day():
    user = UserFactory(timezone="UTC")
    user_day_change(user=user, timezone_name="Pacific/Kiritimati", now=utc(2026, 6, 1, 10, 0))

    before = user_day(user=user, now=utc(2026, 6, 1, 23, 59))
    assert (before.rule.timezone, before.date) == ("UTC", date(2026, 6, 1))
    assert before.pending_from == utc(2026, 6, 2, 0, 0)
    after = user_day(user=user, now=utc(2026, 6, 2, 0, 0))
    # 14:00 in Kiritimati: the next date, not a fresh one beyond it.
    assert (after.rule.timezone, after.date) == ("Pacific/Kiritimati", date(2026, 6, 2))
    assert after.pending_rule is None and after.skipped_date is None


def test_moving_west_repeats_dates_already_lived_and_skips_none():
    user = UserFactory(timezone="Pacific/Kiritimati")
    user_day_change(user=user, timezone_name="Pacific/Pago_Pago", now=utc(2026, 6, 1, 0, 0))
    # 1 June ends in Kiritimati at 10:00 UTC, when it is 23:00 on 31 May in Pago Pago.
    day = user_day(user=user, now=utc(2026, 6, 1, 10, 0))
    assert day.date == date(2026, 5, 31)
    assert day.skipped_date is None


def test_moving_east_across_25_hours_records_the_one_date_it_skips():
    user = UserFactory(timezone="Pacific/Pago_Pago")
    user_day_change(user=user, timezone_name="Pacific/Kiritimati", now=utc(2026, 6, 1, 20, 0))
    # 1 June ends in Pago Pago at 11:00 UTC on 2 June: already 01:00 on 3 June in Kiritimati.
    moment = utc(2026, 6, 2, 11, 0)
    day = user_day(user=user, now=moment)
    assert (day.date, day.skipped_date) == (date(2026, 6, 3), date(2026, 6, 2))

    user_day_settle(user=user, now=moment)
    user.refresh_from_db()
    assert (user.timezone, user.skipped_date, user.pending_from) == (
        "Pacific/Kiritimati",
        date(2026, 6, 2),
        None,
    )


def test_a_second_change_replaces_the_pending_one_and_going_back_cancels_it():
    user = UserFactory(timezone="UTC")
    user_day_change(user=user, timezone_name="Asia/Kolkata", now=utc(2026, 6, 1, 10, 0))
    user_day_change(user=user, day_start_hour=3, now=utc(2026, 6, 1, 11, 0))
    user.refresh_from_db()
    assert (user.pending_timezone, user.pending_day_start_hour) == ("Asia/Kolkata", 3)
    assert user.pending_from == utc(2026, 6, 2, 0, 0)

    user_day_change(user=user, timezone_name="UTC", day_start_hour=0, now=utc(2026, 6, 1, 12, 0))
    user.refresh_from_db()
    assert user.pending_from is None
    assert user_day(user=user, now=utc(2026, 6, 3)).rule == DayRule("UTC", 0)


def test_day_start_change_waits_for_the_end_of_the_day_in_the_old_hour():
    user = UserFactory(timezone="UTC", day_start_hour=4)
    user_day_change(user=user, day_start_hour=0, now=utc(2026, 6, 2, 2, 0))
    # 02:00 on 2 June is still 1 June for a day starting at 04:00; it ends at 04:00.
    assert user.pending_from == utc(2026, 6, 2, 4, 0)
    assert user_day(user=user, now=utc(2026, 6, 2, 3, 59)).date == date(2026, 6, 1)
    assert user_day(user=user, now=utc(2026, 6, 2, 4, 0)).date == date(2026, 6, 2)


def test_a_change_due_long_ago_is_put_in_force_by_the_next_change():
    user = UserFactory(timezone="UTC")
    user_day_change(user=user, timezone_name="Asia/Kathmandu", now=utc(2026, 6, 1, 10, 0))
    user_day_change(user=user, day_start_hour=2, now=utc(2026, 7, 1, 10, 0))
    user.refresh_from_db()
    assert (user.timezone, user.day_start_hour) == ("Asia/Kathmandu", 0)
    assert (user.pending_timezone, user.pending_day_start_hour) == ("Asia/Kathmandu", 2)
    # 1 July ends in Kathmandu (+05:45) at 18:15 UTC.
    assert user.pending_from == utc(2026, 7, 1, 18, 15)
