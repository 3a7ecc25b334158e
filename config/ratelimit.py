"""Per-IP rate limits by path, and the employee rule for the admin API.

The middleware maps every request path to one of four groups (auth, api, rankings, admin) and
counts it with django-ratelimit in the shared cache, so every instance enforces one limit
together. Matching is
by path prefix, so a route added later under a prefix is limited without being decorated.

When the limit store fails, each instance counts in process instead (same limits and window
lengths): `auth` fails closed, the other groups fail open; see `FAIL_CLOSED_GROUPS`.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit import UNSAFE
from django_ratelimit.checks import KNOWN_BROKEN_CACHE_BACKENDS
from django_ratelimit.core import get_usage
from rest_framework import authentication, exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings

from config.client_ip import client_network

logger = logging.getLogger(__name__)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True)
class Rule:
    group: str
    prefix: str
    methods: frozenset[str] | None = None  # None: every method

    def matches(self, *, path: str, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return _under(path, self.prefix)


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
    for rule in RULES:
        if rule.matches(path=path, method=method):
            return rule.group
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
        self._window_ends: dict[tuple[str, str, int], float] = {}
        self._lock = threading.Lock()

    def hit(self, *, group: str, client: str, limit: int, period: int) -> Usage | None:
        now = time.time()
        window_start = int(now // period) * period
        window_end = window_start + period
        key = (group, client, window_start)
        with self._lock:
            if key not in self._counts and len(self._counts) >= settings.RATELIMIT_LOCAL_MAX_KEYS:
                self._forget_ended(now)
                if len(self._counts) >= settings.RATELIMIT_LOCAL_MAX_KEYS:
                    return None
            self._counts[key] = self._counts.get(key, 0) + 1
            self._window_ends[key] = window_end
            count = self._counts[key]
        return Usage(limit=limit, count=count, reset_in=math.ceil(window_end - now))

    def _forget_ended(self, now: float) -> None:
        for key in [key for key, end in self._window_ends.items() if end <= now]:
            del self._counts[key]
            del self._window_ends[key]


def _client_key(group: str, request: HttpRequest) -> str:
    return client_network(request)


def _json_error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


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
        usage = self.usage(request, group) if settings.RATELIMIT_ENABLE else None
        response: HttpResponse
        if usage is not None and usage.limited:
            response = too_many_requests(usage=usage)
        elif requires_employee(path=path):
            response = employee_denial(request=request) or self.get_response(request)
        else:
            response = self.get_response(request)
        if usage is not None:
            response["X-RateLimit-Limit"] = str(usage.limit)
            response["X-RateLimit-Remaining"] = str(usage.remaining)
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
        try:
            usage = get_usage(request, group=group, key=_client_key, rate=rate, increment=True)
        except Exception:
            # Whatever fails in the store (Redis down, a timeout) must not become a 500.
            logger.warning("Rate-limit store unavailable; counting in process", exc_info=True)
            usage = None
        if usage is None:
            self._store_retry_at = time.time() + settings.RATELIMIT_STORE_RETRY_SECONDS
            return None
        # django-ratelimit's window still holds at time_left 0; it resets a second later.
        return Usage(limit=usage["limit"], count=usage["count"], reset_in=usage["time_left"] + 1)
