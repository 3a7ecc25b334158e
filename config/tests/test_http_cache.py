import json

import pytest
from rest_framework import permissions, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from config.http_cache import http_cache, json_object, json_render
from products.models import UserProductSearch
from products.services import product_update
from products.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/products/", "/api/products/categories/", "detail"])
def test_public_catalogue_reads_carry_an_etag_and_a_public_cache_control(api_client, path):
    product = ProductFactory()
    if path == "detail":
        path = f"/api/products/{product.pk}/"
    response = api_client.get(path)
    assert response.status_code == 200
    assert response["ETag"].startswith('"')
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert directives == {"public", "max-age=60"}


def test_a_matching_if_none_match_gets_304_without_a_body(api_client):
    ProductFactory()
    etag = api_client.get("/api/products/")["ETag"]
    response = api_client.get("/api/products/", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert "public" in response["Cache-Control"]


def test_a_search_is_revalidated_every_time_so_that_it_is_always_recorded(api_client):
    ProductFactory(name="Quiet Comfort")
    first = api_client.get("/api/products/?search=quiet")
    assert first["Cache-Control"] == "no-cache"
    again = api_client.get("/api/products/?search=quiet", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert UserProductSearch.objects.filter(query="quiet").count() == 2


def test_a_changed_answer_gets_a_new_etag_and_a_full_response(
    api_client, django_capture_on_commit_callbacks
):
    product = ProductFactory(name="Old")
    etag = api_client.get("/api/products/")["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        product_update(actor=None, product=product, fields={"name": "New"})
    response = api_client.get("/api/products/", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response["ETag"] != etag
    assert response.json()["results"][0]["name"] == "New"


def test_errors_are_not_marked_cacheable(api_client):
    response = api_client.get("/api/products/999/")
    assert response.status_code == 404
    assert "ETag" not in response
    assert "public" not in response.get("Cache-Control", "")


class _Greeting(viewsets.ViewSet):
    permission_classes = [permissions.AllowAny]

    @http_cache(per_user=True, max_age=30)
    def list(self, request: Request) -> Response:
        name = request.user.email if request.user.is_authenticated else "stranger"
        return Response({"hello": name})


def test_a_per_user_answer_is_private_and_varies_on_the_credentials(user):
    view = _Greeting.as_view({"get": "list"})
    request = APIRequestFactory().get("/greeting/")
    response = view(request).render()
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert directives == {"private", "max-age=30"}
    assert {"Authorization", "Cookie"} <= {v.strip() for v in response["Vary"].split(",")}
    again = view(APIRequestFactory().get("/greeting/", HTTP_IF_NONE_MATCH=response["ETag"]))
    assert again.render().status_code == 304


def test_json_object_copies_rendered_members_and_renders_the_rest():
    base = json_render({"id": 1, "name": "Ça"})
    combined = json_object(base, stats=json_render({"score": 3}), note=None, tags=["a"])
    assert json.loads(combined.body) == {
        "id": 1,
        "name": "Ça",
        "stats": {"score": 3},
        "note": None,
        "tags": ["a"],
    }
    assert combined.etag != base.etag
    assert json.loads(json_object(json_render({}), x=1).body) == {"x": 1}
    assert json_object(count=0).body == b'{"count":0}'


def test_json_object_extends_objects_only():
    with pytest.raises(ValueError):
        json_object(json_render([1, 2]), x=1)


def test_a_rendered_answer_is_sent_with_the_etag_it_was_cached_with(api_client):
    ProductFactory()
    first = api_client.get("/api/products/categories/")
    again = api_client.get("/api/products/categories/")
    assert first.content == again.content
    assert first["ETag"] == again["ETag"] == json_render(first.json()).etag
