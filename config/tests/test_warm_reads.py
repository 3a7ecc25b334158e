"""A warm cache answers every public read without touching the database (an N+1 guard)."""

import pytest

from products.tests.factories import ProductFactory


@pytest.fixture
def product(db):
    return ProductFactory(category="phones")


@pytest.mark.parametrize(
    "path",
    [
        "/api/gamification/home-stats/",
        "/api/gamification/leaderboard/?window=all",
        "/api/gamification/leaderboard/?window=week",
        "/api/gamification/achievements/",
        "/api/products/?category=phones",
        "/api/products/{id}/",
        "/api/rankings/stats/?category=phones",
        "/api/rankings/stats/{id}/",
    ],
)
def test_a_warm_public_read_makes_no_query(api_client, product, django_assert_num_queries, path):
    path = path.format(id=product.pk)
    assert api_client.get(path).status_code == 200

    with django_assert_num_queries(0):
        response = api_client.get(path)

    assert response.status_code == 200
