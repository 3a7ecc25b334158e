"""Redis dies, hangs and comes back while Rankly serves requests (a private redis-server)."""

import logging
import signal
import time

import pytest
from django.core.cache import cache
from django.test import override_settings

from config.caching import CacheType, cache_key
from config.redis import redis_status
from config.tests.private_redis import private_redis
from config.tests.ratelimit_windows import wait_out_a_closing_window
from products.services import product_update
from products.tests.factories import ProductFactory

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db]

SOCKET_TIMEOUT = 1.5
COOLDOWN = 2.0


@pytest.fixture(autouse=True)
def _bounded_in_time():
    def expire(signum, frame):
        raise TimeoutError("the outage test ran longer than 60 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _caches(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "config.cache_backend.ResilientRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "outage",
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": SOCKET_TIMEOUT,
                "BREAKER_COOLDOWN": COOLDOWN,
            },
        }
    }


def _names(api_client) -> tuple[list[str], float]:
    started = time.monotonic()
    response = api_client.get("/api/products/")
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.content
    return [p["name"] for p in response.json()["results"]], elapsed


def _stored_keys(server) -> list[bytes]:
    return server.client().keys("outage:*products*")


def test_requests_survive_a_hung_then_dead_redis_and_use_it_again_when_it_is_back(
    api_client, caplog, django_capture_on_commit_callbacks
):
    product = ProductFactory(name="Old name")
    caplog.set_level(logging.WARNING, "rankly.redis")
    with private_redis() as server, override_settings(CACHES=_caches(server.url)):
        assert _names(api_client)[0] == ["Old name"]
        assert redis_status() == "redis"
        assert _stored_keys(server)

        # Hung: connections are accepted and never answered. The first call pays the timeout,
        # opens the breaker, and the edit's invalidation is kept locally.
        server.pause()
        with django_capture_on_commit_callbacks(execute=True):
            product_update(actor=None, product=product, fields={"name": "New name"})
        assert redis_status() == "degraded"
        timings = []
        for _ in range(5):
            names, elapsed = _names(api_client)
            assert names == ["New name"]
            timings.append(elapsed)
        assert max(timings) < SOCKET_TIMEOUT / 2

        # Back, with its stale copies: they were written over during the outage and are dropped.
        server.resume()
        time.sleep(COOLDOWN + 0.2)
        assert _names(api_client)[0] == ["New name"]
        assert redis_status() == "redis"

        # Dead: connection refused, still no error.
        server.kill()
        for _ in range(3):
            assert _names(api_client)[0] == ["New name"]
        assert redis_status() == "degraded"

        # Restarted empty on the same port: Rankly writes there again by itself.
        server.start()
        assert not _stored_keys(server)
        time.sleep(COOLDOWN + 0.2)
        assert _names(api_client)[0] == ["New name"]
        assert redis_status() == "redis"
        raw = cache.make_key(cache_key(CacheType.PRODUCTS, "list::1:20:"))
        assert server.client().exists(raw)

    # Each switch is logged once, not once per request: two outages, two recoveries.
    messages = [r.getMessage() for r in caplog.records]
    assert ["unavailable" in m for m in messages] == [True, False, True, False]
    assert all("is back" in m for m in messages[1::2])


def test_rate_limit_counters_and_sessions_keep_working_while_redis_is_dead(db):
    from django.contrib.sessions.backends.cached_db import SessionStore

    with private_redis() as server, override_settings(CACHES=_caches(server.url)):
        session = SessionStore()
        session["cart"] = "speakers"
        session.create()
        server.kill()
        # django-ratelimit's calls: add a window's counter, then incr it; neither may raise.
        assert cache.add("rl:window", 1, 60)
        assert cache.incr("rl:window") == 2
        with pytest.raises(ValueError):
            cache.incr("rl:never-added")
        assert SessionStore(session.session_key)["cart"] == "speakers"


def test_a_recovery_never_gives_a_client_a_fresh_sign_in_budget(db, client):
    def ask() -> int:
        return client.post(
            "/api/customer/email-login", {"email": "ada@example.com"}, "application/json"
        ).status_code

    with (
        private_redis() as server,
        override_settings(CACHES=_caches(server.url), RATELIMIT_ENABLE=True),
    ):
        wait_out_a_closing_window()
        statuses = [ask() for _ in range(11)]
        assert statuses == [202] * 10 + [429]
        server.pause()
        ask()  # times out on Redis, then counts locally
        server.resume()
        time.sleep(COOLDOWN + 0.5)
        assert ask() == 429
