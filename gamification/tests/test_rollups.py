"""Daily roll-ups of the page views: the analytics read them for closed days and the raw rows
for the rest, and answer exactly as the raw rows alone would."""

from datetime import timedelta
from itertools import groupby
from operator import itemgetter

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.tests.factories import UserFactory
from config.rollups import DAY, day_start, month_next, month_of, today_utc, week_of
from gamification import selectors, services, tasks
from gamification.models import (
    ActiveUsersWeek,
    PageView,
    PageViewDay,
    PageViewMonth,
    ProductViewDay,
    ProductViewMonth,
)
from gamification.tests.bulk import analyze, bulk_products, bulk_users, plans_of, sql
from gamification.tests.test_selectors import USERS, insert_page_views
from products.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

# Over two months: at least one whole closed month, whatever today is.
DAYS = 70


@pytest.fixture
def views():
    """Page views over the last DAYS days and today, at hours spread over each day."""
    users = [UserFactory() for _ in range(6)]
    products = [ProductFactory() for _ in range(3)]
    today = today_utc()
    rows = []
    for back in range(DAYS + 1):
        day = today - DAY * back
        for n in range(3 + back % 5):
            product = products[(back + n) % 3] if n % 4 else None
            rows.append(
                PageView(
                    path=f"/products/{product.pk}" if product else f"/page/{n % 2}",
                    product=product,
                    user=users[(back * 7 + n) % 6] if n % 3 else None,
                    # Today's rows sit at midnight, so they are never in the future.
                    created_at=day_start(day) + timedelta(hours=0 if back == 0 else (n * 5) % 24),
                )
            )
    PageView.objects.bulk_create(rows)
    return products


def answers(since, product_id):
    return {
        "per_day": selectors.page_views_per_day(since=since),
        "per_day_of_product": selectors.page_views_per_day(since=since, product_id=product_id),
        "top_paths": selectors.top_paths(since=since, limit=4),
        "products_viewed_most": selectors.products_viewed_most(since=since, limit=2),
        "active_per_day": selectors.active_users_per_day(since=since),
        "active_per_week": selectors.active_users_per_week(since=since),
    }


def roll_up(days):
    for day in days:
        services.page_views_rollup_day(day=day)


def test_answers_from_the_roll_ups_equal_the_raw_queries(views):
    since = timezone.now() - timedelta(days=DAYS - 3, hours=5)
    raw = answers(since, views[0].pk)
    today = today_utc()
    # Every closed day but one, which stays raw between two rolled runs.
    roll_up(today - DAY * back for back in range(1, DAYS + 1) if back != 6)

    rolled = answers(since, views[0].pk)

    assert PageViewDay.objects.count() == DAYS - 1
    assert ActiveUsersWeek.objects.exists() and PageViewMonth.objects.exists()
    assert rolled == raw
    assert len(raw["per_day"]) >= DAYS - 2 and raw["active_per_week"]


def test_rolled_days_are_answered_from_the_roll_up_and_today_from_the_raw_rows(views):
    today = today_utc()
    # Whole days: a day that `since` cuts in two is counted from its raw rows, which the
    # pruning below removes.
    since = day_start(today - DAY * 10)
    roll_up(today - DAY * back for back in range(1, 11))
    before = {row["day"]: row["views"] for row in selectors.page_views_per_day(since=since)}

    # The pruning removes closed days' raw rows; a new view arrives today.
    services.page_views_prune(older_than=timezone.now() - day_start(today) + timedelta(minutes=1))
    assert not PageView.objects.filter(created_at__lt=day_start(today)).exists()
    PageView.objects.create(path="/", created_at=day_start(today))
    after = {row["day"]: row["views"] for row in selectors.page_views_per_day(since=since)}

    assert after == {**before, today: before[today] + 1}


def test_rolling_a_day_again_counts_late_rows_and_changes_nothing_else(views):
    day = today_utc() - DAY * 2
    roll_up([day])
    roll_up([day])
    since = day_start(day)
    first = {row["day"]: row["views"] for row in selectors.page_views_per_day(since=since)}
    PageView.objects.create(path="/late", created_at=day_start(day) + timedelta(hours=23))

    unrolled = {row["day"]: row["views"] for row in selectors.page_views_per_day(since=since)}
    roll_up([day])
    rolled = {row["day"]: row["views"] for row in selectors.page_views_per_day(since=since)}

    assert unrolled[day] == first[day]
    assert rolled[day] == first[day] + 1
    assert selectors.top_paths(since=since, limit=100)[-1] == {"path": "/late", "views": 1}


