"""Random days of play, zone moves and day-start changes, checked against the calendar.

Each example is one player: a clock that only the test moves, submissions through
`ranking_submit`, and changes through `user_update`, both told the time. An oracle written
from the rules alone (a date is the wall-clock date less the day-start hour; a change waits
for the end of the day in the rule in force) says which date every moment belongs to and
which dates the player lived; the ledger and the streak must agree with it.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from accounts.services import user_update
from gamification import selectors
from gamification.models import ActivityKind, ActivityLog, Streak
from products.models import Product
from products.tests.factories import ProductFactory
from rankings.services import ranking_submit

pytestmark = pytest.mark.django_db

ZONES = [
    "UTC",
    "Pacific/Kiritimati",  # +14
    "Pacific/Pago_Pago",  # -11
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Europe/Berlin",  # DST at 02:00/03:00 local
    "America/New_York",  # DST at 02:00 local, other weekends
    "Australia/Lord_Howe",  # a DST shift of half an hour
    "Pacific/Chatham",  # +12:45, +13:45 in summer
]
# Each start is days before a DST change, so that the play crosses it: both ways, two zones.
STARTS = [
    datetime(2026, 3, 26, 9, 0, tzinfo=UTC),  # Berlin springs forward on 29 March
    datetime(2026, 10, 22, 9, 0, tzinfo=UTC),  # Berlin falls back on 25 October
    datetime(2026, 3, 5, 9, 0, tzinfo=UTC),  # New York springs forward on 8 March
    datetime(2026, 10, 29, 9, 0, tzinfo=UTC),  # New York falls back on 1 November
    datetime(2026, 4, 2, 9, 0, tzinfo=UTC),  # Lord Howe and Chatham leave DST on 5 April
]
CATEGORIES = ["phones", "laptops", "cameras"]
CAP, SUBMISSION_POINTS, BONUS_MAX = 5, 10, 20

actions = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=30 * 60)),
        st.tuples(st.just("submit"), st.sampled_from(CATEGORIES)),
        st.tuples(st.just("zone"), st.sampled_from(ZONES)),
        st.tuples(st.just("day_start"), st.integers(min_value=0, max_value=4)),
    ),
    min_size=1,
    max_size=30,
)


@dataclass(frozen=True)
class Rule:
    zone: str
    hour: int

    def date_at(self, moment: datetime) -> date:
        wall = moment.astimezone(ZoneInfo(self.zone)).replace(tzinfo=None)
        return (wall - timedelta(hours=self.hour)).date()

    def day_end(self, moment: datetime) -> datetime:
        """The first minute whose date is not `moment`'s, found by search, not by formula."""
        today = self.date_at(moment)
        low, high = moment, moment + timedelta(hours=1)
        while self.date_at(high) == today:
            low, high = high, high + timedelta(hours=1)
        while high - low > timedelta(minutes=1):
            middle = low + (high - low) / 2
            middle = middle.replace(second=0, microsecond=0)
            if middle <= low:
                break
            low, high = (middle, high) if self.date_at(middle) == today else (low, middle)
        return high


@dataclass
class Oracle:
    """The calendar of one player, from the rules alone."""

    rule: Rule
    clock: datetime
    pending: tuple[Rule, datetime] | None = None
    lived: set[date] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.lived.add(self.rule.date_at(self.clock))

    def wait(self, minutes: int) -> None:
        end = self.clock + timedelta(minutes=minutes)
        if self.pending and self.pending[1] <= end:
            # The old rule's last moment is just before the switch.
            self._live_until(self.pending[1], last=self.pending[1] - timedelta(microseconds=1))
            self.rule, self.pending = self.pending[0], None
        self._live_until(end, last=end)

    def _live_until(self, moment: datetime, *, last: datetime) -> None:
        first, last = self.rule.date_at(self.clock), self.rule.date_at(last)
        self.lived.update(first + timedelta(days=n) for n in range((last - first).days + 1))
        self.clock = moment

    def change(self, *, zone: str | None = None, hour: int | None = None) -> None:
        base = self.pending[0] if self.pending else self.rule
        wanted = Rule(zone=zone or base.zone, hour=base.hour if hour is None else hour)
        if wanted == self.rule:
            self.pending = None
        else:
            self.pending = (wanted, self.rule.day_end(self.clock))

    def today(self) -> date:
        return self.rule.date_at(self.clock)


@dataclass
class StreakOracle:
    length: int = 0
    longest: int = 0
    freezes: int = 0
    last: date | None = None
    counted: list[tuple[date, int]] = field(default_factory=list)

    def submit(self, *, day: date, lived: set[date]) -> None:
        if self.last is not None and day <= self.last:
            return
        missed = 0 if self.last is None else self.missed(until=day, lived=lived)
        if self.last is not None and missed == 0 and self.length:
            self.length += 1
        elif self.last is not None and missed == 1 and self.length and self.freezes:
            self.freezes -= 1
            self.length += 1
        else:
            self.length = 1
        if self.length % 7 == 0 and self.freezes < 2:
            self.freezes += 1
        self.longest = max(self.longest, self.length)
        self.last = day
        self.counted.append((day, self.length))

    def missed(self, *, until: date, lived: set[date]) -> int:
        return sum(1 for day in lived if self.last < day < until)


