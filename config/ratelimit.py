"""Per-IP rate limits by path, and the employee rule for the admin API.

The middleware maps every request path to one of four groups (auth, api, rankings, admin) and
counts it in the shared cache, so every instance enforces one limit together. Matching is by
path prefix, so a route added later under a prefix is limited without being decorated.

On Redis a request is counted by one script (`COUNT_AND_READ`: one round trip), which the
read path in front of Django (config.fastpath) runs too, asynchronously, reading the cached
answer in the same trip; the counters' keys and windows are django-ratelimit's. Without Redis,
django-ratelimit counts in the local cache.

When the limit store fails, each instance counts in process instead, with the same limits and
windows as django-ratelimit's (which end at a different second for each client): `auth` fails
closed, the other groups fail open; see `FAIL_CLOSED_GROUPS`.
"""

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit import ALL, UNSAFE
from django_ratelimit.checks import KNOWN_BROKEN_CACHE_BACKENDS
from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, get_usage
from redis import Redis
from redis.exceptions import NoScriptError
from rest_framework import authentication, exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings

from config.client_ip import client_network
from config.redis import LoopConnections, redis_call

logger = logging.getLogger(__name__)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class Rule(NamedTuple):
    group: str
    prefix: str
    methods: frozenset[str] | None = None  # None: every method


# First match wins, so the specific prefixes come before the `/api` catch-all.
RULES: tuple[Rule, ...] = (
    Rule("auth", "/api/customer/email-login"),
    # The Django admin's password form is the other way to sign in.
    Rule("auth", "/admin/login", methods=frozenset({"POST"})),
    Rule("admin", "/api/admin"),
    Rule("admin", "/api/tools"),
    Rule("rankings", "/api/rankings", methods=frozenset(UNSAFE)),
    # Reads of rankings, products, gamification, the rest of /api/customer, the schema and
    # anything added under /api later.
    Rule("api", "/api"),
)

EMPLOYEE_PREFIXES = ("/api/admin", "/api/tools")

# Sign-in guards the codes against guessing, so it never runs unlimited; the other groups protect
# capacity, where turning a customer away because a counter is unavailable helps nobody.
FAIL_CLOSED_GROUPS = frozenset({"auth"})


def rate_group(*, path: str, method: str) -> str | None:
    """The rate group a request counts against, or None when it is not limited."""
    for group, prefix, methods in RULES:
        if (methods is None or method in methods) and (
            path == prefix or path.startswith(prefix + "/")
        ):
            return group
    return None


def requires_employee(*, path: str) -> bool:
    return any(_under(path, prefix) for prefix in EMPLOYEE_PREFIXES)


@dataclass(frozen=True)
class Usage:
    limit: int
    count: int
    reset_in: int  # seconds until the window ends and the count starts again

    @property
    def limited(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)


class LocalCounter:
    """Fixed-window counts kept in this process, used while the shared store is unavailable.

    Bounded, so a flood of distinct addresses cannot grow it without end: when it is full, `hit`
    answers None and the caller decides whether that admits or refuses.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        self._window_ends: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, *, group: str, client: str, limit: int, period: int) -> Usage | None:
        now = time.time()
        window_end = _get_window(client, period)
        key = (group, client, window_end)
        with self._lock:
            if key not in self._counts and len(self._counts) >= settings.RATELIMIT_LOCAL_MAX_KEYS:
                self._forget_ended(now)
                if len(self._counts) >= settings.RATELIMIT_LOCAL_MAX_KEYS:
                    return None
            self._counts[key] = self._counts.get(key, 0) + 1
            self._window_ends[key] = window_end + 1
            count = self._counts[key]
        # As in the shared store, the window still holds at its last second.
        return Usage(limit=limit, count=count, reset_in=window_end - int(now) + 1)

    def _forget_ended(self, now: float) -> None:
        for key in [key for key, end in self._window_ends.items() if end <= now]:
            del self._counts[key]
            del self._window_ends[key]


# KEYS[1]: the counter (ARGV[1], its lifetime in seconds; 0: do not count); KEYS[2...]: values
# read in the same round trip. Answers {count, value...}, a missing value as nil.
COUNT_AND_READ = """
local out = {0}
if ARGV[1] ~= '0' then
  out[1] = redis.call('INCR', KEYS[1])
  if out[1] == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
