"""The analytics API: real figures from the apps' tables, bounded input, one cache type each."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.tests.factories import UserFactory
from config.caching import TTL_SECONDS, WARMERS, CacheType, cache_invalidate, cache_stats
from config.rollups import DAY, day_start, today_utc
from gamification.models import PageViewDay, Streak, UserAchievement
from gamification.tests.factories import AchievementFactory, PageViewFactory
from products.models import SearchDay
from products.services import product_search_record
from products.tests.factories import ProductFactory
from rankings.services import ranking_submit

pytestmark = pytest.mark.django_db

ANALYTICS = "/api/admin/analytics"


def test_searches_report_popular_queries_and_the_ones_that_found_nothing(staff_client):
    for query, found in [("tent", 3), ("tent", 3), ("unicorn", 0)]:
        product_search_record(user_id=None, query=query, result_count=found)

    body = staff_client.get(f"{ANALYTICS}/searches/?days=7&limit=5").json()

    assert body == {
        "days": 7,
        "popular": [{"query": "tent", "searches": 2}, {"query": "unicorn", "searches": 1}],
        "without_results": [{"query": "unicorn", "searches": 1}],
    }


def test_views_report_days_products_and_paths(staff_client):
    product = ProductFactory(name="Quiet Mouse", category="mice")
    PageViewFactory(path="/p/quiet-mouse", product=product)
    PageViewFactory(path="/p/quiet-mouse", product=product)
    PageViewFactory(path="/")

    body = staff_client.get(f"{ANALYTICS}/views/").json()
    of_product = staff_client.get(f"{ANALYTICS}/views/?product={product.pk}").json()

    today = timezone.now().date().isoformat()
    assert body["per_day"] == [{"day": today, "views": 3}]
    assert body["top_products"] == [
        {"product_id": product.pk, "views": 2, "name": "Quiet Mouse", "category": "mice"}
    ]
    assert body["top_paths"][0] == {"path": "/p/quiet-mouse", "views": 2}
    assert of_product["per_day"] == [{"day": today, "views": 2}]


def test_active_users_count_signed_in_viewers(staff_client):
    viewer = UserFactory()
    PageViewFactory(user=viewer)
    PageViewFactory(user=viewer)
    PageViewFactory(user=None)

    body = staff_client.get(f"{ANALYTICS}/active-users/?days=14").json()

    assert [row["users"] for row in body["per_day"]] == [1]
    assert [row["users"] for row in body["per_week"]] == [1]


def test_streaks_report_live_streaks_records_and_freezes(staff_client):
    today = timezone.now().date()
    live = UserFactory(display_name="Daily")
    Streak.objects.create(
        user=live, current_length=8, longest_length=8, last_active_date=today, freezes_left=1
    )
    Streak.objects.create(
        user=UserFactory(),
        current_length=40,
        longest_length=40,
        last_active_date=today - timedelta(days=9),
    )

    body = staff_client.get(f"{ANALYTICS}/streaks/?limit=5").json()

    assert [(s["display_name"], s["current_length"]) for s in body["current"]] == [("Daily", 8)]
    assert [s["longest_length"] for s in body["longest"]] == [40, 8]
    assert body["freezes_held"] == [{"freezes": 1, "streaks": 1}]


def test_achievements_report_unlock_rate_and_time_to_unlock(staff_client):
    now = timezone.now()
    achievement = AchievementFactory(code="first-steps")
    joined = UserFactory(date_joined=now - timedelta(hours=5))
    UserAchievement.objects.create(
        user=joined, achievement=achievement, unlocked_at=now - timedelta(hours=1)
    )
    UserFactory()
    AchievementFactory(code="never")

    body = staff_client.get(f"{ANALYTICS}/achievements/?days=7").json()

    [row] = [a for a in body["achievements"] if a["code"] == "first-steps"]
    assert body["players"] == 2
    assert row["unlocked_by"] == 1
    assert row["unlock_rate"] == 0.5
    assert row["unlocks_in_period"] == 1
    assert row["average_hours_to_unlock"] == 4.0
    [never] = [a for a in body["achievements"] if a["code"] == "never"]
    assert (never["unlocked_by"], never["average_hours_to_unlock"]) == (0, None)


def test_rankings_and_rank_movement_report_submitted_rankings(staff_client):
    first, second = ProductFactory(category="mice"), ProductFactory(category="mice")
    ranking_submit(user=UserFactory(), category="mice", product_ids=[first.pk, second.pk])
    ranking_submit(user=UserFactory(), category="mice", product_ids=[second.pk, first.pk])

    rankings = staff_client.get(f"{ANALYTICS}/rankings/?category=mice").json()
    movement = staff_client.get(f"{ANALYTICS}/rank-movement/?product={first.pk}").json()

    today = timezone.now().date().isoformat()
    assert rankings["per_day"] == [{"day": today, "category": "mice", "rankings": 2}]
    assert movement["name"] == first.name
    assert movement["per_day"] == [{"day": today, "average_position": 1.5, "rankers": 2}]


@pytest.mark.parametrize(
    "query",
    [
        "searches/?days=366",
        "searches/?days=0",
        "views/?limit=101",
        "views/?limit=ten",
        "views/?product=-1",
        "rankings/?category=" + "x" * 101,
        "rank-movement/",
        "rank-movement/?product=abc",
    ],
)
def test_out_of_bounds_input_is_a_400_with_the_error_shape(staff_client, query):
    response = staff_client.get(f"{ANALYTICS}/{query}")

    assert response.status_code == 400, response.content
    assert set(response.json()) >= {"detail", "code"}


def test_each_analytics_read_is_cached_under_its_own_type(staff_client):
    product_search_record(user_id=None, query="tent", result_count=1)
    staff_client.get(f"{ANALYTICS}/searches/")
    product_search_record(user_id=None, query="tent", result_count=1)

    cached = staff_client.get(f"{ANALYTICS}/searches/").json()
    cache_invalidate(CacheType.ANALYTICS_SEARCHES)
    fresh = staff_client.get(f"{ANALYTICS}/searches/").json()

    assert cached["popular"] == [{"query": "tent", "searches": 1}]
    assert fresh["popular"] == [{"query": "tent", "searches": 2}]
    assert cache_stats()[CacheType.ANALYTICS_SEARCHES]["hits"] >= 1


def test_warmers_fill_every_analytics_type(staff_client):
    product = ProductFactory(category="mice")
    ranking_submit(user=UserFactory(), category="mice", product_ids=[product.pk])
    reads = {
        CacheType.ANALYTICS_SEARCHES: "searches/",
        CacheType.ANALYTICS_VIEWS: "views/",
        CacheType.ANALYTICS_ACTIVE_USERS: "active-users/",
        CacheType.ANALYTICS_STREAKS: "streaks/",
        CacheType.ANALYTICS_ACHIEVEMENTS: "achievements/",
        CacheType.ANALYTICS_RANKINGS: "rankings/",
        CacheType.ANALYTICS_RANK_MOVEMENT: f"rank-movement/?product={product.pk}",
    }
    for cache_type, path in reads.items():
        assert sum(warm() for warm in WARMERS[cache_type]) >= 1, cache_type
        misses = cache_stats()[cache_type]["misses"]
        staff_client.get(f"{ANALYTICS}/{path}")
        assert cache_stats()[cache_type]["misses"] == misses, f"{cache_type} was not warmed"


def test_analytics_types_keep_their_documented_ttls():
    minutes = {t: TTL_SECONDS[t] // 60 for t in CacheType if t.value.startswith("analytics_")}

    assert minutes == {
        CacheType.ANALYTICS_SEARCHES: 10,
        CacheType.ANALYTICS_VIEWS: 10,
        CacheType.ANALYTICS_STREAKS: 10,
        CacheType.ANALYTICS_RANKINGS: 10,
        CacheType.ANALYTICS_ACTIVE_USERS: 30,
        CacheType.ANALYTICS_ACHIEVEMENTS: 30,
        CacheType.ANALYTICS_RANK_MOVEMENT: 30,
    }


def test_rollup_analytics_backfills_a_range_and_the_api_answers_the_same(staff_client):
    today = today_utc()
    for back in range(5):
        PageViewFactory(path="/p", created_at=day_start(today - DAY * back))
        product_search_record(user_id=None, query="tent", result_count=0)
    raw = staff_client.get(f"{ANALYTICS}/views/?days=7").json()
    out = io.StringIO()

    call_command(
        "rollup_analytics",
        f"--from={today - DAY * 4}",
        f"--to={today - DAY}",
        stdout=out,
    )
    cache_invalidate(CacheType.ANALYTICS_VIEWS)

    assert "Rolled up 4 days" in out.getvalue()
    assert sorted(PageViewDay.objects.values_list("day", flat=True)) == [
        today - DAY * back for back in range(4, 0, -1)
    ]
    assert SearchDay.objects.count() == 4
    assert staff_client.get(f"{ANALYTICS}/views/?days=7").json() == raw


@pytest.mark.parametrize(
    "args",
    [["--from=2026-01-10", "--to=2026-01-09"], ["--to=2999-01-01"], ["--from=2001-01-01"]],
)
def test_rollup_analytics_refuses_open_days_days_past_retention_and_reversed_ranges(args):
    with pytest.raises(CommandError):
        call_command("rollup_analytics", *args, stdout=io.StringIO())

    assert not PageViewDay.objects.exists()
