"""Bodies no client should send get a 4xx JSON error and change nothing."""

import pytest

from rankings.models import ProductRanking

pytestmark = pytest.mark.django_db

NESTED_ARRAY = b"[" * 100_000 + b"]" * 100_000
NESTED_OBJECT = b'{"a":' * 20_000 + b"1" + b"}" * 20_000


def _post(client, path: str, body: bytes):
    return client.generic("POST", path, body, content_type="application/json")


@pytest.mark.parametrize("body", [NESTED_ARRAY, NESTED_OBJECT])
@pytest.mark.parametrize("path", ["/api/rankings/", "/api/gamification/page-views/"])
def test_json_nested_too_deeply_is_400(user_client, path, body):
    response = _post(user_client, path, body)
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not ProductRanking.objects.exists()


def test_invalid_utf8_is_400(user_client):
    response = _post(user_client, "/api/rankings/", b'{"category": "\xff\xfe", "product_ids": [1]}')
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_a_body_over_the_upload_limit_is_refused(user_client, settings):
    body = b'{"category": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'
    response = _post(user_client, "/api/rankings/", body)
    assert 400 <= response.status_code < 500
    assert "code" in response.json()
