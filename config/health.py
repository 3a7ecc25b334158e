"""Liveness and readiness for the load balancer: plain Django views, no auth, no rate limits.

/healthz says the process answers, touching nothing else. /readyz checks the database, the
cache and the channel layer; only a database outage makes the instance unready (503), because
Rankly keeps serving while Redis is away, only degraded.
"""

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps
from time import monotonic, perf_counter
from typing import Any

import redis
from channels.layers import get_channel_layer
from channels_redis.utils import decode_hosts
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from config.redis import redis_status

# A readiness probe must answer well before the balancer's own timeout.
REDIS_PROBE_TIMEOUT_SECONDS = 1.0
# The cache's own socket timeouts are the cache configuration's business; the probe waits at
# most this long for them, in a worker thread it can abandon.
CACHE_PROBE_TIMEOUT_SECONDS = 2.0
_cache_probe = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz-cache")


def probe(view: Callable[[HttpRequest], JsonResponse]) -> Callable[[HttpRequest], JsonResponse]:
    """GET and HEAD only, never cached, and no CSRF check standing in front of the answer."""

    @csrf_exempt
    @never_cache
    @wraps(view)
    def wrapped(request: HttpRequest) -> JsonResponse:
        if request.method not in ("GET", "HEAD"):
            body = {
                "detail": f'Method "{request.method}" not allowed.',
                "code": "method_not_allowed",
            }
            response = JsonResponse(body, status=405)
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)

    return wrapped


@probe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_check() -> str:
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _cache_check() -> str:
    key, value = f"readyz:{settings.INSTANCE_ID}", secrets.token_hex(4)
    cache.set(key, value, timeout=30)
    if cache.get(key) != value:
        # django-redis with IGNORE_EXCEPTIONS turns an outage into silent misses.
        raise ConnectionError("the cache did not return the value just written")
    if redis_status() == "degraded":
        # The resilient backend answered from its local fallback: Redis itself is down.
        raise ConnectionError("Redis is unreachable; the cache is serving from local memory")
    backend: str = settings.CACHES["default"]["BACKEND"]
    return backend.rsplit(".", 1)[-1]


# One client (and so one connection pool) per Redis host for the life of the process: a probe
# that connected afresh each time left a TIME_WAIT socket behind per call.
_redis_clients: dict[str, redis.Redis] = {}


def _redis_client(host: dict[str, Any]) -> redis.Redis:
    key = host.get("address") or f"{host.get('host', 'localhost')}:{host.get('port', 6379)}"
    if key in _redis_clients:
        return _redis_clients[key]
    timeout = REDIS_PROBE_TIMEOUT_SECONDS
    if "address" in host:
        client = redis.Redis.from_url(
            host["address"], socket_connect_timeout=timeout, socket_timeout=timeout
        )
    else:
        client = redis.Redis(
            host=host.get("host", "localhost"),
            port=host.get("port", 6379),
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
        )
    return _redis_clients.setdefault(key, client)


def _channel_layer_check() -> str:
    config = settings.CHANNEL_LAYERS["default"]
    # Building the layer surfaces a broken configuration.
    get_channel_layer()
    if config["BACKEND"].startswith("channels_redis."):
        # Ping each Redis host directly rather than sending a message into the layer; this
        # covers the core and the pub/sub layers alike.
        for host in decode_hosts(config.get("CONFIG", {}).get("hosts")):
            _redis_client(host).ping()
    backend: str = config["BACKEND"]
    return backend.rsplit(".", 1)[-1]


def _cache_check_bounded() -> str:
    return _cache_probe.submit(_cache_check).result(timeout=CACHE_PROBE_TIMEOUT_SECONDS)


def _run(check: Callable[[], str]) -> dict[str, Any]:
    start = perf_counter()
    try:
        backend = check()
    except Exception as error:
        return {
            "status": "down",
            "error": type(error).__name__,
            "ms": round((perf_counter() - start) * 1000, 1),
        }
    return {"status": "ok", "backend": backend, "ms": round((perf_counter() - start) * 1000, 1)}


# (monotonic time, body, status) of the last readiness answer, shared by this process's threads.
_last_readiness: tuple[float, dict[str, Any], int] | None = None
_readiness_lock = threading.Lock()


@probe
def readyz(request: HttpRequest) -> JsonResponse:
    """The dependencies' state, checked at most once per READYZ_MAX_AGE_SECONDS per process.

    A flood of probes costs one round of checks a second; concurrent probes wait for that round
    rather than each starting their own.
    """
    global _last_readiness
    with _readiness_lock:
        last = _last_readiness
        if last is None or monotonic() - last[0] >= settings.READYZ_MAX_AGE_SECONDS:
            last = _last_readiness = (monotonic(), *_readiness())
    _, body, code = last
    return JsonResponse(body, status=code)


def _readiness() -> tuple[dict[str, Any], int]:
    checks = {
        "database": _run(_database_check),
        "cache": _run(_cache_check_bounded),
        "channel_layer": _run(_channel_layer_check),
    }
    if checks["database"]["status"] != "ok":
        status, code = "down", 503
    elif any(check["status"] != "ok" for check in checks.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return {"status": status, "instance": settings.INSTANCE_ID, "checks": checks}, code
