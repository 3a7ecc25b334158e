"""Per-instance metrics in Prometheus format, and a JSON-ready snapshot of the same figures.

Counters the request path updates are plain prometheus-client metrics with their label children
bound once, so the middleware costs two lock-protected additions per request. Figures kept
elsewhere (cache hits, open sockets, the connection pool) are read only when scraped.
"""

# Pinned: Django==5.2.19 (reads DatabaseWrapper._connection_pools; requirements.txt).
import functools
import hmac
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from time import perf_counter, time
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connections
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis import Redis
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from config import ops_history
from config.caching import cache_stats

logger = logging.getLogger("rankly.db")

INSTANCE = settings.INSTANCE_ID
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

# Fine below 100 ms, where cached reads live, so p95 and p99 can be read to a few ms.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1,
    0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

REQUEST_LATENCY = Histogram(
    "rankly_http_request_duration_seconds",
    "Time from the first middleware receiving a request to the response leaving it.",
    ["instance"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
RESPONSES = Counter(
    "rankly_http_responses",
    "HTTP responses by status class.",
    ["instance", "status_class"],
    registry=REGISTRY,
)
SLOW_QUERIES = Counter(
    "rankly_db_slow_queries",
    "SQL statements that took longer than SLOW_QUERY_SECONDS.",
    ["instance"],
    registry=REGISTRY,
)

FAST_PATH = Counter(
    "rankly_fast_path_requests",
    "Requests on cached routes by route and outcome: hit (a 200 answered before Django), "
    "not_modified (a 304 answered before Django) or django.",
    ["instance", "route", "outcome"],
    registry=REGISTRY,
)

# Open WebSockets are counted by the transport, which registers its counter at start-up.
_socket_counters: list[Callable[[], int]] = []


def open_socket_counter_register(*, counter: Callable[[], int]) -> None:
    if counter not in _socket_counters:
        _socket_counters.append(counter)


def open_socket_count() -> int:
    return sum(counter() for counter in _socket_counters)


# Background jobs: the app that keeps them registers a reader of their figures at start-up.
JOB_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class JobFigures:
    # (kind, status) -> jobs
    counts: dict[tuple[str, str], int]
    # kind -> durations in seconds of the finished jobs
    durations: dict[str, list[float]]


_job_figures: list[Callable[[], JobFigures]] = []


def job_figures_register(*, reader: Callable[[], JobFigures]) -> None:
    if reader not in _job_figures:
        _job_figures.append(reader)


def queue_lengths() -> dict[str, int | None]:
    """Messages waiting per queue in the Redis broker ({} without one; None when unreadable)."""
    from config.celery import app

    if app.conf.task_always_eager or not app.conf.broker_url.startswith("redis"):
        return {}
    lengths: dict[str, int | None] = {}
    client = _broker_client(app.conf.broker_url)
    prefix = app.conf.broker_transport_options.get("global_keyprefix", "")
    for queue in settings.JOB_QUEUES:
        try:
            # Kombu keeps a queue's priority levels in lists named queue, queue\x06\x163, ...
            name = f"{prefix}{queue}"
            keys = [name, *(f"{name}\x06\x16{level}" for level in range(1, 10))]
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.llen(key)
                lengths[queue] = sum(pipe.execute())
        except Exception:
            lengths[queue] = None
    return lengths


@functools.cache
def _broker_client(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


_latency = REQUEST_LATENCY.labels(instance=INSTANCE)
_responses = {n: RESPONSES.labels(INSTANCE, name) for n, name in enumerate(STATUS_CLASSES, 1)}
_slow_queries = SLOW_QUERIES.labels(instance=INSTANCE)


def _observe(seconds: float, status_code: int) -> None:
    _latency.observe(seconds)
    counter = _responses.get(status_code // 100)
    if counter is not None:
        counter.inc()


# The fast path's counters by (route, outcome), bound once: `labels` takes a lock and checks
# its arguments on every call.
_fast_path_counters: dict[tuple[str, str], Any] = {}


def fast_path_observe(
    *, route: str, outcome: str, seconds: float | None = None, status: int = 200
) -> None:
    """A request on a cached route (config.fastpath); one answered there (`seconds` given) also
    counts as MetricsMiddleware counts every request Django answers."""
    counter = _fast_path_counters.get((route, outcome))
    if counter is None:
        counter = _fast_path_counters[route, outcome] = FAST_PATH.labels(INSTANCE, route, outcome)
    counter.inc()
    if seconds is not None:
        _observe(seconds, status)


class MetricsMiddleware:
    """Outermost middleware: times every request and counts its status class."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        start = perf_counter()
        response = self.get_response(request)
        _observe(perf_counter() - start, response.status_code)
        ops_history.sample_if_due(time())
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        start = perf_counter()
        response: HttpResponse = await self.get_response(request)
        _observe(perf_counter() - start, response.status_code)
        if ops_history.sample_due(time()):
            # The sample may write to Redis: off the event loop.
            await sync_to_async(ops_history.sample_if_due)(time())
        return response


# --- Slow queries ---------------------------------------------------------------------------
def slow_query_wrapper(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Count and log a statement slower than SLOW_QUERY_SECONDS, with its SQL (no parameters,
    which may hold personal data) and its duration."""
    start = perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = perf_counter() - start
        if elapsed >= settings.SLOW_QUERY_SECONDS:
            _slow_queries.inc()
            alias = context["connection"].alias
            logger.warning("🐢 Slow query on %s took %.3f s: %s", alias, elapsed, sql[:2000])


def slow_query_log_install(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: wrap every statement of the connection, once."""
    if slow_query_wrapper not in connection.execute_wrappers:
        # First in the list is outermost, and Django's execute_wrapper() pops the last one.
        connection.execute_wrappers.insert(0, slow_query_wrapper)


# --- Figures read at scrape time ------------------------------------------------------------
def database_pool_stats() -> dict[str, dict[str, int]]:
    """psycopg pool figures per database alias, for pools this process has opened."""
    stats = {}
    for alias in connections:
        # The class-level registry of opened pools: reading `.pool` would create one.
        pools = getattr(type(connections[alias]), "_connection_pools", {})
        pool = pools.get(alias)
        if pool is not None:
            stats[alias] = pool.get_stats()
    return stats


POOL_FIGURES = {
    "pool_size": "Connections the pool holds, in use or idle.",
    "pool_available": "Idle connections ready in the pool.",
    "pool_max": "Largest size the pool may grow to.",
    "requests_waiting": "Requests waiting for a connection now.",
}


class RanklyCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        hits = CounterMetricFamily(
            "rankly_cache_hits", "Cache hits per type.", labels=["instance", "cache_type"]
        )
        misses = CounterMetricFamily(
            "rankly_cache_misses", "Cache misses per type.", labels=["instance", "cache_type"]
        )
        for cache_type, counts in cache_stats().items():
            hits.add_metric([INSTANCE, cache_type], counts["hits"])
            misses.add_metric([INSTANCE, cache_type], counts["misses"])
        yield hits
        yield misses

        sockets = GaugeMetricFamily(
            "rankly_websockets_open", "WebSockets open on this instance.", labels=["instance"]
        )
        sockets.add_metric([INSTANCE], open_socket_count())
        yield sockets

        families = {
            key: GaugeMetricFamily(f"rankly_db_{key}", text, labels=["instance", "database"])
            for key, text in POOL_FIGURES.items()
        }
        for alias, stats in database_pool_stats().items():
            for key, family in families.items():
                family.add_metric([INSTANCE, alias], stats.get(key, 0))
        yield from families.values()
        yield from _job_families()


def _job_families() -> Iterator[Metric]:
    queues = GaugeMetricFamily(
        "rankly_queue_length", "Messages waiting in the broker per queue.", labels=["queue"]
    )
    for queue, length in queue_lengths().items():
        if length is not None:
            queues.add_metric([queue], length)
    yield queues
    jobs = GaugeMetricFamily(
        "rankly_jobs", "Background jobs by kind and status (outcome).", labels=["kind", "status"]
    )
    durations = HistogramMetricFamily(
        "rankly_job_duration_seconds", "How long finished jobs ran, per kind.", labels=["kind"]
    )
    for read in _job_figures:
        try:
            figures = read()
        except Exception:
            logger.warning("Job figures unreadable", exc_info=True)
            continue
        for (kind, status), count in sorted(figures.counts.items()):
            jobs.add_metric([kind, status], count)
        for kind, seconds in sorted(figures.durations.items()):
            buckets = [
                (str(bound), sum(1 for s in seconds if s <= bound))
                for bound in JOB_DURATION_BUCKETS
            ]
            buckets.append(("+Inf", len(seconds)))
            durations.add_metric([kind], buckets, sum(seconds))
    yield jobs
    yield durations


REGISTRY.register(RanklyCollector())


# --- The snapshot the admin API returns -----------------------------------------------------
def histogram_quantile(buckets: list[tuple[float, float]], quantile: float) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding the rank."""
    total = buckets[-1][1] if buckets else 0
    if total == 0:
        return None
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in buckets:
        if count >= rank:
            if upper_bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1
            return lower_bound + (upper_bound - lower_bound) * share
        lower_bound, lower_count = upper_bound, count
    return lower_bound


def _samples(metric: Any) -> list[Any]:
    return [sample for family in metric.collect() for sample in family.samples]


def latency_buckets() -> list[tuple[float, float]]:
    """This instance's latency histogram: (upper bound in seconds, cumulative count) pairs."""
    return [
        (float(sample.labels["le"]), sample.value)
        for sample in _samples(REQUEST_LATENCY)
        if sample.name.endswith("_bucket") and sample.labels.get("instance") == INSTANCE
    ]


def response_counts() -> dict[str, int]:
    """This instance's responses by status class since it started."""
    responses = dict.fromkeys(STATUS_CLASSES, 0)
    for sample in _samples(RESPONSES):
        if sample.name.endswith("_total") and sample.labels.get("instance") == INSTANCE:
            responses[sample.labels["status_class"]] = int(sample.value)
    return responses


def metrics_snapshot() -> dict[str, Any]:
    """This instance's figures since it started: latency, status classes, cache, sockets, pool."""
    buckets, latency_sum, latency_count = latency_buckets(), 0.0, 0.0
    for sample in _samples(REQUEST_LATENCY):
        if sample.labels.get("instance") != INSTANCE:
            continue
        if sample.name.endswith("_sum"):
            latency_sum = sample.value
        elif sample.name.endswith("_count"):
            latency_count = sample.value

    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds * 1000, 2)

    responses = response_counts()

    cache = {}
    for cache_type, counts in cache_stats().items():
        lookups = counts["hits"] + counts["misses"]
        cache[cache_type] = {**counts, "hit_rate": counts["hits"] / lookups if lookups else None}

    return {
        "instance": INSTANCE,
        "requests": {
            "count": int(latency_count),
            "average_ms": ms(latency_sum / latency_count) if latency_count else None,
            "p50_ms": ms(histogram_quantile(buckets, 0.50)),
            "p95_ms": ms(histogram_quantile(buckets, 0.95)),
            "p99_ms": ms(histogram_quantile(buckets, 0.99)),
        },
        "responses": responses,
        "cache": cache,
        "websockets_open": open_socket_count(),
        "slow_queries": sum(
            int(sample.value)
            for sample in _samples(SLOW_QUERIES)
            if sample.name.endswith("_total") and sample.labels.get("instance") == INSTANCE
        ),
        "database_pool": {
            alias: {key: stats.get(key, 0) for key in POOL_FIGURES}
            for alias, stats in database_pool_stats().items()
        },
    }


# --- GET /metrics ---------------------------------------------------------------------------
METRICS_TOKEN_AUTH = "metrics-token"


class MetricsTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <METRICS_TOKEN>`, for the Prometheus scraper."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, str] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        token = settings.METRICS_TOKEN.encode()
        if len(header) != 2 or not token or not hmac.compare_digest(header[1], token):
            raise exceptions.AuthenticationFailed("Invalid metrics token.")
        return AnonymousUser(), METRICS_TOKEN_AUTH

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="metrics"'


class IsScraperOrEmployee(permissions.BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.auth == METRICS_TOKEN_AUTH:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class MetricsView(APIView):
    """This instance's metrics in the Prometheus text format."""

    authentication_classes = [
        MetricsTokenAuthentication,
        *APIView.settings.DEFAULT_AUTHENTICATION_CLASSES,
    ]
    permission_classes = [IsScraperOrEmployee]
    throttle_classes = []
    schema = None

    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
