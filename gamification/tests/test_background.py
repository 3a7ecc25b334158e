"""Work the game leaves to background tasks: buffered page-view counts and retention."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.tests.private_redis import dead_redis_caches
from gamification import services
from gamification.models import PageView
from gamification.tests.factories import PageViewFactory
from products.models import ProductMetadata
from products.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/gamification/page-views/"


@pytest.fixture
def product():
    product = ProductFactory()
    ProductMetadata.objects.get_or_create(product=product)
    return product


@pytest.fixture
def empty_buffer():
    """Nothing left in the page-view buffer by an earlier test; flushes only when called."""
    services.PRODUCT_VIEWS.drain()
    services.PRODUCT_VIEWS.ack()
    settings.PAGE_VIEW_FLUSH_SECONDS = 10**9


def view_count(product) -> int:
    return ProductMetadata.objects.get(product=product).view_count


def view(client, product) -> None:
    body = {"path": f"/p/{product.pk}", "product_id": product.pk}
    assert client.post(URL, body, format="json").status_code == 201


def test_page_views_wait_in_the_buffer_until_the_flush_moves_them(
    api_client, product, empty_buffer
):
    other = ProductFactory()
    ProductMetadata.objects.get_or_create(product=other)
    for _ in range(3):
        view(api_client, product)
    view(api_client, other)
    assert view_count(product) == 0
    assert services.page_views_flush() == 2
    assert (view_count(product), view_count(other)) == (3, 1)
    assert services.page_views_flush() == 0
    assert view_count(product) == 3
    assert PageView.objects.filter(product=product).count() == 3


def test_a_flush_that_died_before_its_commit_is_redone_by_the_next(
    api_client, product, empty_buffer
):
    view(api_client, product)
    assert services.PRODUCT_VIEWS.drain() == {product.pk: 1}
    # The flush died here: nothing acknowledged. A view arrives meanwhile.
    view(api_client, product)
    services.page_views_flush()
    assert view_count(product) == 1
    services.page_views_flush()
    assert view_count(product) == 2


def test_without_a_worker_the_request_flushes_when_a_flush_is_due(api_client, product, settings):
    settings.PAGE_VIEW_FLUSH_SECONDS = 0
    services.PRODUCT_VIEWS.drain()
    services.PRODUCT_VIEWS.ack()
    view(api_client, product)
    view(api_client, product)
    assert view_count(product) == 2


@pytest.mark.redis
def test_with_redis_down_a_view_is_counted_straight_into_the_row(
    api_client, product, empty_buffer, settings
):
    settings.CACHES = dead_redis_caches()
    view(api_client, product)
    assert view_count(product) == 1


def test_page_views_past_the_retention_period_are_deleted(product, settings):
    settings.RETENTION_DAYS = 30
    now = timezone.now()
    old = PageViewFactory(product=product)
    kept = PageViewFactory(product=product)
    PageView.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=31))
    PageView.objects.filter(pk=kept.pk).update(created_at=now - timedelta(days=29))
    from gamification.tasks import page_views_prune

    assert page_views_prune.apply().get() == 1
    assert list(PageView.objects.values_list("pk", flat=True)) == [kept.pk]


def test_retention_defaults_to_90_days():
    from config.settings import base

    assert base.RETENTION_DAYS == 90