def products() -> dict[str, int]:
    ids = {}
    for category in CATEGORIES:
        product = Product.objects.filter(category=category).first() or ProductFactory(
            category=category
        )
        ids[category] = product.pk
    return ids


def play(*, zone: str, hour: int, start: datetime, plan: list[tuple[str, object]]) -> None:
    """Play the plan as one new player and check the ledger and streak against the oracle."""
    product_ids = products()
    user = User.objects.create_user(
        email=f"player{User.objects.count()}@example.com", timezone=zone, day_start_hour=hour
    )
    oracle, streak = Oracle(rule=Rule(zone, hour), clock=start), StreakOracle()
    expected_dates = []

    for action, value in plan:
        if action == "wait":
            oracle.wait(value)
        elif action == "submit":
            ranking_submit(
                user=user, category=value, product_ids=[product_ids[value]], now=oracle.clock
            )
            expected_dates.append(oracle.today())
            streak.submit(day=oracle.today(), lived=oracle.lived)
        elif action == "zone":
            user_update(user=User.objects.get(pk=user.pk), timezone=value, now=oracle.clock)
            oracle.change(zone=value)
        else:
            user_update(user=User.objects.get(pk=user.pk), day_start_hour=value, now=oracle.clock)
            oracle.change(hour=value)

    ledger = ActivityLog.objects.filter(user=user).order_by("created_at", "id")
    submissions = ledger.filter(kind=ActivityKind.RANKING_SUBMITTED)
    # Every submission is dated by the rule in force when it was made.
    assert [entry.local_date for entry in submissions] == expected_dates

    for day in set(expected_dates):
        paid = submissions.filter(local_date=day, points__gt=0)
        # No date is paid twice: one day's worth of submissions, one streak bonus.
        assert paid.count() == min(CAP, submissions.filter(local_date=day).count())
        assert set(paid.values_list("points", flat=True)) <= {SUBMISSION_POINTS}
        bonuses = ledger.filter(kind=ActivityKind.STREAK_BONUS, local_date=day)
        assert bonuses.count() <= 1
        assert sum(bonuses.values_list("points", flat=True)) <= BONUS_MAX

    # The streak counts each new date once, in order, and only a lived date missed breaks it.
    bonus_days = [
        (entry.local_date, entry.data["streak_days"])
        for entry in ledger.filter(kind=ActivityKind.STREAK_BONUS)
    ]
    assert bonus_days == streak.counted
    stored = Streak.objects.filter(user=user).first()
    if streak.last is None:
        assert stored is None
    else:
        assert (
            stored.current_length,
            stored.longest_length,
            stored.freezes_left,
            stored.last_active_date,
        ) == (streak.length, streak.longest, streak.freezes, streak.last)
        # Read now, a streak past the date a freeze could save reads 0.
        missed = streak.missed(until=oracle.today(), lived=oracle.lived)
        alive = streak.last >= oracle.today() or missed <= (1 if streak.freezes else 0)
        read = selectors.streak_for_user(user=User.objects.get(pk=user.pk), now=oracle.clock)
        assert read.current_length == (streak.length if alive else 0)

    user.refresh_from_db()
    assert user.points == (ledger.aggregate(total=Sum("points"))["total"] or 0)


def examples(count: int) -> settings:
    """Few examples: the whole suite stays fast, and each run draws new ones."""
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@examples(25)
@given(
    zone=st.sampled_from(ZONES),
    hour=st.integers(min_value=0, max_value=4),
    start=st.sampled_from(STARTS),
    plan=actions,
)
def test_no_date_paid_twice_no_day_over_the_cap_and_streaks_follow_the_dates(
    zone, hour, start, plan
):
    play(zone=zone, hour=hour, start=start, plan=plan)


# A day of play, then a move to the other end of the world: -11 to +14 skips a date, +14 to
# -11 lives one again; a day start changed on the way narrows or widens the jump.
shuttle_days = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=23 * 60),  # minutes before playing
        st.integers(min_value=1, max_value=6),  # submissions
        st.integers(min_value=0, max_value=4),  # day start asked for
        st.integers(min_value=1, max_value=26 * 60),  # minutes to the next day's play
    ),
    min_size=2,
    max_size=6,
)


# Each example plays some 20 submissions: fewer examples than above.
@examples(10)
@given(start=st.sampled_from(STARTS), days=shuttle_days)
def test_shuttling_between_minus_11_and_plus_14_keeps_the_calendar(start, days):
    plan: list[tuple[str, object]] = []
    zones = ["Pacific/Kiritimati", "Pacific/Pago_Pago"]
    for index, (before, submissions, day_start, after) in enumerate(days):
        if before:
            plan.append(("wait", before))
        plan += [("submit", CATEGORIES[n % len(CATEGORIES)]) for n in range(submissions)]
        plan += [("zone", zones[index % 2]), ("day_start", day_start), ("wait", after)]
    plan.append(("submit", CATEGORIES[0]))
    play(zone="Pacific/Pago_Pago", hour=0, start=start, plan=plan)
