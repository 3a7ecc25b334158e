import logging
import re
import socket

import pytest
from django.core import mail
from django.test import RequestFactory
from django_ratelimit.core import _get_window
from rest_framework.test import APIClient

from accounts.models import LoginCode
from config.client_ip import client_network
from config.ratelimit import RateLimitMiddleware, rate_group

pytestmark = [pytest.mark.django_db, pytest.mark.urls("config.tests.ratelimit_urls")]

# The start of a 15-minute window for every client, so short advances stay inside it.
CLOCK_START = 1_800_000_000.0


class FakeClock:
    """Stands in for the `time` module where the limiter reads the time."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock(CLOCK_START)
    monkeypatch.setattr("django_ratelimit.core.time", fake)
    monkeypatch.setattr("config.ratelimit.time", fake)
    return fake


@pytest.fixture(autouse=True)
def limits_on(settings, clock) -> None:
    settings.RATELIMIT_ENABLE = True


def unreachable_redis_caches() -> dict:
    """A django-redis cache on a port nothing listens on, with short timeouts."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }


@pytest.fixture
def dead_redis(settings) -> None:
    settings.CACHES = unreachable_redis_caches()


def sign_in_request(client: APIClient, email: str = "someone@example.com", **extra):
    return client.post("/api/customer/email-login", {"email": email}, format="json", **extra)


def probe(client: APIClient, path: str, method: str = "get", **extra):
    return getattr(client, method)(path, **extra)


@pytest.mark.parametrize(
    ("path", "method", "group"),
    [
        ("/api/customer/email-login", "POST", "auth"),
        ("/api/customer/email-login/verify", "POST", "auth"),
        ("/admin/login/", "POST", "auth"),
        ("/admin/login/", "GET", None),
        ("/api/customer/me", "PATCH", "api"),
        ("/api/customer/sessions", "GET", "api"),
        ("/api/customer/logout", "POST", "api"),
        ("/api/products/", "GET", "api"),
        ("/api/products/a-route-added-later/", "GET", "api"),
        ("/api/gamification/leaderboard/", "GET", "api"),
        ("/api/rankings/stats/", "GET", "api"),
        ("/api/rankings/", "POST", "rankings"),
        ("/api/rankings/42/", "DELETE", "rankings"),
        ("/api/admin/products/", "GET", "admin"),
        ("/api/admin", "GET", "admin"),
        ("/api/tools/warm-cache/", "POST", "admin"),
        ("/api/schema/", "GET", "api"),
        ("/api/administrator/", "GET", "api"),
        ("/healthz", "GET", None),
        ("/admin/", "GET", None),
        ("/static/admin/css/base.css", "GET", None),
    ],
)
def test_every_path_falls_in_the_group_of_its_prefix(path, method, group):
    assert rate_group(path=path, method=method) == group


GROUP_CASES = [
    # group, limit, period, path, method, who
    ("auth", 10, 15 * 60, "/api/customer/email-login", "post", "anonymous"),
    ("api", 120, 60, "/api/gamification/probe", "get", "anonymous"),
    ("rankings", 30, 60, "/api/rankings/probe", "post", "customer"),
    ("admin", 20, 60, "/api/admin/probe", "get", "employee"),
]


@pytest.mark.parametrize(("group", "limit", "period", "path", "method", "who"), GROUP_CASES)
def test_each_group_allows_its_limit_then_answers_429_until_the_window_resets(
    group, limit, period, path, method, who, clock, api_client, user_client, staff_client
):
    client = {"anonymous": api_client, "customer": user_client, "employee": staff_client}[who]
    data = {"email": "someone@example.com"} if group == "auth" else None

    def send():
        return getattr(client, method)(path, data, format="json")

    for sent in range(1, limit + 1):
        response = send()
        assert response.status_code in (200, 201, 202), (sent, response.content)
        assert response["X-RateLimit-Limit"] == str(limit)
        assert response["X-RateLimit-Remaining"] == str(limit - sent)

    refused = send()
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["detail"]
    assert refused["X-RateLimit-Remaining"] == "0"
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= period

    clock.advance(retry_after - 1)
    assert send().status_code == 429
    clock.advance(1)
    again = send()
    assert again.status_code in (200, 201, 202)
    assert again["X-RateLimit-Remaining"] == str(limit - 1)