def test_a_closed_month_is_summed_once_every_day_of_it_is_rolled(views):
    month = month_of(today_utc() - timedelta(days=40))
    days = [month + DAY * n for n in range((month_next(month) - month).days)]
    roll_up(days[:-1])
    assert not PageViewMonth.objects.filter(month=month).exists()

    roll_up(days[-1:])

    assert PageViewMonth.objects.filter(month=month).exists()
    assert sorted(
        ProductViewMonth.objects.filter(month=month).values_list("product_id", "views")
    ) == sorted(
        (product_id, sum(views for _, views in rows))
        for product_id, rows in groupby(
            sorted(ProductViewDay.objects.values_list("product_id", "views")), key=itemgetter(0)
        )
    )


def test_a_closed_week_counts_each_user_once():
    user = UserFactory()
    monday = week_of(today_utc()) - timedelta(days=7)
    for offset in range(7):
        PageView.objects.create(path="/", user=user, created_at=day_start(monday + DAY * offset))

    roll_up([monday + DAY * 6])

    assert ActiveUsersWeek.objects.get(week=monday).users == 1
    assert PageViewDay.objects.get(day=monday + DAY * 6).users == 1


@override_settings(RETENTION_DAYS=5)
def test_an_open_day_or_a_day_past_retention_is_refused():
    with pytest.raises(ValueError):
        services.page_views_rollup_day(day=today_utc())
    with pytest.raises(ValueError):
        services.page_views_rollup_day(day=today_utc() - DAY * 6)
    assert not PageViewDay.objects.exists()


@override_settings(RETENTION_DAYS=5)
def test_the_periodic_task_rolls_every_day_missed_then_yesterday_again(views):
    assert tasks.page_views_rollup.delay().get() == 4
    assert tasks.page_views_rollup.delay().get() == 1

    assert sorted(PageViewDay.objects.values_list("day", flat=True)) == [
        today_utc() - DAY * back for back in range(4, 0, -1)
    ]
    assert ProductViewDay.objects.filter(day=today_utc() - DAY).exists()


@pytest.mark.postgres
def test_roll_up_reads_use_their_keys_and_today_the_raw_indexes():
    first_product = bulk_products(200, categories=10)
    insert_page_views(first=bulk_users(USERS), first_product=first_product, days=70)
    today = today_utc()
    # `since` cuts its first day, read from the raw rows, which a view a minute fills from
    # there on: the raw part of every read is as large at any hour of the day.
    since = day_start(today - DAY * 68) + timedelta(hours=1)
    sql(
        """
        INSERT INTO gamification_pageview (path, product_id, session_key, referrer, created_at)
        SELECT '/products/' || (g %% 500), %(first_product)s + g %% 200, md5(g::text), '',
            %(since)s + g * interval '1 minute'
        FROM generate_series(1, 1379) AS g
        """,
        {"first_product": first_product, "since": since},
    )
    roll_up(today - DAY * back for back in range(69, 0, -1))
    analyze("gamification_pageview", "gamification_productviewday", "gamification_pathviewday")
    analyze("gamification_productviewmonth", "gamification_pathviewmonth")

    of_product = plans_of(
        lambda: selectors.page_views_per_day(since=since, product_id=first_product + 5)
    )
    most_viewed = plans_of(lambda: selectors.products_viewed_most(since=since))
    paths = plans_of(lambda: selectors.top_paths(since=since))

    assert "productviewday_product_day" in of_product, of_product
    assert "pageview_product_created" in of_product, of_product
    assert "gamification_productviewday" in most_viewed, most_viewed
    assert "gamification_productviewmonth" in most_viewed, most_viewed
    assert "pageview_created_product" in most_viewed, most_viewed
    assert "gamification_pathviewday" in paths and "gamification_pathviewmonth" in paths, paths
    assert "pageview_created_path" in paths, paths
