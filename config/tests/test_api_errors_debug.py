"""Under /api/ every error is JSON, DEBUG included; other paths keep Django's debug pages."""

import pytest
from django.test import Client, override_settings
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from config.urls import urlpatterns as project_urlpatterns

pytestmark = pytest.mark.django_db

BIG_BODY = b'{"category": "' + b"x" * (1024 * 1024 + 100 * 1024) + b'", "product_ids": [1]}'


@api_view(["GET"])
@permission_classes([AllowAny])
def _broken_api_view(request):
    raise RuntimeError("a bug")


def _broken_plain_view(request):
    raise RuntimeError("a bug")


urlpatterns = [
    path("api/broken/", _broken_api_view),
    path("broken/", _broken_plain_view),
    *project_urlpatterns,
]


def _assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str)


@pytest.mark.parametrize(
    "url",
    [
        "/api/nowhere/",
        "/api/admin/caches/nonsense/flush/",
        "/api/products/abc/",
        "/api/customer/no-such-thing",
    ],
)
@pytest.mark.parametrize("debug", [True, False])
def test_unknown_api_routes_answer_json_404(staff_client, url, debug):
    with override_settings(DEBUG=debug):
        response = staff_client.get(url)
    _assert_json_error(response, 404, "not_found")


@pytest.mark.parametrize("debug", [True, False])
def test_an_oversized_body_answers_json_413_without_settings(user_client, debug):
    with override_settings(DEBUG=debug):
        response = user_client.generic(
            "POST", "/api/rankings/", BIG_BODY, content_type="application/json"
        )
    _assert_json_error(response, 413, "request_too_large")
    assert b"SECRET_KEY" not in response.content


@pytest.mark.parametrize("debug", [True, False])
def test_a_method_the_endpoint_does_not_take_answers_json_405(user_client, debug):
    with override_settings(DEBUG=debug):
        response = user_client.delete("/api/products/categories/")
    _assert_json_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize("debug", [True, False])
@override_settings(ROOT_URLCONF=__name__)
def test_a_server_error_under_api_answers_json_500(debug):
    client = Client(raise_request_exception=False)
    with override_settings(DEBUG=debug):
        response = client.get("/api/broken/")
    _assert_json_error(response, 500, "server_error")
    assert b"a bug" not in response.content


@override_settings(ROOT_URLCONF=__name__, DEBUG=True)
def test_non_api_paths_keep_the_debug_pages():
    client = Client(raise_request_exception=False)
    not_found = client.get("/nowhere/")
    broken = client.get("/broken/")
    assert not_found.status_code == 404
    assert not_found["Content-Type"].startswith("text/html")
    assert broken.status_code == 500
    assert broken["Content-Type"].startswith("text/html")
