import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.caching import CacheType, cache_get_or_set, cache_stats
from products.models import Product, UserProductSearch
from products.services import product_update
from products.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def _get(api_client, url: str, **params):
    response = api_client.get(url, params)
    assert response.status_code == 200, response.content
    return response


def test_a_products_page_is_served_from_the_cache_without_the_database(api_client):
    ProductFactory.create_batch(3)
    first = _get(api_client, "/api/products/", category="headphones")
    with CaptureQueriesContext(connection) as queries:
        second = _get(api_client, "/api/products/", category="headphones")
    assert len(queries) == 0
    assert second.json() == first.json()
    assert first.json()["count"] == 3


def test_a_search_is_recorded_even_when_its_page_comes_from_the_cache(api_client, user_client):
    ProductFactory(name="Quiet Comfort")
    _get(api_client, "/api/products/", search="quiet")
    before = cache_stats()["products"]["hits"]
    _get(user_client, "/api/products/", search="quiet")
    assert cache_stats()["products"]["hits"] == before + 1
    searches = list(UserProductSearch.objects.order_by("id").values("user_id", "result_count"))
    assert [s["result_count"] for s in searches] == [1, 1]
    assert searches[0]["user_id"] is None and searches[1]["user_id"] is not None


def test_page_links_are_built_for_each_request_not_cached(api_client):
    ProductFactory.create_batch(3)
    _get(api_client, "/api/products/", page_size=2)
    body = api_client.get("/api/products/?page_size=2&page=2", HTTP_HOST="localhost").json()
    assert body["previous"] == "http://localhost/api/products/?page_size=2"
    assert body["next"] is None
    first = api_client.get("/api/products/?page_size=2", HTTP_HOST="localhost").json()
    assert first["next"] == "http://localhost/api/products/?page=2&page_size=2"


def test_pages_differ_by_search_category_page_and_size(api_client):
    ProductFactory(name="Alpha", category="headphones")
    ProductFactory(name="Beta", category="speakers")

    def names(**params) -> list[str]:
        return [r["name"] for r in _get(api_client, "/api/products/", **params).json()["results"]]

    assert names() == ["Alpha", "Beta"]
    assert names(category="speakers") == ["Beta"]
    assert names(search="alp") == ["Alpha"]
    assert names(page_size=1) == ["Alpha"]
    assert names(page_size=1, page=2) == ["Beta"]


def test_a_page_past_the_end_is_a_404_and_bad_page_a_400(api_client):
    ProductFactory()
    assert api_client.get("/api/products/?page=2").status_code == 404
    response = api_client.get("/api/products/?page=abc")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_a_product_edit_through_the_service_shows_at_once(
    api_client, django_capture_on_commit_callbacks
):
    product = ProductFactory(name="Old name")
    assert _get(api_client, f"/api/products/{product.pk}/").json()["name"] == "Old name"
    assert _get(api_client, "/api/products/").json()["results"][0]["name"] == "Old name"
    Product.objects.filter(pk=product.pk).update(name="New name")
    # Without an invalidation the cached answers stand (up to their TTL)...
    assert _get(api_client, f"/api/products/{product.pk}/").json()["name"] == "Old name"
    with django_capture_on_commit_callbacks(execute=True):
        product_update(actor=None, product=product, fields={"name": "New name"})
    assert _get(api_client, f"/api/products/{product.pk}/").json()["name"] == "New name"
    assert _get(api_client, "/api/products/").json()["results"][0]["name"] == "New name"


def test_a_missing_product_is_a_404_and_takes_no_cache_space(api_client):
    before = cache_stats()["product_metadata"]["misses"]
    assert api_client.get("/api/products/999999/").status_code == 404
    assert api_client.get("/api/products/999999/").status_code == 404
    assert cache_stats()["product_metadata"]["misses"] == before + 2


def test_the_product_detail_is_cached_as_product_metadata(api_client):
    product = ProductFactory()
    before = cache_stats()["product_metadata"]
    _get(api_client, f"/api/products/{product.pk}/")
    _get(api_client, f"/api/products/{product.pk}/")
    after = cache_stats()["product_metadata"]
    assert (after["misses"] - before["misses"], after["hits"] - before["hits"]) == (1, 1)


def test_warm_cache_fills_product_pages_and_top_product_details(api_client):
    ranked = ProductFactory(category="speakers")
    ranked.metadata.ranking_count = 5
    ranked.metadata.save()
    ProductFactory(category="headphones")
    call_command("warm_cache", "--type", "products", "--type", "product_metadata", stdout=_Sink())
    before = cache_stats()
    _get(api_client, "/api/products/", category="speakers")
    _get(api_client, "/api/products/", category="headphones")
    _get(api_client, "/api/products/")
    _get(api_client, "/api/products/categories/")
    _get(api_client, f"/api/products/{ranked.pk}/")
    after = cache_stats()
    assert after["products"]["misses"] == before["products"]["misses"]
    assert after["product_metadata"]["misses"] == before["product_metadata"]["misses"]
    assert after["products"]["hits"] - before["products"]["hits"] == 4


def test_warm_cache_reports_what_it_warmed_per_type(db):
    ProductFactory(category="speakers")
    out = _Sink()
    call_command("warm_cache", stdout=out)
    text = out.getvalue()
    assert "products: products_warm warmed 3 keys" in text
    assert "Warmed" in text
    assert cache_get_or_set(CacheType.PRODUCTS, "categories", lambda: "cold") != "cold"


class _Sink:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self.parts)
