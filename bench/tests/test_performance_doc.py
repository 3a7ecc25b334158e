"""docs/performance.md is rendered from a benchmark result, every figure from the JSON."""

import json

from bench.report import FAST_PATH_ROUTES, performance_doc_write, performance_markdown
from config.fastpath import ROUTES

RESULT = {
    "started_at": "2031-02-03T04:05:06+00:00",
    "commit": "abc1234",
    "machine": {
        "cpu": "Test CPU",
        "cores": 3,
        "memory_gb": 7.5,
        "python": "3.11.9",
        "load_average_at_start": [0.25, 0.5, 0.5],
        "load_average_at_end": [1.75, 1.0, 0.5],
    },
    "settings": {"users": 12, "duration_s": 9, "server": "one test server"},
    "seed": {"seconds": 3.5, "rows": {"accounts_user": 4321, "products_product": 77}},
    "scenarios": {
        "healthz": {
            "description": "the bare server",
            "rps": 812.3,
            "p50_ms": 11.0,
            "p95_ms": 41.0,
            "p99_ms": 61.0,
            "errors": 0,
            "ratio_to_healthz": 1.0,
            "server_cpu_ms_per_request": 0.87,
            "db_connections_max": 3,
            "rss_mb_max": 99.4,
        },
        "writes": {
            "description": "signed-in submissions",
            "rps": 43.2,
            "p50_ms": 333.0,
            "p95_ms": 444.0,
            "p99_ms": 555.0,
            "errors": 2,
            "ratio_to_healthz": 0.05,
            "ratio_to_floor": 0.04,
            "offered_rps": 16.0,
            "server_cpu_ms_per_request": 17.25,
            "db_connections_max": 14,
            "rss_mb_max": 123.0,
            "load_generator_cores": 0.31,
            "server_cores": 0.93,
            "machine_busy_cores": 1.87,
            "redis_cpu_ms_per_request": 0.046,
        },
    },
    "cache_during_mix": {
        "rates": {"products": {"hits": 987, "misses": 13, "hit_rate": 0.987}},
    },
    "server": {"peak_memory_mb": 123.4, "processes": 2, "write_capacity_per_core": 21.6},
    "targets": {
        "writes_p99_ms": {"value": 555.0, "target": "< 200", "met": False},
        "peak_memory_mb": {"value": 123.4, "target": "< 250", "met": True},
    },
}


def test_every_figure_of_the_result_appears_in_the_doc():
    doc = performance_markdown(RESULT)

    assert "2031-02-03T04:05:06+00:00" in doc
    assert "`abc1234`" in doc
    assert "Test CPU, 3 cores, 7.5 GB, Python 3.11.9" in doc
    assert "load average 0.25 at start, 1.75 at end" in doc
    assert "12 users, 9 s per scenario" in doc
    assert "Seeded in 3.5 s: 4,321 accounts_user, 77 products_product." in doc
    assert (
        "| `healthz` | max | 812.3 | 11 | 41 | 61 | 0 | 1.00 | - | 0.87 | 3 | 99 | - | - | - | - |"
        in doc
    )
    assert (
        "| `writes` | 16.0 | 43.2 | 333 | 444 | 555 | 2 | 0.05 | 0.04 | 17.25 | 14 | 123 | 0.31 "
        "| 0.93 | 1.87 | 0.046 |" in doc
    )
    assert "Write capacity: 21.6 submissions a second per core used" in doc
    assert "| `writes` | signed-in submissions |" in doc
    assert "| products | 98.7% | 987 | 13 |" in doc
    assert "Server peak memory (VmHWM): 123 MB." in doc
    assert "| writes p99 ms < 200 | 555.0 | **missed** |" in doc
    assert "| peak memory mb < 250 | 123.4 | met |" in doc


def test_the_doc_is_written_from_the_result_file(tmp_path):
    result_path = tmp_path / "latest.json"
    result_path.write_text(json.dumps(RESULT))
    doc_path = tmp_path / "performance.md"

    performance_doc_write(result_path=result_path, doc_path=doc_path)

    assert doc_path.read_text() == performance_markdown(RESULT)
    assert "| `writes` | 16.0 | 43.2 |" in doc_path.read_text()


def test_the_doc_names_exactly_the_routes_answered_before_django():
    assert sorted(name for name, _ in FAST_PATH_ROUTES) == sorted(route.name for route in ROUTES)
    doc = performance_markdown(RESULT)
    assert "## What is answered before Django" in doc
    for _, route in FAST_PATH_ROUTES:
        assert f"- {route}" in doc


def test_a_run_on_a_reused_database_says_so_instead_of_a_seed():
    reused = {key: value for key, value in RESULT.items() if key != "seed"}

    doc = performance_markdown(reused)

    assert "On a database seeded by an earlier run (`--reuse-database`)." in doc
    assert "Seeded in" not in doc
