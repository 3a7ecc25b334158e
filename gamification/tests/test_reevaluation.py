"""Re-evaluation goes a batch of users at a time and decides as the single-user rules do."""

import random
from datetime import date, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import UserFactory
from gamification import services
from gamification.models import (
    Achievement,
    ActivityKind,
    ActivityLog,
    Metric,
    PeriodPoints,
    Streak,
    UserAchievement,
)
from gamification.tests.factories import AchievementFactory
from products.models import UserProductSearch
from products.tests.factories import ProductFactory
from rankings.models import ProductRanking

pytestmark = pytest.mark.django_db

ZONES = [
    "UTC",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
]
CATEGORIES = [f"category-{n}" for n in range(12)]
QUERIES = ["tv", "mouse", "desk", "lamp", "chair", "cable"]


class _Undo(Exception):
    """Raised to roll back the reference run."""


def _varied_game(rng: random.Random, *, users: int) -> None:
    """Users in many zones and day starts, some with a zone change due or still pending, with
    histories reaching every metric's thresholds, and standings left by earlier rules."""
    now = timezone.now()
    AchievementFactory(
        code="secret-searcher",
        metric=Metric.SEARCHES_MADE,
        threshold=3,
        is_hidden=True,
        levels=[
            {"name": "Bronze", "threshold": 3, "points": 4},
            {"name": "Silver", "threshold": 8, "points": 9},
            {"name": "Gold", "threshold": 15, "points": 30},
        ],
    )
    # Within reach of the points that unlocks pay, and of each other's: a level of one may
    # be reached only once a level of the other has paid.
    AchievementFactory(code="well-paid", metric=Metric.POINTS, threshold=60, points=5)
    AchievementFactory(
        code="rich",
        metric=Metric.POINTS,
        threshold=30,
        levels=[
            {"name": "Bronze", "threshold": 30, "points": 25},
            {"name": "Silver", "threshold": 70, "points": 40},
            {"name": "Gold", "threshold": 1000, "points": 5},
        ],
    )
    AchievementFactory(code="free", metric=Metric.STREAK_DAYS, threshold=1, points=0)
    AchievementFactory(
        code="retired", metric=Metric.RANKINGS_SUBMITTED, threshold=1, is_active=False
    )
    products = [ProductFactory(category=category) for category in CATEGORIES]
    by_code = {a.code: a for a in Achievement.objects.all()}
    for n in range(users):
        user = UserFactory(
            timezone=rng.choice(ZONES),
            day_start_hour=rng.randint(0, 4),
            is_active=n % 11 != 5,
            is_staff=n % 13 == 7,
        )
        if n % 4 == 1:
            due = n % 8 == 1
            User.objects.filter(pk=user.pk).update(
                pending_timezone=rng.choice(ZONES),
                pending_day_start_hour=rng.randint(0, 4),
                pending_from=now + (timedelta(days=-2) if due else timedelta(days=2)),
            )
        first = date(2026, 3, 1)
        ActivityLog.objects.bulk_create(
            ActivityLog(
                user=user,
                kind=ActivityKind.RANKING_SUBMITTED,
                points=rng.choice([0, 10]),
                local_date=first + timedelta(days=rng.randint(0, 40)),
                data={"category": rng.choice(CATEGORIES[:4])},
            )
            for _ in range(rng.choice([0, 1, 3, 12, 30, 70]))
        )
        ActivityLog.objects.bulk_create(
            ActivityLog(user=user, kind=ActivityKind.ADJUSTMENT, points=points, local_date=first)
            for points in rng.sample([0, 15, 40, 90], k=rng.randint(0, 2))
        )
        ProductRanking.objects.bulk_create(
            ProductRanking(
                user=user, product=product, category=product.category, position=1, points=10
            )
            for product in products[: rng.choice([0, 1, 3, 5, 10, 12])]
        )
        UserProductSearch.objects.bulk_create(
            UserProductSearch(
                user=user,
                query=rng.choice(QUERIES),
                result_count=1,
                created_at=now - timedelta(minutes=rng.randint(0, 20 * 24 * 60)),
            )
            for _ in range(rng.choice([0, 2, 6, 20, 60]))
        )
        longest = rng.choice([None, 1, 3, 5, 7, 14, 30, 61])
        if longest is not None:
            Streak.objects.create(user=user, current_length=1, longest_length=longest)
        # Standings from earlier rules: a first level, a row unlocked before levels existed,
        # a plain achievement already unlocked, progress counted.
        held = {
            0: [(by_code["ranker"], 1, 10, True)],
            1: [(by_code["scout"], 0, 5, True)],
            2: [(by_code["first-ranking"], 0, 1, True), (by_code["explorer"], 0, 1, False)],
        }.get(n % 5, [])
        UserAchievement.objects.bulk_create(
            UserAchievement(
                user=user,
                achievement=achievement,
                level=level,
                progress=progress,
                unlocked_at=now - timedelta(days=3) if unlocked else None,
            )
            for achievement, level, progress, unlocked in held
        )
    services.points_rebuild()


