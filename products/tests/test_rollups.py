"""Daily roll-ups of the searches: popular queries and queries that found nothing read them for
closed days and the raw rows for the rest, and answer exactly as the raw rows alone would."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from config.rollups import DAY, day_start, today_utc
from gamification.tests.bulk import analyze, plans_of, sql
from products import selectors, services, tasks
from products.models import SearchDay, SearchMonth, SearchQueryDay, UserProductSearch

pytestmark = pytest.mark.django_db

# Over two months: at least one whole closed month, whatever today is.
DAYS = 70


@pytest.fixture
def searches():
    """Searches over the last DAYS days and today: 7 queries, some finding nothing."""
    today = today_utc()
    UserProductSearch.objects.bulk_create(
        UserProductSearch(
            query=f"query {(back * 3 + n) % 7}",
            result_count=0 if (back + n) % 4 == 0 else n,
            # Today's rows sit at midnight, so they are never in the future.
            created_at=day_start(today - DAY * back) + timedelta(hours=0 if back == 0 else n % 24),
        )
        for back in range(DAYS + 1)
        for n in range(2 + back % 6)
    )


def answers(since):
    return (
        selectors.popular_searches(since=since, limit=5),
        selectors.searches_without_results(since=since, limit=5),
    )


def roll_up(days):
    for day in days:
        services.searches_rollup_day(day=day)


def test_answers_from_the_roll_ups_equal_the_raw_queries(searches):
    since = timezone.now() - timedelta(days=DAYS - 2, hours=7)
    raw = answers(since)

    roll_up(today_utc() - DAY * back for back in range(1, DAYS + 1) if back != 4)

    assert SearchDay.objects.count() == DAYS - 1
    assert SearchMonth.objects.exists()
    assert answers(since) == raw
    assert len(raw[0]) == 5 and raw[1]


def test_rolled_days_are_answered_from_the_roll_up_and_today_from_the_raw_rows(searches):
    # Whole days: a day that `since` cuts in two is counted from its raw rows, deleted below.
    since = day_start(today_utc() - DAY * DAYS)
    roll_up(today_utc() - DAY * back for back in range(1, DAYS + 1))
    popular = dict((r["query"], r["searches"]) for r in selectors.popular_searches(since=since))

    UserProductSearch.objects.filter(created_at__lt=day_start(today_utc())).delete()
    services.product_search_record(user_id=None, query="Query  0", result_count=0)
    after = dict((r["query"], r["searches"]) for r in selectors.popular_searches(since=since))

    assert after == {**popular, "query 0": popular["query 0"] + 1}


def test_rolling_a_day_again_replaces_it_with_what_the_raw_rows_hold(searches):
    day = today_utc() - DAY * 3
    roll_up([day, day])
    UserProductSearch.objects.create(
        query="late", result_count=0, created_at=day_start(day) + timedelta(hours=23)
    )
    roll_up([day])

    assert SearchQueryDay.objects.get(day=day, query="late").without_results == 1
    marker = SearchDay.objects.get(day=day)
    assert (
        marker.searches
        == UserProductSearch.objects.filter(
            created_at__gte=day_start(day), created_at__lt=day_start(day) + DAY
        ).count()
    )


@override_settings(RETENTION_DAYS=5)
def test_the_periodic_task_rolls_every_day_missed_then_yesterday_again(searches):
    assert tasks.searches_rollup.delay().get() == 4
    assert tasks.searches_rollup.delay().get() == 1
    with pytest.raises(ValueError):
        services.searches_rollup_day(day=today_utc())
    assert SearchDay.objects.count() == 4


@pytest.mark.postgres
def test_roll_up_reads_leave_today_to_the_raw_indexes():
    # 3,000 distinct queries over 70 days, one in five finding nothing.
    sql(
        "INSERT INTO products_userproductsearch (user_id, query, result_count, created_at) "
        "SELECT NULL, 'query ' || g %% 3000, g %% 5, "
        "now() - (g %% (70 * 1440)) * interval '1 minute' FROM generate_series(1, 70000) AS g",
        [],
    )
    roll_up(today_utc() - DAY * back for back in range(69, 0, -1))
    analyze("products_userproductsearch", "products_searchqueryday", "products_searchquerymonth")
    since = timezone.now() - timedelta(days=68)

    popular = plans_of(lambda: selectors.popular_searches(since=since))
    without = plans_of(lambda: selectors.searches_without_results(since=since))

    assert "products_searchqueryday" in popular and "search_created_query" in popular, popular
    assert "products_searchquerymonth" in popular, popular
    assert "products_searchqueryday" in without and "search_zero_created" in without, without
