"""The operations history: samples of cumulative counters, and windows drawn from them."""

import pytest
from django.test import override_settings

from config import ops_history
from config.metrics import INSTANCE

BOUNDS = [0.01, 0.1, 1.0, float("inf")]


def sample(ts: float, *, counts: list[float], errors: int = 0, instance: str = "a", **extra):
    """A sample whose histogram holds `counts` requests per bucket (not cumulative)."""
    cumulative, running = [], 0.0
    for bound, count in zip(BOUNDS, counts, strict=True):
        running += count
        cumulative.append([bound, running])
    return {
        "ts": ts,
        "instance": instance,
        "buckets": cumulative,
        "responses": {"2xx": int(running) - errors, "4xx": errors, "5xx": 0},
        "cache_hits": extra.get("hits", 0),
        "cache_misses": extra.get("misses", 0),
        "websockets_open": extra.get("sockets", 0),
    }


@pytest.fixture(autouse=True)
def _fresh_history(monkeypatch):
    """This process's history starts empty, and its next request takes a sample."""
    monkeypatch.setattr(ops_history, "_local", ops_history.deque())
    monkeypatch.setattr(ops_history, "_next_sample", 0.0)


def test_a_spike_shows_in_the_last_minute_however_long_the_instance_ran():
    # An hour of 1,000 fast requests, then 60 slow ones in the last minute.
    quiet = sample(0, counts=[1000, 0, 0, 0])
    before = sample(3540, counts=[1000, 0, 0, 0])
    spike = sample(3600, counts=[1000, 0, 60, 0], errors=30)

    [*_, last] = ops_history.series_of([quiet, before, spike], window=60)

    assert last["request_rate"] == 1.0
    assert last["p50_ms"] > 100
    assert last["error_4xx_percent"] == 50.0


def test_each_point_covers_the_window_before_it_only():
    samples = [sample(t, counts=[t, 0, 0, 0]) for t in range(0, 301, 10)]

    points = ops_history.series_of(samples, window=60)

    assert len(points) == len(samples) - 1
    assert [p["request_rate"] for p in points[-3:]] == [1.0, 1.0, 1.0]
    assert points[-1]["ts"] == 300


def test_cache_hit_rate_counts_the_windows_lookups():
    points = ops_history.series_of(
        [
            sample(0, counts=[0] * 4, hits=900, misses=100),
            sample(60, counts=[0] * 4, hits=910, misses=190),
        ],
        window=60,
    )

    assert points[-1]["cache_hit_percent"] == 10.0
    assert points[-1]["request_rate"] == 0.0


def test_instances_are_summed_per_step():
    history = {
        "a": [
            sample(0, counts=[0] * 4, instance="a"),
            sample(60, counts=[60, 0, 0, 0], instance="a", sockets=3),
        ],
        "b": [
            sample(2, counts=[0] * 4, instance="b", sockets=3),
            sample(62, counts=[0, 120, 0, 0], instance="b", sockets=5),
        ],
    }

    summed = ops_history.sum_of(history, step=5)
    [*_, last] = ops_history.series_of(summed, window=60)

    # 60 + 120 requests over a minute, within a step of the instances' sampling moments.
    assert last["request_rate"] == pytest.approx(3.0, rel=0.1)
    assert last["websockets_open"] == 8


@override_settings(OPS_SAMPLE_SECONDS=0)
def test_requests_record_samples_of_this_instance(client):
    for _ in range(3):
        client.get("/healthz")

    history = ops_history.history_read()

    assert len(history[INSTANCE]) >= 3
    assert history[INSTANCE][-1]["responses"]["2xx"] >= 3


@pytest.mark.redis
def test_the_history_is_shared_through_redis_and_stale_instances_drop_out():
    import time

    # An hour ahead, so that samples of the processes that ran earlier tests are out of range.
    now = time.time() + 3600
    for instance, last in (("live-1", now), ("stopped-1", now - 120)):
        ops_history.sample_record(sample(last - 10, counts=[0] * 4, instance=instance))
        ops_history.sample_record(sample(last, counts=[20, 0, 0, 0], instance=instance))

    figures = ops_history.ops_figures(window=60, now=now)

    assert set(ops_history.history_read(now=now)) == {"live-1", "stopped-1"}
    assert set(figures["instances"]) == {"live-1"}
    assert figures["instances"]["live-1"][-1]["request_rate"] == 2.0