def test_groups_keep_separate_budgets(user_client):
    for _ in range(30):
        probe(user_client, "/api/rankings/probe", "post")
    assert probe(user_client, "/api/rankings/probe", "post").status_code == 429
    reads = probe(user_client, "/api/rankings/probe")
    assert reads.status_code == 200
    assert reads["X-RateLimit-Limit"] == "120"


def test_a_real_route_carries_the_limit_headers_and_an_unlimited_one_does_not(api_client):
    products = api_client.get("/api/products/")
    assert products.status_code == 200
    assert products["X-RateLimit-Limit"] == "120"
    assert products["X-RateLimit-Remaining"] == "119"
    assert "X-RateLimit-Limit" not in api_client.get("/admin/login/")


def test_clients_at_different_addresses_have_their_own_budget(api_client):
    for _ in range(10):
        sign_in_request(api_client, REMOTE_ADDR="198.51.100.1")
    assert sign_in_request(api_client, REMOTE_ADDR="198.51.100.1").status_code == 429
    assert sign_in_request(api_client, REMOTE_ADDR="198.51.100.2").status_code == 202


def test_without_trusted_proxies_a_forged_forwarded_for_gets_no_new_budget(api_client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for n in range(10):
        sign_in_request(api_client, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    refused = sign_in_request(api_client, HTTP_X_FORWARDED_FOR="203.0.113.250")
    assert refused.status_code == 429


def test_behind_one_proxy_only_the_address_it_appended_counts(api_client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.5"}
    for n in range(10):
        # The client forges the left part; the proxy appends the address it really saw.
        sign_in_request(api_client, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.7", **proxy)
    forged = sign_in_request(
        api_client, HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8, 198.51.100.7", **proxy
    )
    assert forged.status_code == 429
    other_client = sign_in_request(api_client, HTTP_X_FORWARDED_FOR="198.51.100.8", **proxy)
    assert other_client.status_code == 202


def test_ipv6_clients_are_limited_per_64(api_client):
    for n in range(10):
        sign_in_request(api_client, REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}")
    same_64 = sign_in_request(api_client, REMOTE_ADDR="2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert same_64.status_code == 429
    next_64 = sign_in_request(api_client, REMOTE_ADDR="2001:db8:1:3::1")
    assert next_64.status_code == 202


@pytest.mark.parametrize(
    ("remote_addr", "counted_as"),
    [
        ("198.51.100.1", "198.51.100.1"),
        # Not as ipaddress writes an address: refused by it, so not taken as written either.
        ("198.51.100.01", "unknown"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("", "unknown"),
        ("not-an-address", "unknown"),
    ],
)
def test_client_network_is_the_ipv4_address_or_the_ipv6_64(remote_addr, counted_as):
    request = RequestFactory().get("/", REMOTE_ADDR=remote_addr)
    assert client_network(request) == counted_as


def test_sign_in_codes_cannot_be_guessed_past_five_tries_nor_past_the_ip_limit(api_client):
    email = "target@example.com"

    def verify(code: str):
        return api_client.post(
            "/api/customer/email-login/verify", {"email": email, "code": code}, format="json"
        )

    def latest_code() -> str:
        return re.search(r"\d{6}", mail.outbox[-1].subject).group()

    assert sign_in_request(api_client, email).status_code == 202  # 1
    right = latest_code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):  # 2..6
        assert verify(wrong).status_code == 400
    assert verify(right).status_code == 400  # 7: the code died after five wrong tries

    assert sign_in_request(api_client, email).status_code == 202  # 8
    right = latest_code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(2):  # 9, 10
        assert verify(wrong).status_code == 400
    refused = verify(right)  # 11: the IP's budget is spent, so not even a try is counted
    assert refused.status_code == 429
    live_code = LoginCode.objects.get(email=email, used_at__isnull=True)
    assert live_code.attempts == 2


def test_with_the_store_down_sign_in_is_still_limited_by_a_local_counter(api_client, dead_redis):
    for sent in range(1, 11):
        response = sign_in_request(api_client)
        assert response.status_code == 202
        assert response["X-RateLimit-Remaining"] == str(10 - sent)
    refused = sign_in_request(api_client)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1


def test_with_the_store_down_the_local_window_ends_where_the_shared_one_does(
    api_client, dead_redis, clock
):
    client = "198.51.100.7"
    window_end = _get_window(client, 15 * 60)
    for _ in range(10):
        assert sign_in_request(api_client, REMOTE_ADDR=client).status_code == 202
    refused = sign_in_request(api_client, REMOTE_ADDR=client)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == window_end - int(clock.now) + 1
    clock.advance(window_end - clock.now)
    assert sign_in_request(api_client, REMOTE_ADDR=client).status_code == 429
    clock.advance(1)
    assert sign_in_request(api_client, REMOTE_ADDR=client).status_code == 202


def test_with_the_store_down_reads_are_limited_by_a_local_counter(api_client, dead_redis):
    for _ in range(120):
        assert probe(api_client, "/api/gamification/probe").status_code == 200
    assert probe(api_client, "/api/gamification/probe").status_code == 429


def test_when_the_local_counter_is_full_sign_in_fails_closed_and_reads_fail_open(
    api_client, dead_redis, settings
):
    settings.RATELIMIT_LOCAL_MAX_KEYS = 1
    assert sign_in_request(api_client, REMOTE_ADDR="198.51.100.1").status_code == 202
    assert sign_in_request(api_client, REMOTE_ADDR="198.51.100.2").status_code == 429
    read = probe(api_client, "/api/gamification/probe", REMOTE_ADDR="198.51.100.2")
    assert read.status_code == 200


def test_the_local_counter_forgets_ended_windows_when_full(api_client, dead_redis, settings, clock):
    settings.RATELIMIT_LOCAL_MAX_KEYS = 1
    assert sign_in_request(api_client, REMOTE_ADDR="198.51.100.1").status_code == 202
    clock.advance(15 * 60)
    assert sign_in_request(api_client, REMOTE_ADDR="198.51.100.2").status_code == 202


def test_the_shared_store_is_used_again_once_it_is_back(api_client, settings, clock):
    live_caches = settings.CACHES
    settings.CACHES = unreachable_redis_caches()
    for _ in range(3):
        sign_in_request(api_client)
    settings.CACHES = live_caches
    # Within the retry delay the instance keeps counting in process.
    assert sign_in_request(api_client)["X-RateLimit-Remaining"] == "6"
    clock.advance(settings.RATELIMIT_STORE_RETRY_SECONDS)
    # The shared store has not seen this window's requests: its own count starts again.
    assert sign_in_request(api_client)["X-RateLimit-Remaining"] == "9"


def test_production_without_a_shared_store_logs_critical_at_startup(settings, caplog):
    settings.IS_PRODUCTION = True
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with caplog.at_level(logging.CRITICAL, logger="config.ratelimit"):
        RateLimitMiddleware(lambda request: None)
    assert any(record.levelno == logging.CRITICAL for record in caplog.records)


def test_production_with_redis_logs_nothing_at_startup(settings, caplog):
    settings.IS_PRODUCTION = True
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://x:6379/0"}
    }
    with caplog.at_level(logging.WARNING, logger="config.ratelimit"):
        RateLimitMiddleware(lambda request: None)
    assert caplog.records == []
