"""The read path in front of Django: a cached GET answered on the event loop, from Redis.

Apps declare their cached routes with `cached_route` in their AppConfig.ready(): a path pattern
and the cache types the answer is computed from. On such a route, a signed-out GET is counted
against its rate group and looked up in one Redis round trip (config.ratelimit's
COUNT_AND_READ: the count, the generations of the route's cache types and the stored answer).

A stored answer is what Django itself sent for the same path and query string: a 200, its body
and headers (ETag, Cache-Control, Vary, the security headers), stamped with the generations it
was computed under and with whether the request was HTTPS. While the generations hold (an
invalidation of any of the types ends it) and for at most ANSWER_SECONDS, the same request
gets the same answer without entering Django, with its own rate-limit headers.

A conditional GET whose `If-None-Match` names the stored answer's ETag gets the 304 Django would
send for it: the stored headers without the body's Content-Type, with Content-Length 0.

Everything else goes to Django, with the count already taken handed over in the scope so that a
request is counted once: signed-in callers (a token or a session cookie), `If-Match`,
`If-Unmodified-Since` and `If-Modified-Since` without `If-None-Match` (Django judges those), a
spent rate limit (Django answers the 429), a Host Django would refuse, a plain-HTTP request that
production redirects, an unusual query string, a miss (Django answers and this layer stores the
answer), and Redis down or cooling off.
"""

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

import sentry_sdk
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import parse_etags
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.caching import CacheType, cache_hit_count, generation_key
from config.client_ip import client_ip_from, network_of
from config.metrics import fast_path_observe
from config.ratelimit import (
    SCOPE_USAGE,
    Counting,
    Usage,
    count_and_read_async,
    rate_group,
    rate_limit_headers,
)
from config.redis import loop_cache_backend, loop_redis

logger = logging.getLogger("rankly.fastpath")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# How long a stored answer outlives the cached parts it was built from, at most.
ANSWER_SECONDS = 60
# Raised when the stored format changes, so that releases never read each other's answers.
ANSWER_FORMAT = b"rankly-answer-1"
# Sent per request, never stored.
PER_REQUEST_HEADERS = frozenset({b"x-ratelimit-limit", b"x-ratelimit-remaining", b"date"})
# Printable, percent-encoded query strings only (no encoded control characters): anything else
# is Django's to judge.
SAFE_QUERY = re.compile(rb"(?:[A-Za-z0-9&=._~+,:-]|%[2-6][0-9A-Fa-f]|%7[0-9A-Ea-e])*")
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
# Stored answers kept decoded per process, in bytes (each held twice: stored and decoded).
LOADED_ANSWER_BYTES = 4 * 1024 * 1024
# What a 304 leaves out of the answer it stands for.
_BODY_HEADERS = frozenset({b"content-type", b"content-length"})


@dataclass(frozen=True)
class CachedRoute:
    name: str
    pattern: re.Pattern[str]
    types: tuple[CacheType, ...]
    # Query parameters whose presence makes the request Django's alone (it has side effects).
    unless_query: frozenset[str] = frozenset()
    # What else, besides the request, the answer depends on (e.g. the current period), read at
    # each request: a change makes the stored answer a miss.
    varies_with: Callable[[], str] | None = None


ROUTES: list[CachedRoute] = []


def cached_route(
    name: str,
    pattern: str,
    *,
    types: Iterable[CacheType],
    unless_query: Iterable[str] = (),
    varies_with: Callable[[], str] | None = None,
) -> None:
    """Declare a GET route whose signed-out answers depend only on the host, the path, the
    query string, the cached values of `types` (an invalidation of any of them ends the
    answer) and what `varies_with()` returns when it is asked. A request with a parameter in
    `unless_query` always goes to Django."""
    if any(route.name == name for route in ROUTES):
        return
    ROUTES.append(
        CachedRoute(
            name=name,
            pattern=re.compile(pattern),
            types=tuple(types),
            unless_query=frozenset(unless_query),
            varies_with=varies_with,
        )
    )


def cached_route_depends(name: str, *, types: Iterable[CacheType]) -> None:
    """An app that adds a part to another app's cached answer adds the part's cache types."""
    for index, route in enumerate(ROUTES):
        if route.name == name:
            added = tuple(t for t in types if t not in route.types)
            ROUTES[index] = dataclasses.replace(route, types=route.types + added)
            return
    raise LookupError(f"no cached route named {name}")