def _outcome() -> dict[str, object]:
    return {
        "standings": sorted(
            (row.user_id, row.achievement_id, row.level, row.progress, row.unlocked_at is None)
            for row in UserAchievement.objects.all()
        ),
        "ledger": sorted(
            (e.user_id, e.points, e.local_date, e.data["achievement"], e.data["level"])
            for e in ActivityLog.objects.filter(kind=ActivityKind.ACHIEVEMENT_UNLOCKED)
        ),
        "points": dict(User.objects.values_list("pk", "points")),
        "period_points": sorted(
            PeriodPoints.objects.values_list("user_id", "period", "start", "points")
        ),
    }


def _chained_levels(*, before: dict[int, int], ledger: list[tuple]) -> int:
    """Points levels reached only through what another points level paid: beyond the user's
    points before plus everything the other metrics' levels paid."""
    achievements = {a.code: a for a in Achievement.objects.all()}
    threshold = {
        (code, level.number): level.threshold
        for code, a in achievements.items()
        for level in a.tiers
    }
    other: dict[int, int] = {}
    for user_id, points, _, code, _ in ledger:
        if achievements[code].metric != Metric.POINTS:
            other[user_id] = other.get(user_id, 0) + points
    return sum(
        1
        for user_id, _, _, code, level in ledger
        if achievements[code].metric == Metric.POINTS
        and threshold[code, level] > before[user_id] + other.get(user_id, 0)
    )


def test_batched_reevaluation_awards_exactly_what_the_single_user_rules_award(monkeypatch):
    _varied_game(random.Random(17), users=40)
    users = User.objects.filter(is_active=True).order_by("pk")
    before = dict(User.objects.values_list("pk", "points"))

    try:
        with transaction.atomic():
            one_by_one = sum(
                len(services.achievements_evaluate(user=user, metrics=Metric.values, notify=False))
                for user in users
            )
            expected = _outcome()
            raise _Undo
    except _Undo:
        pass
    monkeypatch.setattr(services, "BATCH_USERS", 7)
    result = services.achievements_reevaluate()

    assert result == {"users_checked": users.count(), "achievements_unlocked": one_by_one}
    assert _outcome() == expected
    assert services.points_rebuild() == 0
    # The dataset pays on every metric, second levels, hidden achievements, the points ones.
    paid = {(code, level) for _, _, _, code, level in expected["ledger"]}
    metrics = dict(Achievement.objects.values_list("code", "metric"))
    assert {metrics[code] for code, _ in paid} == set(Metric.values)
    assert {("ranker", 2), ("scout", 2), ("secret-searcher", 2), ("connoisseur", 1)} <= paid
    assert {("well-paid", 1), ("rich", 1), ("rich", 2)} <= paid
    assert _chained_levels(before=before, ledger=expected["ledger"]) >= 2
    assert one_by_one > 50
    # And again: nothing more is due, and no standing is written again.
    written = dict(UserAchievement.objects.values_list("pk", "updated_at"))
    assert services.achievements_reevaluate()["achievements_unlocked"] == 0
    assert _outcome() == expected
    assert dict(UserAchievement.objects.values_list("pk", "updated_at")) == written


def _count_statements(run) -> int:
    from django.db import connection

    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries)


def _unlocks_undo() -> None:
    ActivityLog.objects.filter(kind=ActivityKind.ACHIEVEMENT_UNLOCKED).delete()
    UserAchievement.objects.all().delete()
    services.points_rebuild()


