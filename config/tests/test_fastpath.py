"""The read path in front of Django answers every cached route exactly as Django does.

Each request is sent twice, as ASGI: once to the fast path in front of Django (as config.asgi
serves it) and once to Django alone; status, body and headers must be the same, Date apart.
"""

import asyncio
import itertools
import json
import re
import socket
import zlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import UserSession
from accounts.services import token_hash, user_deactivate, user_session_end
from accounts.tests.factories import UserFactory
from config.asgi import django_asgi_app
from config.caching import CacheType, cache_invalidate
from config.fastpath import ROUTES, FastPath
from config.handlers import SyncChainASGIHandler
from config.metrics import FAST_PATH
from gamification.tests.factories import AchievementFactory
from products.models import Product, UserProductSearch
from products.tests.factories import ProductFactory

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

fast_path = FastPath(django_asgi_app)
_addresses = (f"10.1.{n // 250}.{n % 250 + 1}" for n in itertools.count())


def asgi_get(app, path: str, *, headers: dict[str, str] | None = None, client: str = "") -> tuple:
    """Status, headers (lowercased names, sorted, without Date) and body of one GET."""
    target, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [
            (k.lower().encode(), v.encode())
            for k, v in {"Host": "testserver", **(headers or {})}.items()
        ],
        "client": (client or next(_addresses), 50000),
        "server": ("testserver", 80),
    }
    messages: list[dict] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message: dict) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    names = sorted((n.lower(), v) for n, v in start["headers"] if n.lower() != b"date")
    return start["status"], names, body


def hits(route: str, outcome: str = "hit") -> float:
    return FAST_PATH.labels(settings.INSTANCE_ID, route, outcome)._value.get()


def stored_etag(path: str, app=fast_path) -> str:
    """Store the answer of `path` (the first request of a cache type starts its generation,
    the second is stored) and give its ETag."""
    for _ in range(2):
        asgi_get(app, path)
    status, headers, _ = asgi_get(app, path)
    assert status == 200
    return dict(headers)[b"etag"].decode()


@pytest.fixture
def catalogue():
    products = [ProductFactory(category="phones") for _ in range(3)]
    AchievementFactory(code="first", is_hidden=False)
    AchievementFactory(code="secret", is_hidden=True)
    return products


@pytest.fixture
def paths(catalogue) -> dict[str, str]:
    """One request of every cached route, by route name."""
    product = catalogue[0].pk
    return {
        "product_categories": "/api/products/categories/",
        "product_list": "/api/products/?category=phones&page=2&page_size=1",
        "product_detail": f"/api/products/{product}/",
        "category_stats": "/api/rankings/stats/?category=phones",
        "product_stats": f"/api/rankings/stats/{product}/",
        "home_stats": "/api/gamification/home-stats/",
        "leaderboard": "/api/gamification/leaderboard/?window=week&limit=5",
        "achievements": "/api/gamification/achievements/",
    }


def test_every_cached_route_is_called_here(paths):
    assert {route.name for route in ROUTES} == set(paths)


def addresses_with_one_window(*, period: int) -> tuple[str, str]:
    """Two client addresses whose rate-limit windows end together (django-ratelimit offsets
    each client's window by a hash of its address), so that their Retry-After match."""
    first = next(_addresses)
    offset = zlib.crc32(first.encode()) % period
    second = next(a for a in _addresses if zlib.crc32(a.encode()) % period == offset)
    return first, second


def alike(fast: tuple, django: tuple) -> bool:
    """The same answer, but for the seconds a 429 asks to wait (its Retry-After and the "try
    again in N seconds" of its body) one apart: the two requests may straddle a second."""

    def apart(answer: tuple) -> tuple[tuple, list[int]]:
        status, headers, body = answer
        retry = [int(v) for n, v in headers if n == b"retry-after"]
        rest = [(n, v) for n, v in headers if n != b"retry-after"]
        waits = [int(n) for n in re.findall(rb"try again in (\d+) seconds", body)]
        body = re.sub(rb"try again in \d+ seconds", b"try again in N seconds", body)
        return (status, rest, body, len(retry), len(waits)), retry + waits

    (fast_rest, fast_waits), (django_rest, django_waits) = apart(fast), apart(django)
    return fast_rest == django_rest and all(
        abs(f - d) <= 1 for f, d in zip(fast_waits, django_waits, strict=True)
    )


def both_ways(path: str, **options) -> tuple[tuple, tuple]:
    """The same request through the fast path and through Django alone, from one client
    address each (so that their rate-limit counts match)."""
    return asgi_get(fast_path, path, **options), asgi_get(django_asgi_app, path, **options)


def test_anonymous_misses_then_hits_answer_as_django_does(paths):
    for name, path in paths.items():
        # The first request of a cache type starts its generation: the second is stored.
        for _ in range(2):
            miss, django = both_ways(path)
            assert miss[0] == 200, (name, miss)
            assert miss == django, name
        before = hits(name)
        hit, django = both_ways(path)
        assert hits(name) == before + 1, f"{name} was not answered before Django"
        assert hit == django, name