def route_for(path: str) -> CachedRoute | None:
    return next((route for route in ROUTES if route.pattern.fullmatch(path)), None)


def answer_key(route: CachedRoute, *, host: bytes, path: str, query: bytes) -> str:
    """Where the answer to one request is stored (under the cache's prefix): by host too, as
    an answer may hold links to itself."""
    request = host + b"\0" + path.encode() + b"?" + query
    if route.varies_with is not None:
        request += b"\0" + route.varies_with().encode()
    digest = hashlib.blake2b(request, digest_size=16).hexdigest()
    return str(loop_cache_backend().make_key(f"answer:{route.name}:{digest}"))


# Per route name: the route and cache they were made for, and the keys of its generations.
_generation_keys_made: dict[str, tuple[CachedRoute, Any, tuple[str, ...]]] = {}


def _generation_keys(route: CachedRoute, backend: Any) -> tuple[str, ...]:
    """The keys of the route's generations on this cache (fixed while the route and the cache
    are)."""
    made = _generation_keys_made.get(route.name)
    if made is None or made[0] is not route or made[1] is not backend:
        keys = tuple(generation_key(t, backend=backend) for t in route.types)
        made = _generation_keys_made[route.name] = (route, backend, keys)
    return made[2]


def _query_names(query: bytes) -> set[str]:
    return {unquote_plus(pair.partition(b"=")[0].decode("latin-1")) for pair in query.split(b"&")}


def generations_stamp(generations: list[bytes | None]) -> bytes:
    """The generations an answer was computed under, compared as stored, never decoded."""
    parts = [b"-\0" if g is None else b"+" + g + b"\0" for g in generations]
    return hashlib.blake2b(b"".join(parts), digest_size=16).hexdigest().encode()


class Answer(NamedTuple):
    stamp: bytes
    secure: bool
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def etag(self) -> bytes | None:
        return next((v for n, v in self.headers if n.lower() == b"etag"), None)

    def not_modified_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers of Django's 304 for this answer (django.utils.cache's `_not_modified`
        after the middleware): the same, less the body's type, with Content-Length 0."""
        kept = [(n, v) for n, v in self.headers if n.lower() not in _BODY_HEADERS]
        return [*kept, (b"content-length", b"0")]

    def dump(self) -> bytes:
        headers = json.dumps([[n.decode("latin-1"), v.decode("latin-1")] for n, v in self.headers])
        secure = b"1" if self.secure else b"0"
        return b"\n".join([ANSWER_FORMAT, self.stamp, secure, headers.encode(), self.body])

    @classmethod
    def load(cls, stored: bytes) -> "Answer | None":
        parts = stored.split(b"\n", 4)
        if len(parts) != 5 or parts[0] != ANSWER_FORMAT:
            return None
        _, stamp, secure, headers, body = parts
        pairs = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in json.loads(headers)]
        return cls(stamp=stamp, secure=secure == b"1", headers=pairs, body=body)