def test_reevaluation_statements_per_batch_do_not_grow_with_its_users(monkeypatch):
    monkeypatch.setattr(services, "BATCH_USERS", 100)
    Achievement.objects.update(is_active=False)
    AchievementFactory(metric=Metric.RANKINGS_SUBMITTED, threshold=1, points=3)
    AchievementFactory(metric=Metric.STREAK_DAYS, threshold=2, points=3)
    AchievementFactory(metric=Metric.CATEGORIES_RANKED, threshold=1, points=3)
    AchievementFactory(
        metric=Metric.SEARCHES_MADE,
        threshold=1,
        levels=[
            {"name": "Bronze", "threshold": 1, "points": 1},
            {"name": "Silver", "threshold": 2, "points": 2},
        ],
    )
    AchievementFactory(metric=Metric.POINTS, threshold=5, points=1)
    rng = random.Random(3)
    product = ProductFactory()

    def add_users(count: int) -> None:
        for _ in range(count):
            user = UserFactory(timezone=rng.choice(ZONES), day_start_hour=rng.randint(0, 4))
            ActivityLog.objects.create(
                user=user,
                kind=ActivityKind.RANKING_SUBMITTED,
                local_date=date(2026, 3, 1),
                data={"category": product.category},
            )
            ProductRanking.objects.create(
                user=user, product=product, category=product.category, position=1, points=10
            )
            UserProductSearch.objects.bulk_create(
                UserProductSearch(user=user, query=query, result_count=1) for query in ("a", "b")
            )
            Streak.objects.create(user=user, current_length=2, longest_length=2)

    add_users(3)
    few = _count_statements(services.achievements_reevaluate)
    _unlocks_undo()
    add_users(17)
    many = _count_statements(services.achievements_reevaluate)

    assert many == few
    assert UserAchievement.objects.filter(level__gte=1).count() == 20 * 5
    totals = ActivityLog.objects.filter(kind=ActivityKind.ACHIEVEMENT_UNLOCKED).aggregate(
        total=Sum("points")
    )
    assert totals["total"] == 20 * (3 + 3 + 3 + 1 + 2 + 1)


def test_batched_reevaluation_announces_what_the_single_user_rules_announce(
    events, django_capture_on_commit_callbacks
):
    Achievement.objects.update(is_active=False)
    # Listed first, reached last: only once the levels below have paid.
    AchievementFactory(
        code="well-off",
        metric=Metric.POINTS,
        order=0,
        levels=[
            {"name": "Bronze", "threshold": 25, "points": 10},
            {"name": "Silver", "threshold": 35, "points": 0},
        ],
    )
    AchievementFactory(code="comfortable", metric=Metric.POINTS, order=1, threshold=5, points=3)
    AchievementFactory(code="first", metric=Metric.RANKINGS_SUBMITTED, order=2, points=20)
    alone, batched = UserFactory.create_batch(2)
    for user in (alone, batched):
        ActivityLog.objects.create(
            user=user,
            kind=ActivityKind.RANKING_SUBMITTED,
            local_date=date(2026, 3, 1),
            data={"category": "mice"},
        )
        ActivityLog.objects.create(
            user=user, kind=ActivityKind.ADJUSTMENT, points=10, local_date=date(2026, 3, 1)
        )
    services.points_rebuild()
    listen_alone = events(services.user_group(alone.pk))
    listen_batched = events(services.user_group(batched.pk))

    with django_capture_on_commit_callbacks(execute=True):
        services.achievements_evaluate(user=alone, metrics=Metric.values)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.achievements_reevaluate(notify=True)

    def heard(listen) -> list[tuple[str, object]]:
        return [
            (m["event"], (m["data"]["code"], m["data"]["level"]))
            if m["event"] == "achievement.unlocked"
            else (m["event"], m["data"])
            for m in listen()
            if m["event"] in {"achievement.unlocked", "points.updated"}
        ]

    assert result["achievements_unlocked"] == 4
    expected = [
        ("achievement.unlocked", ("comfortable", 1)),
        ("achievement.unlocked", ("first", 1)),
        ("achievement.unlocked", ("well-off", 1)),
        ("achievement.unlocked", ("well-off", 2)),
        ("points.updated", {"points": 10 + 3 + 20 + 10}),
    ]
    assert heard(listen_alone) == expected
    assert heard(listen_batched) == expected