end
for i = 2, #KEYS do out[i] = redis.call('GET', KEYS[i]) end
return out
"""
_SCRIPT_SHA = hashlib.sha1(COUNT_AND_READ.encode()).hexdigest()


class Counting(NamedTuple):
    """Where a client's request of a group is counted in the shared store: django-ratelimit's
    key and window, under the cache's key prefix."""

    key: str
    limit: int
    period: int
    window_end: int

    @classmethod
    def of(cls, *, group: str, client: str, backend: BaseCache | None = None) -> "Counting":
        """`backend`: the rate-limit cache (RATELIMIT_USE_CACHE), to name the key."""
        limit, period = settings.RATELIMIT_RATES[group]
        window_end = _get_window(client, period)
        backend = backend or caches[settings.RATELIMIT_USE_CACHE]
        return _counting(group, client, limit, period, window_end, backend)

    def usage(self, count: int) -> Usage:
        # The window still holds at its last second; it resets a second later.
        return Usage(limit=self.limit, count=count, reset_in=self.window_end - int(time.time()) + 1)


@functools.lru_cache(maxsize=4096)
def _counting(
    group: str, client: str, limit: int, period: int, window_end: int, backend: BaseCache
) -> Counting:
    """A client's Counting in one window, named once: a client's requests in a window share
    its key, which django-ratelimit derives with a hash."""
    key = _make_cache_key(group, window_end, (limit, period), client, ALL)
    return Counting(key=backend.make_key(key), limit=limit, period=period, window_end=window_end)


def _script_call(counting: Counting | None, reads: list[str]) -> tuple[list[str], list[str]]:
    keys = [counting.key if counting else "-", *reads]
    lifetime = counting.period + EXPIRATION_FUDGE if counting else 0
    return keys, [str(lifetime)]


