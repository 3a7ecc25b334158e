from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from accounts.services import user_day_change
from accounts.tests.factories import UserFactory
from gamification import services
from gamification.models import (
    Achievement,
    ActivityKind,
    ActivityLog,
    Streak,
    UserAchievement,
    validate_levels,
)
from gamification.tests.factories import AchievementFactory, ActivityLogFactory, StreakFactory
from products.models import UserProductSearch
from products.services import product_search_record
from realtime.events import user_group

pytestmark = pytest.mark.django_db


def at(zone: str, *args: int) -> datetime:
    """A moment given as a wall-clock time in a zone, in UTC as the server sees it."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(ZoneInfo("UTC"))


def ledger_sum(user) -> int:
    return ActivityLog.objects.filter(user=user).aggregate(s=Sum("points"))["s"] or 0


@pytest.fixture
def no_achievements(db):
    Achievement.objects.update(is_active=False)


# --- Local day ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "utc_moment", "expected"),
    [
        # 11:30 UTC on 1 June is already 2 June, 23:30 in Auckland (NZST, +12).
        ("Pacific/Auckland", datetime(2026, 6, 1, 11, 30), date(2026, 6, 1)),
        ("Pacific/Auckland", datetime(2026, 6, 1, 12, 30), date(2026, 6, 2)),
        # Los Angeles (PDT, -7) is still on the previous day until 07:00 UTC.
        ("America/Los_Angeles", datetime(2026, 6, 2, 6, 59), date(2026, 6, 1)),
        ("America/Los_Angeles", datetime(2026, 6, 2, 7, 0), date(2026, 6, 2)),
        # Kolkata is +05:30: the half hour matters.
        ("Asia/Kolkata", datetime(2026, 6, 1, 18, 29), date(2026, 6, 1)),
        ("Asia/Kolkata", datetime(2026, 6, 1, 18, 30), date(2026, 6, 2)),
    ],
)
def test_local_date_follows_the_users_zone(zone, utc_moment, expected):
    user = UserFactory(timezone=zone)
    moment = utc_moment.replace(tzinfo=ZoneInfo("UTC"))
    assert services.local_date_for(user=user, now=moment) == expected


# --- Ledger ------------------------------------------------------------------------------------


def test_points_award_writes_ledger_and_total_together():
    user = UserFactory()
    services.points_award(
        user=user, kind=ActivityKind.ADJUSTMENT, points=25, local_date=date(2026, 1, 1)
    )
    services.points_award(
        user=user, kind=ActivityKind.ADJUSTMENT, points=-5, local_date=date(2026, 1, 1)
    )
    user.refresh_from_db()
    assert user.points == 20 == ledger_sum(user)


def test_points_award_records_actor_and_reason():
    user, employee = UserFactory(), UserFactory(is_staff=True)
    entry = services.points_award(
        user=user,
        kind=ActivityKind.ADJUSTMENT,
        points=7,
        local_date=date(2026, 1, 1),
        actor=employee,
        reason="Contest prize",
    )
    entry.refresh_from_db()
    assert (entry.actor, entry.reason, entry.points) == (employee, "Contest prize", 7)


def test_points_award_pushes_points_and_leaderboard(events, django_capture_on_commit_callbacks):
    user = UserFactory()
    listen = events(user_group(user.pk), "live")
    with django_capture_on_commit_callbacks(execute=True):
        services.points_award(
            user=user, kind=ActivityKind.ADJUSTMENT, points=3, local_date=date(2026, 1, 1)
        )
    received = {m["event"]: m["data"] for m in listen()}
    assert received["points.updated"] == {"points": 3}
    assert received["leaderboard.position"] == {"window": "all", "rank": 1, "points": 3, "total": 1}
    assert received["leaderboard.updated"]["windows"] == ["all", "day", "week", "month"]
    assert received["leaderboard.updated"]["version"] > 0


def test_points_rebuild_fixes_only_drifted_totals():
    drifted, right = UserFactory(), UserFactory()
    ActivityLogFactory(user=drifted, points=30)
    ActivityLogFactory(user=drifted, points=-4)
    services.points_award(
        user=right, kind=ActivityKind.ADJUSTMENT, points=9, local_date=date(2026, 1, 1)
    )
    assert services.points_rebuild() == 1
    drifted.refresh_from_db()
    right.refresh_from_db()
    assert (drifted.points, right.points) == (26, 9)
    assert services.points_rebuild() == 0


def test_points_rebuild_of_one_user_leaves_others():
    one, other = UserFactory(), UserFactory()
    ActivityLogFactory(user=one, points=5)
    ActivityLogFactory(user=other, points=5)
    assert services.points_rebuild(user=one) == 1
    other.refresh_from_db()
    assert other.points == 0


# --- Streaks -----------------------------------------------------------------------------------


def advance(user, day: date) -> services.StreakChange:
    return services.streak_advance(user=user, local_date=day)


def test_first_active_day_starts_a_streak_of_one():
    change = advance(UserFactory(), date(2026, 3, 1))
    assert change.first_today
    assert (change.streak.current_length, change.streak.longest_length) == (1, 1)
    assert change.bonus == 2


def test_consecutive_days_extend_and_same_day_changes_nothing():
    user = UserFactory()
    advance(user, date(2026, 3, 1))
    advance(user, date(2026, 3, 2))
    again = advance(user, date(2026, 3, 2))
    assert not again.first_today
    assert again.streak.current_length == 2
    assert again.bonus == 0


def test_missed_day_without_freeze_restarts_and_keeps_longest():
    user = UserFactory()
    for day in range(1, 5):
        advance(user, date(2026, 3, day))
    change = advance(user, date(2026, 3, 6))
    assert (change.streak.current_length, change.streak.longest_length) == (1, 4)


def test_freeze_covers_one_missed_day_and_is_consumed():
    user = UserFactory()
    StreakFactory(
        user=user,
        current_length=9,
        longest_length=9,
        last_active_date=date(2026, 3, 9),
        freezes_left=1,
    )
    change = advance(user, date(2026, 3, 11))
    assert change.freeze_used
    assert (change.streak.current_length, change.streak.freezes_left) == (10, 0)


def test_freeze_does_not_cover_two_missed_days():
    user = UserFactory()
    StreakFactory(
        user=user,
        current_length=9,
        longest_length=9,
        last_active_date=date(2026, 3, 9),
        freezes_left=2,
    )
    change = advance(user, date(2026, 3, 12))
    assert (change.streak.current_length, change.streak.freezes_left) == (1, 2)


def test_a_freeze_is_earned_every_seven_days_and_at_most_two_are_held():
    user = UserFactory()
    held = []
    for offset in range(22):
        change = advance(user, date(2026, 3, 1) + timedelta(days=offset))
        held.append(change.streak.freezes_left)
    assert held[5] == 0
    assert held[6] == 1  # day 7
    assert held[13] == 2  # day 14
    assert held[20] == 2  # day 21: still two
    assert change.streak.current_length == 22


def test_streak_bonus_is_two_points_per_day_capped_at_twenty():
    user = UserFactory()
    bonuses = [advance(user, date(2026, 3, 1) + timedelta(days=d)).bonus for d in range(12)]
    assert bonuses[:3] == [2, 4, 6]
    assert bonuses[9:] == [20, 20, 20]


def test_earlier_local_day_after_a_zone_change_counts_nothing():
    user = UserFactory()
    advance(user, date(2026, 3, 2))
    change = advance(user, date(2026, 3, 1))
    assert not change.first_today
    assert change.streak.last_active_date == date(2026, 3, 2)


# --- Submission rewards: cap, bonus, zones and DST ---------------------------------------------


def reward(user, now: datetime) -> services.SubmissionReward:
    return services.submission_reward(
        user=user, category="phones", product_ids=[1], categories_ranked=1, now=now
    )


def test_five_paid_submissions_per_local_day(no_achievements):
    user = UserFactory(timezone="UTC")
    awarded = [reward(user, at("UTC", 2026, 5, 1, 9, minute)).points_awarded for minute in range(7)]
    # The first also carries the day's streak bonus of 2.
    assert awarded == [12, 10, 10, 10, 10, 0, 0]
    user.refresh_from_db()
    assert user.points == 52 == ledger_sum(user)
    assert ActivityLog.objects.filter(user=user, kind=ActivityKind.RANKING_SUBMITTED).count() == 7


def test_cap_resets_at_the_users_midnight_not_utc(no_achievements):
    user = UserFactory(timezone="Pacific/Auckland")
    for minute in range(5):
        reward(user, at("Pacific/Auckland", 2026, 6, 1, 23, 50 + minute))
    # 00:05 in Auckland is still 1 June in UTC, but a new local day: paid again, streak 2.
    result = reward(user, at("Pacific/Auckland", 2026, 6, 2, 0, 5))
    assert result.points_awarded == 10 + 4
    assert result.streak.current_length == 2


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        # Each pair is minutes apart across the user's midnight: consecutive local days.
        ("Pacific/Auckland", (2026, 6, 1, 23, 55), (2026, 6, 2, 0, 5)),
        ("America/Los_Angeles", (2026, 6, 1, 23, 55), (2026, 6, 2, 0, 5)),
        ("Asia/Kolkata", (2026, 6, 1, 23, 55), (2026, 6, 2, 0, 5)),
    ],
)
def test_submissions_across_local_midnight_extend_the_streak(no_achievements, zone, before, after):
    user = UserFactory(timezone=zone)
    reward(user, at(zone, *before))
    result = reward(user, at(zone, *after))
    assert result.streak.current_length == 2
    assert result.points_awarded == 10 + 4


@pytest.mark.parametrize("zone", ["Pacific/Auckland", "America/Los_Angeles", "Asia/Kolkata"])
def test_same_local_day_across_utc_midnight_pays_the_bonus_once(no_achievements, zone):
    user = UserFactory(timezone=zone)
    # 00:30 and 23:30 local: one local day, though UTC's date changes in between for all three.
    reward(user, at(zone, 2026, 6, 1, 0, 30))
    result = reward(user, at(zone, 2026, 6, 1, 23, 30))
    assert result.streak.current_length == 1
    assert result.points_awarded == 10
    assert ActivityLog.objects.filter(user=user, kind=ActivityKind.STREAK_BONUS).count() == 1


def test_spring_forward_day_of_23_hours_still_extends(no_achievements):
    user = UserFactory(timezone="America/New_York")
    # 2026-03-08 has 23 hours in New York: 23:30 to 23:30 is 23 hours, and two local days.
    first = at("America/New_York", 2026, 3, 7, 23, 30)
    second = at("America/New_York", 2026, 3, 8, 23, 30)
    assert second - first == timedelta(hours=23)
    reward(user, first)
    assert reward(user, second).streak.current_length == 2


def test_fall_back_day_of_25_hours_is_one_local_day(no_achievements):
    user = UserFactory(timezone="America/New_York")
    # 2026-11-01 has 25 hours: 00:10 to 23:50 is over 24 hours, still the same local day.
    first = at("America/New_York", 2026, 11, 1, 0, 10)
    second = at("America/New_York", 2026, 11, 1, 23, 50)
    assert second - first > timedelta(hours=24)
    reward(user, first)
    result = reward(user, second)
    assert result.streak.current_length == 1
    assert result.points_awarded == 10
    third = reward(user, at("America/New_York", 2026, 11, 2, 0, 10))
    assert third.streak.current_length == 2


# --- Zone and day-start changes ---------------------------------------------------------------


def test_a_zone_change_the_same_day_pays_no_date_twice(no_achievements):
    user = UserFactory(timezone="UTC")
    first = [reward(user, at("UTC", 2026, 5, 1, 9, minute)).points_awarded for minute in range(6)]
    user_day_change(user=user, timezone_name="Pacific/Kiritimati", now=at("UTC", 2026, 5, 1, 9, 6))
    again = [reward(user, at("UTC", 2026, 5, 1, 9, 10 + minute)) for minute in range(6)]

    assert sum(first) == 52
    assert [result.points_awarded for result in again] == [0] * 6
    assert again[-1].streak.current_length == 1
    # 1 May ends in UTC at 14:00 on 2 May in Kiritimati: the next date, paid once.
    following = reward(user, at("UTC", 2026, 5, 2, 0, 0))
    assert (following.points_awarded, following.streak.current_length) == (10 + 4, 2)


def test_moving_east_across_25_hours_keeps_the_streak(no_achievements):
    user = UserFactory(timezone="Pacific/Pago_Pago")
    for day in (1, 2, 3):
        reward(user, at("Pacific/Pago_Pago", 2026, 6, day, 20, 0))
    user_day_change(
        user=user,
        timezone_name="Pacific/Kiritimati",
        now=at("Pacific/Pago_Pago", 2026, 6, 3, 20, 5),
    )
    # 3 June ends in Pago Pago at 01:00 on 5 June in Kiritimati: 4 June never happens.
    result = reward(user, at("Pacific/Kiritimati", 2026, 6, 5, 1, 30))

    assert result.streak.current_length == 4
    assert result.points_awarded == 10 + 8


def test_moving_west_pays_nothing_more_for_a_date_lived_again(no_achievements):
    user = UserFactory(timezone="Asia/Kolkata")
    for minute in range(5):
        reward(user, at("Asia/Kolkata", 2026, 6, 1, 9, minute))
    user_day_change(
        user=user, timezone_name="America/New_York", now=at("Asia/Kolkata", 2026, 6, 1, 9, 10)
    )
    # 1 June ends in Kolkata at 14:30 on 1 June in New York: the rest of 1 June is paid out.
    again = reward(user, at("America/New_York", 2026, 6, 1, 15, 0))
    following = reward(user, at("America/New_York", 2026, 6, 2, 0, 5))

    assert (again.points_awarded, again.streak.current_length) == (0, 1)
    assert (following.points_awarded, following.streak.current_length) == (10 + 4, 2)


def test_a_later_day_start_keeps_the_small_hours_on_the_previous_date(no_achievements):
    user = UserFactory(timezone="UTC", day_start_hour=3)
    reward(user, at("UTC", 2026, 6, 1, 22, 0))
    # 01:30 on 2 June belongs to 1 June for a day that starts at 03:00: no new day, no bonus.
    small_hours = reward(user, at("UTC", 2026, 6, 2, 1, 30))
    morning = reward(user, at("UTC", 2026, 6, 2, 3, 0))

    assert (small_hours.points_awarded, small_hours.streak.current_length) == (10, 1)
    assert (morning.points_awarded, morning.streak.current_length) == (10 + 4, 2)


# --- Achievements ------------------------------------------------------------------------------


def test_achievement_unlocks_once_and_pays_once():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    first = AchievementFactory(metric="searches_made", threshold=2, points=15)
    for query in ("phone", "tablet", "laptop"):
        product_search_record(user_id=user.pk, query=query, result_count=1)
    held = UserAchievement.objects.get(user=user, achievement=first)
    assert held.unlocked_at is not None
    user.refresh_from_db()
    assert user.points == 15 == ledger_sum(user)
    assert ActivityLog.objects.filter(kind=ActivityKind.ACHIEVEMENT_UNLOCKED).count() == 1


def test_progress_is_tracked_before_unlocking():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    achievement = AchievementFactory(metric="searches_made", threshold=10)
    for query in ("tv", "radio", "camera"):
        product_search_record(user_id=user.pk, query=query, result_count=0)
    held = UserAchievement.objects.get(user=user, achievement=achievement)
    assert (held.progress, held.unlocked_at) == (3, None)


def test_a_query_searched_again_the_same_day_counts_once(no_achievements):
    user = UserFactory(timezone="Asia/Kolkata", day_start_hour=2)
    curious = AchievementFactory(metric="searches_made", threshold=3, points=10)
    # 23:00 and 01:30 in Kolkata are one day for a day that starts at 02:00; 02:30 is the next.
    for hour, minute in ((23, 0), (23, 5), (25, 30)):
        searched = at("Asia/Kolkata", 2026, 6, 1, 0, 0) + timedelta(hours=hour, minutes=minute)
        UserProductSearch.objects.create(user=user, query="tv", created_at=searched)
    services.achievements_evaluate(user=user, metrics=["searches_made"])
    assert UserAchievement.objects.get(user=user, achievement=curious).progress == 1

    UserProductSearch.objects.create(
        user=user, query="tv", created_at=at("Asia/Kolkata", 2026, 6, 2, 2, 30)
    )
    product_search_record(user_id=user.pk, query="Radio", result_count=0)
    product_search_record(user_id=user.pk, query="radio ", result_count=0)
    held = UserAchievement.objects.get(user=user, achievement=curious)
    assert (held.progress, held.unlocked_at is not None) == (3, True)


def test_replacing_a_categorys_ranking_the_same_day_advances_no_submission_count(no_achievements):
    user = UserFactory(timezone="UTC")
    seasoned = AchievementFactory(metric="rankings_submitted", threshold=3, points=25)
    for minute in range(10):
        reward(user, at("UTC", 2026, 6, 1, 9, minute))
    assert UserAchievement.objects.get(user=user, achievement=seasoned).progress == 1

    services.submission_reward(
        user=user,
        category="laptops",
        product_ids=[2],
        categories_ranked=2,
        now=at("UTC", 2026, 6, 1, 10, 0),
    )
    result = reward(user, at("UTC", 2026, 6, 2, 9, 0))
    assert [a.code for a in result.new_achievements] == [seasoned.code]


def test_streak_days_count_the_longest_streak_reached():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    week = AchievementFactory(metric="streak_days", threshold=7, points=5)
    StreakFactory(user=user, current_length=1, longest_length=7, last_active_date=date(2026, 6, 1))
    unlocks = services.achievements_evaluate(user=user, metrics=["streak_days"])
    assert [u.code for u in unlocks] == [week.code]


# --- Tiered achievements -----------------------------------------------------------------------

TIERS = [
    {"name": "Bronze", "threshold": 2, "points": 10},
    {"name": "Silver", "threshold": 4, "points": 20},
    {"name": "Gold", "threshold": 6, "points": 40},
]


def submit_days(user, days: range) -> list[services.SubmissionReward]:
    return [reward(user, at("UTC", 2026, 6, 1, 9, 0) + timedelta(days=day)) for day in days]


def test_tiered_levels_unlock_in_order_each_paid_and_announced_once(
    no_achievements, events, django_capture_on_commit_callbacks
):
    user = UserFactory(timezone="UTC")
    tiered = AchievementFactory(metric="rankings_submitted", threshold=2, points=10, levels=TIERS)
    listen = events(user_group(user.pk))
    with django_capture_on_commit_callbacks(execute=True):
        results = submit_days(user, range(7))

    unlocked = [[(u.code, u.level.name, u.points) for u in r.new_achievements] for r in results]
    assert unlocked == [
        [],
        [(tiered.code, "Bronze", 10)],
        [],
        [(tiered.code, "Silver", 20)],
        [],
        [(tiered.code, "Gold", 40)],
        [],
    ]
    announced = [m["data"] for m in listen() if m["event"] == "achievement.unlocked"]
    assert [(a["level"], a["level_name"], a["points"]) for a in announced] == [
        (1, "Bronze", 10),
        (2, "Silver", 20),
        (3, "Gold", 40),
    ]
    held = UserAchievement.objects.get(user=user, achievement=tiered)
    assert (held.level, held.progress) == (3, 6)
    paid = ActivityLog.objects.filter(user=user, kind=ActivityKind.ACHIEVEMENT_UNLOCKED)
    assert sorted(paid.values_list("data__level", "points")) == [(1, 10), (2, 20), (3, 40)]
    user.refresh_from_db()
    assert user.points == ledger_sum(user)


def test_progress_counts_towards_the_next_level():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    tiered = AchievementFactory(metric="searches_made", threshold=2, points=10, levels=TIERS)
    for query in ("a", "b", "c"):
        product_search_record(user_id=user.pk, query=query, result_count=0)
    held = UserAchievement.objects.get(user=user, achievement=tiered)
    assert (held.level, held.progress, held.unlocked_at is not None) == (1, 3, True)


def test_levels_crossed_at_once_are_each_paid_in_order():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    for query in "abcde":
        UserProductSearch.objects.create(user=user, query=query)
    tiered = AchievementFactory(metric="searches_made", threshold=2, points=10, levels=TIERS)
    unlocks = services.achievements_evaluate(user=user, metrics=["searches_made"])
    assert [(u.code, u.level.number) for u in unlocks] == [(tiered.code, 1), (tiered.code, 2)]
    user.refresh_from_db()
    assert user.points == 30 == ledger_sum(user)


# --- Re-evaluation -----------------------------------------------------------------------------


def test_reevaluation_pays_what_is_newly_due_once_and_takes_nothing_away():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    for query in "abcde":
        UserProductSearch.objects.create(user=user, query=query)
    tiered = AchievementFactory(metric="searches_made", threshold=2, points=10, levels=TIERS[:1])
    plain = AchievementFactory(metric="searches_made", threshold=5, points=7)
    services.achievements_reevaluate()
    user.refresh_from_db()
    assert user.points == 10 + 7

    # The rules change: a new level within reach, one out of reach, thresholds raised.
    tiered.levels = [TIERS[0], TIERS[1], {"name": "Gold", "threshold": 50, "points": 40}]
    tiered.save()
    Achievement.objects.filter(pk=plain.pk).update(threshold=50)
    first = services.achievements_reevaluate()
    second = services.achievements_reevaluate()

    assert first["achievements_unlocked"] == 1 and second["achievements_unlocked"] == 0
    user.refresh_from_db()
    assert user.points == 10 + 7 + 20 == ledger_sum(user)
    held = {h.achievement_id: h for h in UserAchievement.objects.filter(user=user)}
    assert (held[tiered.pk].level, held[tiered.pk].progress) == (2, 5)
    assert held[plain.pk].unlocked_at is not None

    # Raising a reached level's threshold takes back neither the level nor its points.
    tiered.levels = [{"name": "Bronze", "threshold": 40, "points": 10}, *tiered.levels[1:]]
    tiered.levels[1] = {"name": "Silver", "threshold": 45, "points": 20}
    tiered.save()
    services.achievements_reevaluate()
    user.refresh_from_db()
    assert user.points == 37 == ledger_sum(user)
    assert UserAchievement.objects.get(user=user, achievement=tiered).level == 2


def test_achievement_unlocked_before_levels_existed_counts_as_its_first_level():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    for query in "abcd":
        UserProductSearch.objects.create(user=user, query=query)
    tiered = AchievementFactory(metric="searches_made", threshold=2, points=10, levels=TIERS)
    UserAchievement.objects.create(
        user=user, achievement=tiered, progress=2, unlocked_at=timezone.now()
    )
    unlocks = services.achievements_evaluate(user=user, metrics=["searches_made"])
    assert [u.level.number for u in unlocks] == [2]


@pytest.mark.parametrize(
    "levels",
    [
        {"name": "Bronze"},
        [{"name": "Bronze", "threshold": 5}],
        [{"name": "Bronze", "threshold": 5, "points": 1, "extra": 1}],
        [{"name": "", "threshold": 5, "points": 1}],
        [{"name": "Bronze", "threshold": "5", "points": 1}],
        [{"name": "Bronze", "threshold": 5, "points": -1}],
        [{"name": "Bronze", "threshold": 0, "points": 1}],
        [{"name": "B", "threshold": 5, "points": 1}, {"name": "S", "threshold": 5, "points": 2}],
    ],
)
def test_levels_must_be_named_whole_and_rising(levels):
    with pytest.raises(ValidationError):
        validate_levels(levels)


def test_anonymous_search_evaluates_nothing():
    product_search_record(user_id=None, query="tv", result_count=0)
    assert not UserAchievement.objects.exists()


def test_unlock_points_can_unlock_the_points_achievement(
    events, django_capture_on_commit_callbacks
):
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    AchievementFactory(code="searcher", metric="searches_made", threshold=1, points=100)
    AchievementFactory(code="rich", metric="points", threshold=100, points=5)
    listen = events(user_group(user.pk))
    with django_capture_on_commit_callbacks(execute=True):
        unlocked = services.achievements_evaluate(user=user, metrics=["searches_made"])
    assert unlocked == []  # no search yet
    with django_capture_on_commit_callbacks(execute=True):
        product_search_record(user_id=user.pk, query="x", result_count=0)
    user.refresh_from_db()
    assert user.points == 105 == ledger_sum(user)
    pushed = [m["data"]["code"] for m in listen() if m["event"] == "achievement.unlocked"]
    assert pushed == ["searcher", "rich"]


def test_inactive_achievement_is_not_evaluated():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    AchievementFactory(metric="searches_made", threshold=1, is_active=False)
    product_search_record(user_id=user.pk, query="x", result_count=0)
    assert not UserAchievement.objects.exists()


def test_evaluation_without_notify_sends_nothing(events, django_capture_on_commit_callbacks):
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    AchievementFactory(metric="points", threshold=0, points=1)
    listen = events(user_group(user.pk), "live")
    with django_capture_on_commit_callbacks(execute=True):
        unlocked = services.achievements_evaluate(user=user, metrics=["points"], notify=False)
    assert len(unlocked) == 1
    assert listen() == []


# --- Page views --------------------------------------------------------------------------------


def test_page_view_for_unknown_product_is_refused():
    with pytest.raises(services.InvalidPageView):
        services.page_view_record(path="/p/1", product_id=999_999)


def test_streak_row_is_created_on_first_activity():
    user = UserFactory()
    assert not Streak.objects.filter(user=user).exists()
    advance(user, date(2026, 1, 1))
    assert Streak.objects.get(user=user).last_active_date == date(2026, 1, 1)


def test_points_rebuild_after_a_lost_update_in_a_big_ledger():
    users = [UserFactory() for _ in range(3)]
    for user in users:
        for points in (10, 2, 25):
            services.points_award(
                user=user, kind=ActivityKind.ADJUSTMENT, points=points, local_date=date(2026, 1, 1)
            )
    User.objects.filter(pk=users[1].pk).update(points=0)
    assert services.points_rebuild() == 1
    assert [User.objects.get(pk=u.pk).points for u in users] == [37, 37, 37]


def test_a_streak_edited_by_an_employee_is_sent_to_the_user_and_audited(
    events, django_capture_on_commit_callbacks
):
    from adminops.models import AuditLog

    user, employee = UserFactory(), UserFactory(is_staff=True)
    streak = StreakFactory(user=user, current_length=2, longest_length=4)
    listen = events(user_group(user.pk))

    with django_capture_on_commit_callbacks(execute=True):
        services.streak_admin_edit(
            actor=employee, streak=streak, fields={"current_length": 5, "longest_length": 5}
        )

    pushed = [m["data"] for m in listen() if m["event"] == "streak.updated"]
    assert [(d["current_length"], d["longest_length"]) for d in pushed] == [(5, 5)]
    entry = AuditLog.objects.get(target_id=str(user.pk))
    assert (entry.actor, entry.data["changed"]) == (employee, ["current_length", "longest_length"])


def test_a_streak_edit_with_longest_shorter_than_current_changes_nothing():
    user = UserFactory()
    streak = StreakFactory(user=user, current_length=2, longest_length=4)

    with pytest.raises(services.ActionRefused):
        services.streak_admin_edit(actor=UserFactory(), streak=streak, fields={"current_length": 6})

    streak.refresh_from_db()
    assert (streak.current_length, streak.longest_length) == (2, 4)


# --- Bulk tools: a batch of users per statement ----------------------------------------------


def _query_count(run) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries)


def test_points_rebuild_goes_batch_by_batch_and_reports_progress(monkeypatch):
    monkeypatch.setattr(services, "BATCH_USERS", 5)
    users = UserFactory.create_batch(12)
    services.points_award(
        user=users[3], kind=ActivityKind.ADJUSTMENT, points=7, local_date=date(2026, 6, 1)
    )
    User.objects.update(points=4)
    progress = []
    assert services.points_rebuild(on_progress=lambda *p: progress.append(p)) == 12
    assert progress == [(5, 12), (10, 12), (12, 12)]
    assert dict(User.objects.values_list("pk", "points"))[users[3].pk] == 7
    assert User.objects.filter(points=0).count() == 11


def test_points_rebuild_statements_do_not_grow_with_users():
    UserFactory.create_batch(10)
    User.objects.update(points=3)
    few = _query_count(services.points_rebuild)
    UserFactory.create_batch(30)
    User.objects.update(points=3)
    assert _query_count(services.points_rebuild) == few


def _history(user, *, rankings: int, searches: int, longest: int) -> None:
    for n in range(rankings):
        # Each on a day of its own: the metric counts (day, category) pairs.
        ActivityLogFactory(
            user=user,
            kind=ActivityKind.RANKING_SUBMITTED,
            local_date=date(2026, 6, 1) + timedelta(days=n),
            data={"category": "mice"},
        )
    # Written directly: a recorded search would evaluate the achievements at once.
    UserProductSearch.objects.bulk_create(
        UserProductSearch(user=user, query=f"q{n}", result_count=1) for n in range(searches)
    )
    StreakFactory(user=user, current_length=1, longest_length=longest)


def test_reevaluate_in_batches_awards_what_each_history_earned_once(monkeypatch):
    monkeypatch.setattr(services, "BATCH_USERS", 2)
    Achievement.objects.update(is_active=False)
    ranker = AchievementFactory(metric="rankings_submitted", threshold=3, points=5)
    searcher = AchievementFactory(metric="searches_made", threshold=2, points=0)
    streaker = AchievementFactory(metric="streak_days", threshold=4, points=5)
    rich = AchievementFactory(metric="points", threshold=10, points=1)
    users = UserFactory.create_batch(5)
    _history(users[0], rankings=3, searches=0, longest=4)
    _history(users[1], rankings=1, searches=2, longest=1)
    _history(users[4], rankings=5, searches=5, longest=9)
    progress = []
    result = services.achievements_reevaluate(on_progress=lambda *p: progress.append(p))
    assert progress == [(2, 5), (4, 5), (5, 5)]
    unlocked = set(
        UserAchievement.objects.filter(unlocked_at__isnull=False).values_list(
            "user_id", "achievement_id"
        )
    )
    # Ranker and streaker pay 10 points together: enough for the points achievement too.
    assert unlocked == {
        (users[0].pk, ranker.pk),
        (users[0].pk, streaker.pk),
        (users[0].pk, rich.pk),
        (users[1].pk, searcher.pk),
        (users[4].pk, ranker.pk),
        (users[4].pk, searcher.pk),
        (users[4].pk, streaker.pk),
        (users[4].pk, rich.pk),
    }
    assert result == {"users_checked": 5, "achievements_unlocked": 8}
    progress_of_one = UserAchievement.objects.get(user=users[1], achievement=ranker)
    assert (progress_of_one.progress, progress_of_one.unlocked_at) == (1, None)
    assert services.points_rebuild() == 0
    assert User.objects.get(pk=users[0].pk).points == 11
    again = services.achievements_reevaluate()
    assert again["achievements_unlocked"] == 0
    assert ActivityLog.objects.filter(kind=ActivityKind.ACHIEVEMENT_UNLOCKED).count() == 6
