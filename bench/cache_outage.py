"""Request latency of a cached catalogue page with Redis healthy, hung and dead.

    .venv/bin/python bench/cache_outage.py [--requests 200]

Starts a private redis-server on a free port and a throw-away test database, then prints the
median and p95 of `GET /api/products/` through Django's test client in each state, with the
circuit breaker and, for comparison, with a breaker that retries Redis on every call.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"

import django

django.setup()

from django.test import override_settings  # noqa: E402
from django.test.utils import setup_databases, setup_test_environment  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from config.tests.private_redis import private_redis  # noqa: E402

SOCKET_TIMEOUT = 0.5


def caches(url: str, cooldown: float) -> dict:
    return {
        "default": {
            "BACKEND": "config.cache_backend.ResilientRedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"bench-{cooldown}",
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": SOCKET_TIMEOUT,
                "BREAKER_COOLDOWN": cooldown,
            },
        }
    }


def measure(client: APIClient, requests: int) -> str:
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/api/products/")
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    return (
        f"median {statistics.median(timings):7.2f} ms   p95 {p95:7.2f} ms   "
        f"max {timings[-1]:7.2f} ms   n={requests}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    setup_test_environment()
    setup_databases(verbosity=0, interactive=False)
    from products.tests.factories import ProductFactory

    ProductFactory.create_batch(40)
    client = APIClient()
    print(f"socket timeout {SOCKET_TIMEOUT}s; {args.requests} requests per state")
    for cooldown, label in ((5.0, "breaker, 5 s cool-down"), (0.0, "no cool-down")):
        with private_redis() as server, override_settings(CACHES=caches(server.url, cooldown)):
            client.get("/api/products/")
            print(f"[{label}] Redis healthy       {measure(client, args.requests)}")
            server.pause()
            few = args.requests if cooldown else 10
            print(f"[{label}] Redis hung          {measure(client, few)}")
            server.resume()
            server.kill()
            print(f"[{label}] Redis dead          {measure(client, args.requests)}")


if __name__ == "__main__":
    main()
