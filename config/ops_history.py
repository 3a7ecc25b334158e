"""The last hour of every instance's counters, kept in Redis, and the figures drawn from them.

Each instance appends a sample of its cumulative counters (requests per latency bucket,
responses per status class, cache hits and misses, open sockets) at most every
OPS_SAMPLE_SECONDS, from the request path (load-balancer health checks keep an idle instance
sampling). Rates and percentiles over a window are differences of two samples, so a spike shows
at once instead of being averaged into everything since the process started. Without Redis the
samples stay in this process, which is then the only instance.
"""

import json
import threading
import time
from collections import deque
from typing import Any

from django.conf import settings
from django.core.cache import cache
from redis import Redis

from config import metrics
from config.caching import cache_stats
from config.redis import redis_call, redis_is_configured

HISTORY_SECONDS = 3600
# An instance that has not sampled for this long is no longer live (stopped or scaled in).
LIVE_SECONDS = 30

_lock = threading.Lock()
_next_sample = 0.0
_local: deque[dict[str, Any]] = deque()


def _history_key(instance: str) -> str:
    # Under the cache's key prefix, so that a bench run or a test keeps a history of its own.
    return cache.make_key(f"ops:history:{instance}")


def _instances_key() -> str:
    return cache.make_key("ops:instances")


def sample_take() -> dict[str, Any]:
    """This instance's cumulative counters now."""
    hits = misses = 0
    for counts in cache_stats().values():
        hits += counts["hits"]
        misses += counts["misses"]
    return {
        "ts": time.time(),
        "instance": metrics.INSTANCE,
        "buckets": metrics.latency_buckets(),
        "responses": metrics.response_counts(),
        "cache_hits": hits,
        "cache_misses": misses,
        "websockets_open": metrics.open_socket_count(),
    }


def sample_record(sample: dict[str, Any]) -> None:
    """Append a sample to its instance's hour of history, and mark the instance live."""
    cutoff = sample["ts"] - HISTORY_SECONDS
    if not redis_is_configured():
        with _lock:
            _local.append(sample)
            while _local and _local[0]["ts"] < cutoff:
                _local.popleft()
        return
    key = _history_key(sample["instance"])

    def write(redis: Redis) -> None:
        pipe = redis.pipeline(transaction=False)
        pipe.zadd(key, {json.dumps(sample): sample["ts"]})
        pipe.zremrangebyscore(key, "-inf", cutoff)
        pipe.expire(key, HISTORY_SECONDS + 60)
        pipe.zadd(_instances_key(), {sample["instance"]: sample["ts"]})
        pipe.zremrangebyscore(_instances_key(), "-inf", cutoff)
        pipe.execute()

    redis_call(write, default=None)


def sample_due(now: float) -> bool:
    return now >= _next_sample


def sample_if_due(now: float) -> None:
    """Called after every request: records a sample when OPS_SAMPLE_SECONDS have passed."""
    global _next_sample
    if now < _next_sample:
        return
    with _lock:
        if now < _next_sample:
            return
        _next_sample = now + settings.OPS_SAMPLE_SECONDS
    sample_record(sample_take())


def history_read(*, now: float | None = None) -> dict[str, list[dict[str, Any]]]:
    """The last hour of samples of every instance seen in it, oldest first, by instance."""
    now = now or time.time()
    cutoff = now - HISTORY_SECONDS
    if not redis_is_configured():
        with _lock:
            samples = [s for s in _local if s["ts"] >= cutoff]
        return {samples[0]["instance"]: samples} if samples else {}

    def read(redis: Redis) -> dict[str, list[dict[str, Any]]]:
        members = redis.zrangebyscore(_instances_key(), cutoff, "+inf")
        instances = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
        pipe = redis.pipeline(transaction=False)
        for instance in instances:
            pipe.zrangebyscore(_history_key(instance), cutoff, "+inf")
        return {
            instance: [json.loads(raw) for raw in rows]
            for instance, rows in zip(instances, pipe.execute(), strict=True)
            if rows
        }

    return redis_call(read, default={})


def _quantile(buckets: list[tuple[float, float]], quantile: float) -> float | None:
    seconds = metrics.histogram_quantile(buckets, quantile)
    return None if seconds is None else round(seconds * 1000, 2)


