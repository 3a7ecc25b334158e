"""How the benchmark reads the server's cache counters and judges its targets."""

import random

from bench.profile import layer_of, summarise
from bench.run import SCENARIOS, evaluate, hit_rates, pacing_seconds, prometheus_cache_counts
from bench.scenarios import Catalog
from bench.seed import FULL, SMOKE

METRICS = """\
# HELP rankly_cache_requests_total Cache lookups by type and result.
# TYPE rankly_cache_requests_total counter
rankly_cache_requests_total{type="leaderboard",result="hit"} 90.0
rankly_cache_requests_total{type="leaderboard",result="miss"} 10.0
rankly_cache_requests_created{type="leaderboard",result="hit"} 1.7e9
rankly_cache_hits_total{cache_type="products"} 3.0
rankly_cache_misses_total{cache_type="products"} 1.0
rankly_http_requests_total{status="2xx"} 500.0
"""


def test_prometheus_cache_counters_are_read_by_type_and_result():
    assert prometheus_cache_counts(METRICS) == {
        "leaderboard": {"hits": 90.0, "misses": 10.0},
        "products": {"hits": 3.0, "misses": 1.0},
    }


def test_hit_rates_count_only_what_happened_between_the_snapshots():
    before = {"leaderboard": {"hits": 90, "misses": 10}}
    after = {"leaderboard": {"hits": 189, "misses": 11}, "products": {"hits": 0, "misses": 2}}

    rates = hit_rates(before, after)

    assert rates["leaderboard"] == {"hits": 99, "misses": 1, "hit_rate": 0.99}
    assert rates["products"]["hit_rate"] == 0.0
    assert rates["all"] == {"hits": 99, "misses": 3, "hit_rate": round(99 / 102, 4)}


def test_writes_with_errors_never_meet_the_latency_target():
    result = {
        "scenarios": {
            "cached_reads": {"ratio_to_healthz": 1.1},
            "writes_paced": {"p99_ms": 50.0, "errors": 3},
        },
        "cache_during_mix": {"rates": {}},
        "server": {"peak_memory_mb": 300.0},
    }

    targets = evaluate(result)

    assert targets["cached_reads_ratio"]["met"] is True
    assert targets["writes_paced_p99_ms"]["met"] is False
    assert targets["peak_memory_mb"]["met"] is False
    assert "mix_cache_hit_rate" not in targets


def test_ranking_payloads_name_distinct_products_of_their_category():
    for scale in (FULL, SMOKE):
        catalog = Catalog(scale)
        names = [catalog.category(index) for index in range(scale.categories)]
        rng = random.Random(7)
        for _ in range(50):
            payload = catalog.ranking_payload(rng)
            index = names.index(payload["category"])
            ids = payload["product_ids"]
            assert 3 <= len(ids) <= 10
            assert len(set(ids)) == len(ids)
            # The seeder puts product p in category (p - 1) % categories.
            assert all((p - 1) % scale.categories == index for p in ids)


def test_profile_samples_are_charged_to_the_innermost_known_layer(tmp_path):
    profile = tmp_path / "profile.txt"
    profile.write_text(
        "<module> (daphne/cli.py:1);run (asgiref/sync.py:2);view (rest_framework/views.py:3);"
        "execute (psycopg/cursor.py:4) 3\n"
        "<module> (daphne/cli.py:1);run (asgiref/sync.py:2);to_representation "
        "(rest_framework/serializers.py:5);get (django_redis/client/default.py:6) 1\n"
    )

    summary = summarise(profile)

    assert summary["samples"] == 4
    assert summary["layers"] == {
        "database driver (psycopg)": 0.75,
        "cache client (django-redis, redis-py)": 0.25,
    }
    assert layer_of(["f (asgiref/sync.py:1)", "g (somewhere/else.py:2)"]) == (
        "sync/async hops (asgiref, thread pools)"
    )


def test_paced_scenarios_offer_16_a_second_and_80_percent_of_the_measured_capacity():
    scenarios = {scenario.name: scenario for scenario in SCENARIOS}
    measured = {"writes": {"rps": 50.0}}

    def period(name: str, duration: int = 30) -> float | None:
        return pacing_seconds(scenarios[name], users=32, results=measured, duration=duration)

    assert 32 / period("writes_paced") == 16.0
    assert 32 / period("writes_80") == 40.0
    assert period("writes") is None
    # A short run paces every user at least twice within it.
    assert period("writes_paced", duration=3) == 1.5
