import pytest

from products.models import UserProductSearch
from products.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/products/"


def assert_error(response, status: int) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str) and body["code"]


def test_anyone_lists_active_products_by_name(api_client):
    ProductFactory(name="Zelda", category="games")
    ProductFactory(name="Alpha", category="tents", brand="MSR")
    ProductFactory(name="Hidden", is_active=False)

    response = api_client.get(LIST_URL)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [p["name"] for p in body["results"]] == ["Alpha", "Zelda"]
    assert set(body["results"][0]) == {
        "id",
        "name",
        "slug",
        "brand",
        "category",
        "image_url",
        "ranking_count",
    }


def test_the_list_is_paginated(api_client):
    ProductFactory.create_batch(25)

    first = api_client.get(LIST_URL).json()
    second = api_client.get(LIST_URL, {"page": 2}).json()
    small = api_client.get(LIST_URL, {"page_size": 5}).json()

    assert (first["count"], len(first["results"]), first["previous"]) == (25, 20, None)
    assert first["next"].endswith("page=2")
    assert (len(second["results"]), second["next"]) == (5, None)
    assert len(small["results"]) == 5
    ids = [p["id"] for p in first["results"] + second["results"]]
    assert len(set(ids)) == 25


def test_page_size_is_capped(api_client):
    ProductFactory.create_batch(105)

    assert len(api_client.get(LIST_URL, {"page_size": 1000}).json()["results"]) == 100


def test_a_page_past_the_end_is_a_404(api_client):
    ProductFactory.create_batch(3)

    assert_error(api_client.get(LIST_URL, {"page": "3"}), 404)


@pytest.mark.parametrize("page", ["0", "-1", "abc", "99999999999999999999"])
def test_a_page_number_that_cannot_exist_is_a_400(api_client, page):
    ProductFactory.create_batch(3)

    assert_error(api_client.get(LIST_URL, {"page": page}), 400)


def test_search_and_category_filter(api_client):
    ProductFactory(name="Aura Headphones", category="headphones")
    ProductFactory(name="Aura Speaker", category="speakers")
    ProductFactory(name="Quiet Headphones", category="headphones")

    body = api_client.get(LIST_URL, {"search": "aura", "category": "headphones"}).json()

    assert [p["name"] for p in body["results"]] == ["Aura Headphones"]


def test_an_anonymous_search_is_recorded_normalised_with_its_result_count(api_client):
    ProductFactory.create_batch(3, name="Aura Headphones")
    ProductFactory(name="Tent")

    api_client.get(LIST_URL, {"search": "  AURA   Headphones "})

    search = UserProductSearch.objects.get()
    assert (search.query, search.result_count, search.user_id) == ("aura headphones", 3, None)


def test_a_signed_in_search_is_recorded_for_the_user(user, user_client):
    user_client.get(LIST_URL, {"search": "nothing matches"})

    search = UserProductSearch.objects.get()
    assert (search.user_id, search.result_count) == (user.pk, 0)


def test_browsing_without_a_search_records_nothing(api_client):
    ProductFactory()

    api_client.get(LIST_URL)
    api_client.get(LIST_URL, {"search": "   "})
    api_client.get(LIST_URL, {"category": "headphones"})

    assert not UserProductSearch.objects.exists()


@pytest.mark.parametrize(
    "params",
    [
        {"search": "x" * 201},
        {"category": "c" * 101},
        {"search": "nul\x00byte"},
    ],
)
def test_bad_list_parameters_are_refused_and_record_nothing(api_client, params):
    response = api_client.get(LIST_URL, params)

    assert_error(response, 400)
    assert not UserProductSearch.objects.exists()


def test_detail_shows_the_product_with_its_metadata(api_client):
    product = ProductFactory(name="Aura", metadata__description="Quiet and light.")

    response = api_client.get(f"{LIST_URL}{product.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"]) == (product.pk, "Aura")
    assert body["metadata"]["description"] == "Quiet and light."
    assert body["metadata"]["ranking_count"] == 0


def test_detail_of_a_product_without_metadata_still_answers(api_client):
    product = ProductFactory(metadata=None)

    response = api_client.get(f"{LIST_URL}{product.pk}/")

    assert response.status_code == 200
    assert response.json()["metadata"] is None


@pytest.mark.parametrize("suffix", ["999999/", "abc/", "1.5/", "-1/", "99999999999999999999/"])
def test_detail_of_an_unknown_id_is_a_json_404(api_client, suffix):
    ProductFactory()

    assert_error(api_client.get(f"{LIST_URL}{suffix}"), 404)


def test_detail_of_an_inactive_product_is_a_404(api_client):
    product = ProductFactory(is_active=False)

    assert_error(api_client.get(f"{LIST_URL}{product.pk}/"), 404)


def test_huge_id_that_matches_the_route_is_a_404(api_client):
    assert_error(api_client.get(f"{LIST_URL}{'9' * 18}/"), 404)


def test_categories_with_counts(api_client):
    ProductFactory.create_batch(2, category="tents")
    ProductFactory(category="bikes")
    ProductFactory(category="gone", is_active=False)

    response = api_client.get(f"{LIST_URL}categories/")

    assert response.status_code == 200
    assert response.json() == [
        {"category": "bikes", "product_count": 1},
        {"category": "tents", "product_count": 2},
    ]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_catalogue_is_read_only_over_this_api(user_client, method):
    product = ProductFactory()

    response = getattr(user_client, method)(f"{LIST_URL}{product.pk}/", {}, format="json")
    listing = getattr(user_client, method)(LIST_URL, {"name": "x"}, format="json")

    assert response.status_code == 405
    assert listing.status_code == 405
    product.refresh_from_db()
    assert product.is_active