class LoadedAnswers:
    """The answers this process decoded last, by key, each with the bytes it was decoded from:
    a hit on the same stored answer compares bytes instead of decoding its headers again. At
    most `budget` bytes of stored answers are kept; the oldest go first."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._entries: dict[str, tuple[bytes, Answer]] = {}
        self._size = 0

    def load(self, key: str, stored: bytes) -> Answer | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] == stored:
            return entry[1]
        answer = Answer.load(stored)
        if entry is not None:
            del self._entries[key]
            self._size -= len(entry[0])
        if answer is None or len(stored) > self.budget:
            return answer
        while self._size + len(stored) > self.budget:
            oldest = next(iter(self._entries))
            self._size -= len(self._entries.pop(oldest)[0])
        self._entries[key] = (stored, answer)
        self._size += len(stored)
        return answer


class Lookup(NamedTuple):
    key: str
    stamp: bytes
    secure: bool
    usage: Usage | None
    answer: Answer | None  # None: Django answers, and its answer is stored
    if_none_match: bytes | None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        name = name.lower()
        headers[name] = headers[name] + b"," + value if name in headers else value
    return headers


def not_modified(answer: Answer, if_none_match: bytes | None) -> bool:
    """Whether Django would answer 304 to this If-None-Match (django.utils.cache's weak
    comparison, `*` matching any answer)."""
    if if_none_match is None:
        return False
    etags = parse_etags(if_none_match.decode("latin-1"))
    if not etags:
        return False
    if etags == ["*"]:
        return True
    etag = answer.etag()
    if etag is None:
        return False
    return etag.decode("latin-1").strip("W/") in {e.strip("W/") for e in etags}


class RequestSettings(NamedTuple):
    """The settings a request on a cached route is judged by, read from Django's settings once
    (and again after a test changes any: `request_settings_forget`)."""

    # SECURE_PROXY_SSL_HEADER as the scope names it, and the value that means HTTPS.
    proxy_ssl_header: bytes | None
    proxy_ssl_value: str
    host_header: bytes  # Host, or X-Forwarded-Host with USE_X_FORWARDED_HOST
    allowed_hosts: list[str]
    session_cookie: bytes  # b"<SESSION_COOKIE_NAME>="
    ssl_redirect: bool
    rate_limits: bool
    rate_limit_cache: str

    @classmethod
    def read(cls) -> "RequestSettings":
        proxy_name, proxy_value = settings.SECURE_PROXY_SSL_HEADER or ("", "")
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        return cls(
            proxy_ssl_header=(
                proxy_name.removeprefix("HTTP_").replace("_", "-").lower().encode()
                if proxy_name
                else None
            ),
            proxy_ssl_value=proxy_value,
            host_header=b"x-forwarded-host" if settings.USE_X_FORWARDED_HOST else b"host",
            allowed_hosts=list(allowed),
            session_cookie=settings.SESSION_COOKIE_NAME.encode() + b"=",
            ssl_redirect=settings.SECURE_SSL_REDIRECT,
            rate_limits=settings.RATELIMIT_ENABLE,
            rate_limit_cache=settings.RATELIMIT_USE_CACHE,
        )


# The current RequestSettings, and Django's verdict on each Host header seen (few in practice:
# at most HOSTS_KEPT are remembered).
_request_settings: list[RequestSettings] = []
_hosts_allowed: dict[bytes, bool] = {}
HOSTS_KEPT = 64


def request_settings() -> RequestSettings:
    if not _request_settings:
        _request_settings.append(RequestSettings.read())
    return _request_settings[0]


def request_settings_forget(**kwargs: Any) -> None:
    """After a change of any setting (tests), the next request reads them again."""
    _request_settings.clear()
    _hosts_allowed.clear()


def _is_secure(scope: Scope, headers: dict[bytes, bytes], config: RequestSettings) -> bool:
    """request.is_secure(), from the scope."""
    if config.proxy_ssl_header is not None and config.proxy_ssl_header in headers:
        forwarded = headers[config.proxy_ssl_header].split(b",", 1)[0].strip()
        return forwarded.decode("latin-1") == config.proxy_ssl_value
    return scope.get("scheme") == "https"


def _host_allowed(raw: bytes, config: RequestSettings) -> bool:
    """Whether Django would accept the request's Host (request.get_host() without raising)."""
    allowed = _hosts_allowed.get(raw)
    if allowed is None:
        domain, _ = split_domain_port(raw.decode("latin-1"))
        allowed = bool(domain) and validate_host(domain, config.allowed_hosts)
        if len(_hosts_allowed) < HOSTS_KEPT:
            _hosts_allowed[raw] = allowed
    return allowed


def _answerable(
    route: CachedRoute,
    scope: Scope,
    headers: dict[bytes, bytes],
    *,
    host: bytes,
    secure: bool,
    config: RequestSettings,
) -> bool:
    """A request whose answer may come from the store: what Django would answer alike for
    everyone who sends it."""
    if b"authorization" in headers or b"if-match" in headers:
        return False
    if b"if-unmodified-since" in headers:
        return False
    # With If-None-Match, Django ignores If-Modified-Since.
    if b"if-modified-since" in headers and b"if-none-match" not in headers:
        return False
    if b"cookie" in headers and config.session_cookie in headers[b"cookie"]:
        return False
    query = scope.get("query_string", b"")
    if not SAFE_QUERY.fullmatch(query):
        return False
    if route.unless_query and route.unless_query & _query_names(query):
        return False
    if config.ssl_redirect and not secure:
        return False
    return bool(host) and _host_allowed(host, config)


