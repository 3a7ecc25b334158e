from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, F, Max, Min, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from gamification.boards import period_of
from gamification.models import (
    ActivityKind,
    ActivityLog,
    PageView,
    PeriodPoints,
    Streak,
    UserAchievement,
)
from gamification.selectors import ledger_period_totals
from products.models import Product, ProductMetadata, UserProductSearch
from products.selectors import product_list
from rankings.models import ProductRanking

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_writes_every_kind_of_row():
    output = seed("--users", "120", "--products", "60")

    assert User.objects.filter(is_staff=False).count() == 120
    assert User.objects.filter(
        email="admin@rankly.local", is_staff=True, is_superuser=True
    ).exists()
    assert Product.objects.count() == 60
    assert ProductMetadata.objects.count() == 60
    assert Product.objects.values("category").distinct().count() == 20
    assert ProductRanking.objects.exists()
    assert Streak.objects.exists()
    assert UserAchievement.objects.filter(unlocked_at__isnull=False).exists()
    assert PageView.objects.exists()
    assert UserProductSearch.objects.exists()
    assert "users: 120/120" in output


def test_seeded_points_equal_each_users_ledger_sum():
    seed("--users", "150", "--products", "60")
    ledger_sum = (
        ActivityLog.objects.filter(user=OuterRef("pk"))
        .values("user")
        .annotate(total=Sum("points"))
        .values("total")
    )
    users = User.objects.annotate(ledger=Coalesce(Subquery(ledger_sum), 0))

    assert users.filter(points__gt=0).count() > 50
    assert not users.exclude(points=F("ledger")).exists()


def test_seeded_period_points_equal_each_users_ledger_sums_in_the_period():
    seed("--users", "150", "--products", "60")
    users = list(User.objects.values_list("pk", flat=True))
    for window in ("day", "week", "month"):
        period = period_of(window=window, at=timezone.now())
        stored = {
            pk: (points, at)
            for pk, points, at in PeriodPoints.objects.filter(
                period=window, start=period.start
            ).values_list("user_id", "points", "reached_at")
        }
        assert stored == ledger_period_totals(period=period, user_ids=users), window
    assert PeriodPoints.objects.filter(period="month", points__gt=0).exists()


def test_seeded_ranking_and_view_counters_match_their_rows():
    seed("--users", "150", "--products", "60")
    metadata = ProductMetadata.objects.annotate(
        rankings=Count("product__rankings", distinct=True),
        views=Count("product__page_views", distinct=True),
    )

    assert metadata.filter(ranking_count__gt=0).exists()
    assert not metadata.exclude(ranking_count=F("rankings")).exists()
    assert not metadata.exclude(view_count=F("views")).exists()


def test_seeded_rankings_follow_the_ranking_rules():
    seed("--users", "150", "--products", "60")
    rankings = ProductRanking.objects.select_related("product")
    per_list = rankings.values("user", "category").annotate(
        size=Count("id"),
        positions=Count("position", distinct=True),
        first=Min("position"),
        last=Max("position"),
    )

    assert not rankings.exclude(points=11 - F("position")).exists()
    assert not rankings.exclude(category=F("product__category")).exists()
    assert not rankings.filter(product__is_active=False).exists()
    # Each list holds positions 1..n once each, n at most 10.
    assert all(
        row["first"] == 1 and row["last"] == row["size"] == row["positions"] <= 10
        for row in per_list
    )


def test_each_unlocked_achievement_has_its_ledger_row():
    seed("--users", "150", "--products", "60")
    unlocked = UserAchievement.objects.filter(unlocked_at__isnull=False)
    rows = ActivityLog.objects.filter(kind=ActivityKind.ACHIEVEMENT_UNLOCKED)

    assert unlocked.count() == rows.count() > 0
    assert {(u.user_id, u.achievement.code) for u in unlocked.select_related("achievement")} == {
        (row.user_id, row.data["achievement"]) for row in rows
    }


def test_searches_record_how_many_active_products_they_find():
    seed("--users", "60", "--products", "40")
    search = UserProductSearch.objects.exclude(result_count=0).first()

    assert search.result_count == product_list(search=search.query).count()


def test_if_empty_seeds_an_empty_database_once():
    seed("--users", "30", "--products", "20", "--if-empty")
    counts = (User.objects.count(), Product.objects.count(), ActivityLog.objects.count())

    output = seed("--users", "30", "--products", "20", "--if-empty")

    assert counts[1] == 20
    assert (User.objects.count(), Product.objects.count(), ActivityLog.objects.count()) == counts
    assert "nothing seeded" in output


def test_seeding_twice_without_if_empty_adds_more():
    seed("--users", "20", "--products", "20")
    seed("--users", "20", "--products", "20")

    assert User.objects.filter(is_staff=False).count() == 40
    assert Product.objects.count() == 40
    assert User.objects.filter(email="admin@rankly.local").count() == 1


@pytest.mark.parametrize("debug", [True, False])
def test_no_employee_gets_a_password_nor_is_one_shown(settings, debug):
    settings.DEBUG = debug

    output = seed("--users", "5", "--products", "20")

    assert "with password" not in output
    assert not any(u.has_usable_password() for u in User.objects.filter(is_staff=True))
    assert "createsuperuser" in output


def test_negative_sizes_are_refused():
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        seed("--users", "-1")


def test_customers_without_a_catalogue_submit_no_rankings():
    seed("--users", "20", "--products", "0")

    assert User.objects.filter(is_staff=False).count() == 20
    assert not ProductRanking.objects.exists()
    assert not ActivityLog.objects.filter(kind=ActivityKind.RANKING_SUBMITTED).exists()
    assert not Streak.objects.exists()
