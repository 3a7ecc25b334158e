"""Per-request cost of the rate-limit middleware: unlimited path, shared store, store down.

.venv/bin/python bench/ratelimit_middleware.py                 # locmem
UPSTASH_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/ratelimit_middleware.py
"""

import logging
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")

import django

django.setup()

from django.contrib.auth.models import AnonymousUser  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402

from config.ratelimit import RateLimitMiddleware  # noqa: E402

REQUESTS = 2000
# High enough that no request is refused: the figure is the cost of counting.
UNLIMITED_RATES = {group: (10**9, 60) for group in ("auth", "api", "rankings", "admin")}


def per_request_us(path: str) -> float:
    middleware = RateLimitMiddleware(lambda request: HttpResponse())
    factory = RequestFactory()
    started = time.perf_counter()
    for n in range(REQUESTS):
        request = factory.get(path, REMOTE_ADDR=f"10.0.{n % 250}.{n % 199}")
        request.user = AnonymousUser()
        middleware(request)
    return (time.perf_counter() - started) / REQUESTS * 1e6


def closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def main() -> None:
    from django.conf import settings

    # The store-down case logs one traceback per retry delay; the figures are the point here.
    logging.getLogger("config.ratelimit").setLevel(logging.ERROR)

    store = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    dead = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    with override_settings(RATELIMIT_RATES=UNLIMITED_RATES):
        print(f"{REQUESTS} requests per case, store {store}")
        print(f"unlimited path       {per_request_us('/healthz'):8.1f} us/request")
        print(f"limited, shared store{per_request_us('/api/products/'):8.1f} us/request")
        with override_settings(CACHES=dead):
            print(f"limited, store down  {per_request_us('/api/products/'):8.1f} us/request")


if __name__ == "__main__":
    main()