class FastPath:
    """ASGI middleware: cached routes' hits answered here, everything else passed to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answers = LoadedAnswers(LOADED_ANSWER_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        route = route_for(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        try:
            lookup = await self._lookup(route, scope)
        except Exception:
            # The stored answers are an optimisation: a failure here is Django's request to serve.
            logger.exception("fast path failed on %s; Django answers", route.name)
            sentry_sdk.capture_exception()
            lookup = None
        if lookup is None:
            await self.app(scope, receive, send)
            return
        if lookup.answer is None:
            await self._through_django(route, lookup, scope, receive, send)
            fast_path_observe(route=route.name, outcome="django")
            return
        rate_headers = [(n.encode(), v.encode()) for n, v in rate_limit_headers(lookup.usage)]
        if not_modified(lookup.answer, lookup.if_none_match):
            status, headers, body = 304, lookup.answer.not_modified_headers(), b""
        else:
            status, headers, body = 200, lookup.answer.headers, lookup.answer.body
        await send(
            {"type": "http.response.start", "status": status, "headers": headers + rate_headers}
        )
        await send({"type": "http.response.body", "body": body})
        for cache_type in route.types:
            cache_hit_count(cache_type)
        fast_path_observe(
            route=route.name,
            outcome="hit" if status == 200 else "not_modified",
            seconds=perf_counter() - started,
            status=status,
        )

    async def _lookup(self, route: CachedRoute, scope: Scope) -> "Lookup | None":
        """Count the request and find its stored answer; None when Django must answer it alone
        (not answerable here, or Redis unavailable: nothing was counted)."""
        config = request_settings()
        headers = _headers(scope)
        secure = _is_secure(scope, headers, config)
        host = headers.get(config.host_header, b"")
        if not _answerable(route, scope, headers, host=host, secure=secure, config=config):
            return None
        connections = loop_redis()
        if connections is None:
            return None
        group = rate_group(path=scope["path"], method="GET")
        counting = None
        if group is not None and config.rate_limits:
            remote = (scope.get("client") or (None,))[0]
            forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
            network = network_of(client_ip_from(remote=remote, forwarded_for=forwarded))
            counting = Counting.of(
                group=group,
                client=network,
                backend=loop_cache_backend(config.rate_limit_cache),
            )
        key = answer_key(
            route,
            host=host,
            path=scope["path"],
            query=scope.get("query_string", b""),
        )
        reads = [*_generation_keys(route, loop_cache_backend()), key]
        try:
            usage, values = await count_and_read_async(connections, counting=counting, reads=reads)
        except _REDIS_DOWN as exc:
            breaker = getattr(loop_cache_backend(), "breaker", None)
            if breaker is not None:
                breaker.record_failure(exc)
            return None
        stamp = generations_stamp(values[:-1])
        stored = values[-1]
        answer = self.answers.load(key, stored) if stored else None
        usable = (
            answer is not None
            and answer.stamp == stamp
            and answer.secure == secure
            and not (usage is not None and usage.limited)
        )
        return Lookup(
            key=key,
            stamp=stamp,
            secure=secure,
            usage=usage,
            answer=answer if usable else None,
            if_none_match=headers.get(b"if-none-match"),
        )

    async def _through_django(
        self, route: CachedRoute, lookup: "Lookup", scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Django answers; a complete 200 with an ETag and no cookie is stored for the next."""
        start: dict[str, Any] = {}
        body: list[bytes] = []
        complete = False

        async def capture(message: dict[str, Any]) -> None:
            nonlocal complete
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        if lookup.usage is not None:
            # Django must not count again what was counted here.
            scope = {**scope, SCOPE_USAGE: lookup.usage}
        await self.app(scope, receive, capture)
        headers = [(name, value) for name, value in start.get("headers", ())]
        names = {name.lower() for name, _ in headers}
        if start.get("status") != 200 or not complete or b"etag" not in names:
            return
        if b"set-cookie" in names:
            return
        answer = Answer(
            stamp=lookup.stamp,
            secure=lookup.secure,
            headers=[(n, v) for n, v in headers if n.lower() not in PER_REQUEST_HEADERS],
            body=b"".join(body),
        )
        connections = loop_redis()
        if connections is None:
            return
        try:
            await connections.execute("SET", lookup.key, answer.dump(), "EX", ANSWER_SECONDS)
        except _REDIS_DOWN as exc:
            logger.warning("could not store the answer of %s: %s", route.name, exc)