def count_and_read(
    client: Redis, *, counting: Counting | None, reads: list[str]
) -> tuple[Usage | None, list[bytes | None]]:
    """Count a request (unless `counting` is None) and read `reads`, in one round trip."""
    keys, args = _script_call(counting, reads)
    try:
        reply = client.evalsha(_SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:
        reply = client.eval(COUNT_AND_READ, len(keys), *keys, *args)
    return (counting.usage(reply[0]) if counting else None), reply[1:]


async def count_and_read_async(
    connections: LoopConnections, *, counting: Counting | None, reads: list[str]
) -> tuple[Usage | None, list[bytes | None]]:
    """`count_and_read` on the event loop's connections."""
    keys, args = _script_call(counting, reads)
    try:
        reply = await connections.execute("EVALSHA", _SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:
        reply = await connections.execute("EVAL", COUNT_AND_READ, len(keys), *keys, *args)
    return (counting.usage(reply[0]) if counting else None), reply[1:]


# Where config.fastpath leaves the usage it counted, so that Django does not count it again.
SCOPE_USAGE = "rankly.ratelimit_usage"


def _client_key(group: str, request: HttpRequest) -> str:
    return client_network(request)


def _json_error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def rate_limit_headers(usage: Usage | None) -> list[tuple[str, str]]:
    """The headers every counted answer carries."""
    if usage is None:
        return []
    return [
        ("X-RateLimit-Limit", str(usage.limit)),
        ("X-RateLimit-Remaining", str(usage.remaining)),
    ]


def too_many_requests(*, usage: Usage) -> JsonResponse:
    response = _json_error(
        429, f"Too many requests; try again in {usage.reset_in} seconds.", "rate_limited"
    )
    response["Retry-After"] = str(usage.reset_in)
    return response


def employee_denial(*, request: HttpRequest) -> HttpResponse | None:
    """401 for anonymous callers, 403 for customers, None for employees.

    The caller is found as the API views find it (an Authorization header first, then the session
    cookie), so the rule holds for every route under the employee prefixes whatever their views
    declare. The session's CSRF check needs the parsed body, so it stays with the views' own
    SessionAuthentication.
    """
    # drf-stubs types the setting as the dotted paths it is written as, not the imported classes.
    classes: list[type[BaseAuthentication]] = api_settings.DEFAULT_AUTHENTICATION_CLASSES  # type: ignore[assignment]
    header_authenticators = [
        auth() for auth in classes if not issubclass(auth, authentication.SessionAuthentication)
    ]
    session_user = request.user
    drf_request = Request(request, authenticators=header_authenticators)
    try:
        user = drf_request.user
    except exceptions.AuthenticationFailed as error:
        return _unauthenticated(
            drf_request, header_authenticators, str(error.detail), error.get_codes()
        )
    except (OperationalError, InterfaceError):
        return _json_error(
            503,
            "A service Rankly depends on is unavailable; try again shortly.",
            "service_unavailable",
        )
    finally:
        # DRF's Request also sets the user on the request it wraps; the view must start afresh.
        request.user = session_user
    if not user.is_authenticated:
        user = session_user
    if not user.is_authenticated:
        return _unauthenticated(
            drf_request,
            header_authenticators,
            "Authentication credentials were not provided.",
            "not_authenticated",
        )
    if not user.is_staff:
        return _json_error(403, "This part of the API is for employees only.", "permission_denied")
    return None


def _unauthenticated(
    drf_request: Request, authenticators: list[BaseAuthentication], detail: str, code: object
) -> JsonResponse:
    response = _json_error(401, detail, str(code))
    challenge = next((auth.authenticate_header(drf_request) for auth in authenticators), None)
    if challenge:
        response["WWW-Authenticate"] = challenge
    return response


class RateLimitMiddleware:
    """Counts every request under a limited path; refuses with 429 once its group is spent."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.local = LocalCounter()
        self._store_retry_at = 0.0
        cache_backend = settings.CACHES[settings.RATELIMIT_USE_CACHE]["BACKEND"]
        if settings.IS_PRODUCTION and cache_backend in KNOWN_BROKEN_CACHE_BACKENDS:
            logger.critical(
                "❌ CRITICAL: rate limits are counted per instance (no Redis): "
                "N instances allow N times each limit."
            )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        group = rate_group(path=path, method=request.method or "")
        if group is None:
            return self.get_response(request)
        counted = getattr(request, "scope", {}).get(SCOPE_USAGE)
        if counted is not None:
            usage = counted
        elif settings.RATELIMIT_ENABLE:
            usage = self.usage(request, group)
        else:
            usage = None
        response: HttpResponse
        if usage is not None and usage.limited:
            response = too_many_requests(usage=usage)
        elif requires_employee(path=path):
            response = employee_denial(request=request) or self.get_response(request)
        else:
            response = self.get_response(request)
        for name, value in rate_limit_headers(usage):
            response[name] = value
        return response

    def usage(self, request: HttpRequest, group: str) -> Usage:
        """Count this request in its group: in the shared store, else in process."""
        rate = settings.RATELIMIT_RATES[group]
        limit, period = rate
        shared = self._shared_usage(request, group, rate)
        if shared is not None:
            return shared
        local = self.local.hit(
            group=group, client=client_network(request), limit=limit, period=period
        )
        if local is not None:
            return local
        # The in-process table is full too: refuse or admit without counting, per group.
        refused = group in FAIL_CLOSED_GROUPS
        return Usage(limit=limit, count=limit + 1 if refused else 0, reset_in=period)

    def _shared_usage(
        self, request: HttpRequest, group: str, rate: tuple[int, int]
    ) -> Usage | None:
        """The count in the shared store, or None when it is unreachable."""
        if time.time() < self._store_retry_at:
            return None
        if hasattr(caches[settings.RATELIMIT_USE_CACHE], "breaker"):
            counting = Counting.of(group=group, client=client_network(request))
            # Rankly's Redis cache (config.cache_backend): None while Redis is down, and its
            # circuit breaker decides when to try again, so a recovered Redis carries on with
            # the count it holds. Any other cache goes through django-ratelimit.
            return redis_call(
                lambda client: count_and_read(client, counting=counting, reads=[])[0],
                default=None,
                alias=settings.RATELIMIT_USE_CACHE,
            )
        try:
            usage = get_usage(request, group=group, key=_client_key, rate=rate, increment=True)
        except Exception:
            # Whatever fails in the store (a timeout) must not become a 500.
            logger.warning("Rate-limit store unavailable; counting in process", exc_info=True)
            usage = None
        if usage is None:
            self._store_retry_at = time.time() + settings.RATELIMIT_STORE_RETRY_SECONDS
            return None
        # django-ratelimit's window still holds at time_left 0; it resets a second later.
        return Usage(limit=usage["limit"], count=usage["count"], reset_in=usage["time_left"] + 1)