def test_signed_in_callers_get_what_django_answers(paths):
    user = UserFactory()
    UserSession.objects.create(user=user, token_hash=token_hash("fast-token"))
    signed_in = {"Authorization": "Token fast-token"}
    for name, path in paths.items():
        for _ in range(2):
            asgi_get(fast_path, path)  # an anonymous answer is stored
        before = hits(name)
        fast, django = both_ways(path, headers=signed_in)
        assert fast == django, name
        assert hits(name) == before


def test_revoked_tokens_and_deactivated_users_are_refused_though_the_answer_is_stored(paths):
    ended, deactivated = UserFactory(), UserFactory()
    session = UserSession.objects.create(user=ended, token_hash=token_hash("ended-token"))
    UserSession.objects.create(user=deactivated, token_hash=token_hash("gone-user-token"))
    user_session_end(user_session=session)
    user_deactivate(user=deactivated)
    for name, path in paths.items():
        stored_etag(path)
        before = hits(name) + hits(name, "not_modified")
        for token in ("ended-token", "gone-user-token"):
            fast, django = both_ways(path, headers={"Authorization": f"Token {token}"})
            assert fast[0] == 401, (name, token)
            assert fast == django, (name, token)
        assert hits(name) + hits(name, "not_modified") == before, name


def test_a_stored_answer_lives_a_minute_at_most(paths):
    from config.fastpath import ANSWER_SECONDS, answer_key, route_for
    from config.redis import redis_call

    path = paths["home_stats"]
    stored_etag(path)
    route = route_for(path)
    key = answer_key(route, host=b"testserver", path=path, query=b"")
    ttl = redis_call(lambda client: client.ttl(key), default=None)
    assert ANSWER_SECONDS == 60
    assert 0 < ttl <= 60


