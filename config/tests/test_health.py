import socket

import pytest
from django.db import OperationalError, connections
from django.test import override_settings

from config.tests.private_redis import dead_redis_caches, private_redis


def _closed_port() -> int:
    """A local port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_down_settings() -> dict:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    return {
        "CACHES": {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}},
        "CHANNEL_LAYERS": {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [url]},
            }
        },
    }


def test_healthz_answers_ok_without_touching_the_database(client):
    # No `db` fixture: pytest-django would fail the test on any query.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_every_dependency_answers(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "cache": "ok",
        "channel_layer": "ok",
    }


def test_readyz_is_degraded_but_ready_when_redis_is_down(client, db):
    with override_settings(**_redis_down_settings()):
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["channel_layer"]["status"] == "down"
    assert body["checks"]["cache"]["error"]


def test_readyz_is_degraded_when_ranklys_resilient_cache_falls_back_to_memory(client, db):
    # The resilient backend answers from local memory, so readiness must ask its breaker.
    with override_settings(CACHES=dead_redis_caches()):
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"


def test_readyz_is_unready_when_the_database_is_down(client, db, monkeypatch):
    def unreachable() -> None:
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(connections["default"], "ensure_connection", unreachable)
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"] == {
        "status": "down",
        "error": "OperationalError",
        "ms": body["checks"]["database"]["ms"],
    }
    assert body["checks"]["cache"]["status"] == "ok"


@pytest.mark.redis
def test_readyz_checks_the_real_redis_cache_and_channel_layer(client, db):
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["checks"]["cache"]["backend"] == "ResilientRedisCache"
    assert body["checks"]["channel_layer"]["backend"] == "RedisPubSubChannelLayer"


def test_health_endpoints_need_no_credentials_even_for_an_api_client(api_client, db):
    assert api_client.get("/healthz").status_code == 200
    assert api_client.get("/readyz").status_code == 200


@pytest.mark.slow
def test_readyz_answers_within_seconds_when_redis_accepts_but_never_replies(client, db):
    # A listening socket nobody accepts on: connections succeed, replies never come.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        hung = {
            "CACHES": {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}},
            "CHANNEL_LAYERS": {
                "default": {
                    "BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": [url]},
                }
            },
        }
        with override_settings(**hung):
            body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    assert body["checks"]["cache"]["error"] == "TimeoutError"
    assert body["checks"]["cache"]["ms"] < 5000
    assert body["checks"]["channel_layer"]["status"] == "down"
    assert body["checks"]["channel_layer"]["ms"] < 5000


def test_probes_answer_other_methods_with_a_json_405(client, db):
    for path in ("/healthz", "/readyz"):
        response = client.post(path)
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"
        assert response["Allow"] == "GET, HEAD"


def test_probes_answer_head_requests(client, db):
    assert client.head("/healthz").status_code == 200


def test_readyz_pings_the_pubsub_channel_layer_hosts_too(client, db):
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    layer = {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [url]}}
    with override_settings(CHANNEL_LAYERS={"default": layer}):
        body = client.get("/readyz").json()
    assert body["checks"]["channel_layer"]["status"] == "down"
    assert body["status"] == "degraded"


def _ping_layer(url: str) -> dict:
    layer = {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [url]}}
    return {"CHANNEL_LAYERS": {"default": layer}}


def test_readyz_reuses_its_redis_connection(client, db):
    with private_redis() as server, override_settings(**_ping_layer(server.url)):
        before = server.client().info("stats")["total_connections_received"]
        for _ in range(20):
            assert client.get("/readyz").json()["checks"]["channel_layer"]["status"] == "ok"
        after = server.client().info("stats")["total_connections_received"]
    # The two INFO calls' own connections, and the probe's one.
    assert after - before <= 3


def test_readyz_answers_a_flood_of_probes_from_one_round_of_checks(client, db):
    def pings(server) -> int:
        return server.client().info("commandstats").get("cmdstat_ping", {}).get("calls", 0)

    with private_redis() as server, override_settings(**_ping_layer(server.url)):
        before = pings(server)
        # A fresh round of checks, then probes that come within its age.
        first = client.get("/readyz").json()
        with override_settings(READYZ_MAX_AGE_SECONDS=60):
            bodies = [client.get("/readyz").json() for _ in range(20)]
        checked = pings(server) - before
    assert first["checks"]["channel_layer"]["status"] == "ok"
    assert checked == 1
    assert all(body == first for body in bodies)
