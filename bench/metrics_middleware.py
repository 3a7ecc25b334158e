"""How much the metrics middleware adds to a request.

    .venv/bin/python bench/metrics_middleware.py [--requests 200000]

1. The middleware alone: a bare view called directly, then through MetricsMiddleware; the
   difference per call is what the middleware costs.
2. The full Django stack: GET /healthz through the test client with and without the middleware,
   for scale (that difference is within the noise of the whole request).
"""

import argparse
import os
import statistics
import sys
from pathlib import Path
from time import perf_counter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import Client, RequestFactory, override_settings  # noqa: E402

from config.metrics import MetricsMiddleware  # noqa: E402


def per_call_us(call, request, n: int, rounds: int = 5) -> float:
    """Median over several rounds of the time per call, in microseconds."""
    timings = []
    for _ in range(rounds):
        start = perf_counter()
        for _ in range(n):
            call(request)
        timings.append((perf_counter() - start) / n * 1e6)
    return statistics.median(timings)


def middleware_alone(n: int) -> None:
    response = HttpResponse(b"{}")

    def view(request):
        return response

    request = RequestFactory().get("/healthz")
    bare = per_call_us(view, request, n)
    wrapped = per_call_us(MetricsMiddleware(view), request, n)
    print(f"middleware alone   bare view {bare:7.2f} µs   with middleware {wrapped:7.2f} µs")
    print(f"                   overhead {wrapped - bare:.2f} µs per request")


def full_stack(n: int, rounds: int = 7) -> None:
    from django.conf import settings

    without = [m for m in settings.MIDDLEWARE if m != "config.metrics.MetricsMiddleware"]
    with override_settings(MIDDLEWARE=without):
        # A client loads its middleware chain on its first request and keeps it.
        bare_client = Client()
        bare_client.get("/healthz")
    metrics_client = Client()
    bare, with_mw = [], []
    # Interleaved rounds in alternating order, so drift on a shared machine hits both alike.
    for i in range(rounds):
        sides = [(bare_client, bare), (metrics_client, with_mw)]
        for client, timings in sides if i % 2 else reversed(sides):
            timings.append(per_call_us(client.get, "/healthz", n, rounds=1))
    bare_us, with_us = statistics.median(bare), statistics.median(with_mw)
    print(
        f"GET /healthz       without {bare_us:7.1f} µs   with {with_us:7.1f} µs   "
        f"difference {with_us - bare_us:+.1f} µs (within the noise of a whole request)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    middleware_alone(args.requests)
    full_stack(max(args.requests // 100, 500))