def test_conditional_requests_get_the_same_304_before_django(paths):
    for name, path in paths.items():
        etag = stored_etag(path)
        weak = f"W/{etag}"
        for if_none_match in (etag, weak, f'"other", {etag}', "*"):
            before = hits(name, "not_modified")
            fast, django = both_ways(path, headers={"If-None-Match": if_none_match})
            assert fast[0] == 304, (name, if_none_match)
            assert fast == django, (name, if_none_match)
            assert hits(name, "not_modified") == before + 1, f"{name}: Django answered the 304"
        # With If-None-Match, If-Modified-Since is ignored, as Django ignores it.
        since = {"If-None-Match": etag, "If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}
        fast, django = both_ways(path, headers=since)
        assert fast[0] == 304, name
        assert fast == django, name


def test_a_stale_etag_gets_the_stored_200(paths):
    for name, path in paths.items():
        stored_etag(path)
        before = hits(name)
        fast, django = both_ways(path, headers={"If-None-Match": '"stale", W/"older"'})
        assert fast[0] == 200, name
        assert fast == django, name
        assert hits(name) == before + 1, name


def test_preconditions_the_fast_path_does_not_judge_reach_django(paths):
    for name, path in paths.items():
        etag = stored_etag(path)
        for headers in (
            {"If-Match": '"other"'},
            {"If-Match": etag, "If-None-Match": etag},
            {"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
            {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
        ):
            before = hits(name) + hits(name, "not_modified")
            fast, django = both_ways(path, headers=headers)
            assert fast == django, (name, headers)
            assert hits(name) + hits(name, "not_modified") == before, (name, headers)
        assert both_ways(path, headers={"If-Match": '"other"'})[0][0] == 412, name


def test_a_304_counts_against_the_limit_and_a_spent_limit_still_refuses(paths, settings):
    settings.RATELIMIT_ENABLE = True
    settings.RATELIMIT_RATES = {**settings.RATELIMIT_RATES, "api": (3, 60)}
    path = paths["home_stats"]
    etag = stored_etag(path)
    fast_client, django_client = addresses_with_one_window(period=60)
    conditional = {"If-None-Match": etag}
    for expected in (304, 304, 304, 429):
        fast = asgi_get(fast_path, path, client=fast_client, headers=conditional)
        django = asgi_get(django_asgi_app, path, client=django_client, headers=conditional)
        assert fast[0] == expected
        assert alike(fast, django)


def test_a_spent_limit_is_refused_alike_and_counted_once(paths, settings):
    settings.RATELIMIT_ENABLE = True
    settings.RATELIMIT_RATES = {**settings.RATELIMIT_RATES, "api": (3, 60)}
    for name, path in paths.items():
        fast_client, django_client = addresses_with_one_window(period=60)
        answers = []
        for _ in range(4):
            answers.append(
                (
                    asgi_get(fast_path, path, client=fast_client),
                    asgi_get(django_asgi_app, path, client=django_client),
                )
            )
        for fast, django in answers:
            assert alike(fast, django), name
        remaining = [dict(fast[1])[b"x-ratelimit-remaining"] for fast, _ in answers]
        assert remaining == [b"2", b"1", b"0", b"0"], name
        assert [fast[0] for fast, _ in answers] == [200, 200, 200, 429], name


def test_clients_behind_a_trusted_proxy_are_counted_by_their_own_address(paths, settings):
    settings.RATELIMIT_ENABLE = True
    settings.TRUSTED_PROXY_COUNT = 1
    settings.RATELIMIT_RATES = {**settings.RATELIMIT_RATES, "api": (2, 60)}
    path = paths["home_stats"]
    proxy = next(_addresses)
    first, second = next(_addresses), next(_addresses)
    statuses = [
        asgi_get(fast_path, path, client=proxy, headers={"X-Forwarded-For": first})[0]
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert asgi_get(fast_path, path, client=proxy, headers={"X-Forwarded-For": second})[0] == 200


def test_production_redirects_plain_http_and_adds_hsts_alike(paths, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    # Django's security middleware reads these settings once, when the handler is built.
    django_app = SyncChainASGIHandler()
    production = FastPath(django_app)
    for name, path in paths.items():
        plain = {"X-Forwarded-Proto": "http"}
        redirect = asgi_get(production, path, headers=plain)
        assert redirect[0] == 301, name
        assert redirect == asgi_get(django_app, path, headers=plain), name
        https = {"X-Forwarded-Proto": "https"}
        for _ in range(2):
            asgi_get(production, path, headers=https)
        before = hits(name)
        hit, django = (
            asgi_get(production, path, headers=https),
            asgi_get(django_app, path, headers=https),
        )
        assert hits(name) == before + 1, name
        assert hit == django, name
        assert dict(hit[1])[b"strict-transport-security"] == b"max-age=3600", name
        conditional = {**https, "If-None-Match": dict(hit[1])[b"etag"].decode()}
        before = hits(name, "not_modified")
        fast_304, django_304 = (
            asgi_get(production, path, headers=conditional),
            asgi_get(django_app, path, headers=conditional),
        )
        assert hits(name, "not_modified") == before + 1, name
        assert fast_304[0] == 304, name
        assert fast_304 == django_304, name
        assert dict(fast_304[1])[b"strict-transport-security"] == b"max-age=3600", name


def test_a_host_django_refuses_is_refused_alike(paths):
    for name, path in paths.items():
        asgi_get(fast_path, path)
        fast, django = both_ways(path, headers={"Host": "evil.example"})
        assert fast[0] == 400, name
        assert fast == django, name


def test_searches_always_reach_django_to_be_recorded(paths):
    path = "/api/products/?search=product"
    before = hits("product_list")
    for _ in range(3):
        fast, django = both_ways(path)
        assert fast == django
    assert UserProductSearch.objects.count() == 6
    assert hits("product_list") == before


def test_page_links_name_the_host_that_was_asked(paths):
    path = paths["product_list"]
    for host in ("testserver", "localhost", "testserver", "localhost"):
        fast, django = both_ways(path, headers={"Host": host})
        assert f"http://{host}/api/products/".encode() in fast[2]
        assert fast == django


def test_control_characters_in_the_query_are_refused_alike(paths):
    for name, path in paths.items():
        joiner = "&" if "?" in path else "?"
        for escape in ("%00", "%1F", "%7F", "%C2%80"):
            fast, django = both_ways(f"{path}{joiner}x={escape}")
            assert fast[0] == 400, (name, escape)
            assert fast == django, (name, escape)


def test_an_invalidation_ends_a_stored_answer_at_once(paths, catalogue):
    path = paths["product_detail"]
    asgi_get(fast_path, path)
    Product.objects.filter(pk=catalogue[0].pk).update(name="Renamed")
    cache_invalidate(CacheType.PRODUCT_METADATA)
    fast, django = both_ways(path)
    assert b"Renamed" in fast[2]
    assert fast == django


def test_a_stored_leaderboard_ends_with_its_day(paths, monkeypatch):
    path = "/api/gamification/leaderboard/?window=day"
    stored_etag(path)
    before = hits("leaderboard")
    assert both_ways(path)[0][0] == 200
    assert hits("leaderboard") == before + 1
    today = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: today + timedelta(days=1))
    fast, django = both_ways(path)
    assert hits("leaderboard") == before + 1, "yesterday's board was answered"
    assert fast == django
    tomorrow = (today + timedelta(days=1)).date().isoformat()
    assert json.loads(fast[2])["period_start"].startswith(tomorrow)


def dead_redis_caches() -> dict:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    caches = {"default": dict(settings.CACHES["default"])}
    caches["default"]["LOCATION"] = f"redis://127.0.0.1:{port}/0"
    return caches


def test_with_redis_down_every_route_answers_as_django_does(paths, settings):
    settings.CACHES = dead_redis_caches()
    for name, path in paths.items():
        for _ in range(2):
            fast, django = both_ways(path)
            assert fast[0] == 200, name
            assert fast == django, name
