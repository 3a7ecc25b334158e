from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from products import selectors
from products.models import UserProductSearch
from products.services import product_search_record
from products.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_normalize_query_lowers_and_collapses_spaces():
    assert selectors.normalize_query("  Sony \t  WH-1000XM5 \n") == "sony wh-1000xm5"


def test_product_list_finds_name_brand_or_category_case_insensitively():
    by_name = ProductFactory(name="Aurora Headphones", brand="Acme", category="audio")
    by_brand = ProductFactory(name="Studio", brand="AuroraWorks", category="audio")
    by_category = ProductFactory(name="Kettle", brand="Acme", category="aurora-kitchen")
    ProductFactory(name="Toaster", brand="Acme", category="kitchen")

    found = selectors.product_list(search="AURORA")

    assert set(found) == {by_name, by_brand, by_category}


def test_product_list_search_ignores_extra_spaces():
    product = ProductFactory(name="Sony Aura Headphones")

    assert list(selectors.product_list(search="  sony   aura ")) == [product]


def test_product_list_filters_by_category_and_hides_inactive_products():
    shown = ProductFactory(category="tents", name="B")
    also_shown = ProductFactory(category="tents", name="A")
    ProductFactory(category="tents", is_active=False)
    ProductFactory(category="bikes")

    assert list(selectors.product_list(category="tents")) == [also_shown, shown]


def test_product_list_treats_like_wildcards_as_text():
    ProductFactory(name="Plain")
    percent = ProductFactory(name="100% Cotton")

    assert list(selectors.product_list(search="%")) == [percent]
    assert list(selectors.product_list(search="_")) == []


def test_product_get_returns_active_products_only():
    active = ProductFactory()
    inactive = ProductFactory(is_active=False)

    assert selectors.product_get(product_id=active.pk) == active
    assert selectors.product_get(product_id=inactive.pk) is None
    assert selectors.product_get(product_id=active.pk + 1000) is None


def test_product_categories_count_active_products_by_name():
    ProductFactory.create_batch(2, category="tents")
    ProductFactory(category="bikes")
    ProductFactory(category="bikes", is_active=False)
    ProductFactory(category="retired", is_active=False)

    assert selectors.product_categories() == [
        {"category": "bikes", "product_count": 1},
        {"category": "tents", "product_count": 2},
    ]


def test_products_top_ranked_and_most_viewed_order_active_products():
    low, high, hidden = ProductFactory(), ProductFactory(), ProductFactory(is_active=False)
    for product, rankings, views in [(low, 1, 30), (high, 5, 10), (hidden, 9, 90)]:
        product.metadata.ranking_count, product.metadata.view_count = rankings, views
        product.metadata.save()
    ProductFactory()  # never ranked or viewed

    assert [m.product for m in selectors.products_top_ranked()] == [high, low]
    assert [m.product for m in selectors.products_most_viewed()] == [low, high]
    assert [m.product for m in selectors.products_top_ranked(limit=1)] == [high]


def test_searches_are_recorded_normalised_and_read_back():
    user = UserFactory()
    product_search_record(user_id=user.pk, query="  Sony  HEADphones ", result_count=3)
    product_search_record(user_id=None, query="sony headphones", result_count=3)
    product_search_record(user_id=user.pk, query="tent", result_count=0)

    assert [s.query for s in selectors.searches_for_user(user_id=user.pk)] == [
        "tent",
        "sony headphones",
    ]
    assert UserProductSearch.objects.filter(query="sony headphones").count() == 2


def test_a_very_long_search_is_cut_to_the_column_size():
    product_search_record(user_id=None, query="x" * 500, result_count=0)

    assert len(UserProductSearch.objects.get().query) == 200


def test_popular_searches_counts_queries_since_a_time():
    now = timezone.now()
    for query, count in [("tent", 3), ("bike", 2), ("kettle", 1)]:
        for _ in range(count):
            product_search_record(user_id=None, query=query, result_count=1)
    UserProductSearch.objects.create(query="old", created_at=now - timedelta(days=30))

    assert selectors.popular_searches(since=now - timedelta(days=1), limit=2) == [
        {"query": "tent", "searches": 3},
        {"query": "bike", "searches": 2},
    ]


def test_searches_without_results_count_only_queries_that_found_nothing_in_the_window():
    now = timezone.now()
    for query, found in [("tent", 0), ("tent", 0), ("unicorn", 0), ("bike", 4), ("bike", 4)]:
        product_search_record(user_id=None, query=query, result_count=found)
    UserProductSearch.objects.create(
        query="old", result_count=0, created_at=now - timedelta(days=30)
    )

    assert selectors.searches_without_results(since=now - timedelta(days=1), limit=10) == [
        {"query": "tent", "searches": 2},
        {"query": "unicorn", "searches": 1},
    ]
    assert selectors.searches_without_results(since=now - timedelta(days=1), limit=1) == [
        {"query": "tent", "searches": 2},
    ]