def _window(newer: dict[str, Any], older: dict[str, Any] | None) -> dict[str, Any]:
    """Figures over the time between two samples of one instance (or of the sum of several)."""
    older = older or {
        "ts": newer["ts"],
        "buckets": [[bound, 0] for bound, _ in newer["buckets"]],
        "responses": dict.fromkeys(newer["responses"], 0),
        "cache_hits": 0,
        "cache_misses": 0,
    }
    seconds = newer["ts"] - older["ts"]
    buckets = [
        (bound, max(0.0, count - before))
        for (bound, count), (_, before) in zip(newer["buckets"], older["buckets"], strict=True)
    ]
    responses = {
        cls: max(0, count - older["responses"].get(cls, 0))
        for cls, count in newer["responses"].items()
    }
    answered = sum(responses.values())
    hits = max(0, newer["cache_hits"] - older["cache_hits"])
    lookups = hits + max(0, newer["cache_misses"] - older["cache_misses"])

    def percent(part: float, whole: float) -> float | None:
        return round(100 * part / whole, 2) if whole else None

    return {
        "ts": newer["ts"],
        "request_rate": round(buckets[-1][1] / seconds, 3) if seconds > 0 else None,
        "p50_ms": _quantile(buckets, 0.50),
        "p95_ms": _quantile(buckets, 0.95),
        "p99_ms": _quantile(buckets, 0.99),
        "error_4xx_percent": percent(responses.get("4xx", 0), answered),
        "error_5xx_percent": percent(responses.get("5xx", 0), answered),
        "cache_hit_percent": percent(hits, lookups),
        "websockets_open": newer["websockets_open"],
    }


def series_of(samples: list[dict[str, Any]], *, window: float) -> list[dict[str, Any]]:
    """One point per sample: its figures over the `window` seconds before it (or since the
    first sample, while the history is shorter than the window)."""
    points = []
    start = 0
    for index, sample in enumerate(samples):
        while start + 1 < index and samples[start + 1]["ts"] <= sample["ts"] - window:
            start += 1
        if index == 0:
            continue
        points.append(_window(sample, samples[start]))
    return points


def _summed(rows: list[dict[str, Any]], ts: float) -> dict[str, Any]:
    return {
        "ts": ts,
        "buckets": [
            [bound, sum(row["buckets"][i][1] for row in rows)]
            for i, (bound, _) in enumerate(rows[0]["buckets"])
        ],
        "responses": {
            cls: sum(row["responses"].get(cls, 0) for row in rows) for cls in rows[0]["responses"]
        },
        "cache_hits": sum(row["cache_hits"] for row in rows),
        "cache_misses": sum(row["cache_misses"] for row in rows),
        "websockets_open": sum(row["websockets_open"] for row in rows),
    }


def sum_of(history: dict[str, list[dict[str, Any]]], *, step: float) -> list[dict[str, Any]]:
    """Samples of all instances added up per `step` seconds: each instance's latest sample at
    or before the step's end counts, so instances sampling at different moments line up (to
    within a step: rates of the sum are that much approximate)."""
    if not history:
        return []
    first = min(samples[0]["ts"] for samples in history.values())
    last = max(samples[-1]["ts"] for samples in history.values())
    # Per instance, the index of its next sample not yet counted.
    cursors = dict.fromkeys(history, 0)
    summed = []
    ts = first - first % step
    while ts < last + step:
        rows = []
        for instance, samples in history.items():
            while cursors[instance] < len(samples) and samples[cursors[instance]]["ts"] <= ts:
                cursors[instance] += 1
            if cursors[instance]:
                rows.append(samples[cursors[instance] - 1])
        if rows:
            summed.append(_summed(rows, min(ts, last)))
        ts += step
    return summed


def ops_figures(*, window: float = 60, now: float | None = None) -> dict[str, Any]:
    """The dashboard's figures: per live instance and summed, over `window` seconds each."""
    now = now or time.time()
    history = history_read(now=now)
    live = sorted(i for i, samples in history.items() if samples[-1]["ts"] >= now - LIVE_SECONDS)
    return {
        "window_seconds": window,
        "instances": {i: series_of(history[i], window=window) for i in live},
        "total": series_of(
            sum_of(history, step=max(settings.OPS_SAMPLE_SECONDS, 1.0)), window=window
        ),
    }
