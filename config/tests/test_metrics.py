import logging
import re

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from config.caching import CacheType, cache_get_or_set
from config.metrics import histogram_quantile, metrics_snapshot
from realtime.presence import socket_closed, socket_opened


def _scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted({"instance": settings.INSTANCE_ID, **labels}.items())))
    return samples.get(key, 0.0)


def test_metrics_refuse_anonymous_requests(api_client, db):
    response = api_client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_metrics_refuse_customers(user_client):
    response = user_client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@override_settings(METRICS_TOKEN="scrape-secret")
def test_metrics_accept_the_bearer_token(api_client, db):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert api_client.get("/metrics").status_code == 200


@override_settings(METRICS_TOKEN="scrape-secret")
def test_metrics_reject_a_wrong_bearer_token(api_client, db):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer guess")
    response = api_client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid metrics token."


@override_settings(METRICS_TOKEN="")
def test_bearer_tokens_are_refused_when_no_metrics_token_is_configured(api_client, db):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer ")
    assert api_client.get("/metrics").status_code == 401


def test_employees_signed_in_to_the_admin_may_read_metrics(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/metrics").status_code == 200


def test_requests_are_timed_and_counted_by_status_class(staff_client):
    before = _scrape(staff_client)
    for _ in range(3):
        staff_client.get("/healthz")
    staff_client.get("/no-such-page")
    after = _scrape(staff_client)

    latency = "rankly_http_request_duration_seconds"
    # The first scrape itself is a 2xx request counted before the second scrape.
    assert _value(after, f"{latency}_count") - _value(before, f"{latency}_count") == 5
    assert _value(after, f"{latency}_bucket", le="+Inf") == _value(after, f"{latency}_count")
    assert _value(after, f"{latency}_bucket", le="0.001") <= _value(after, f"{latency}_count")
    responses = "rankly_http_responses_total"
    assert (
        _value(after, responses, status_class="2xx") - _value(before, responses, status_class="2xx")
        == 4
    )
    assert (
        _value(after, responses, status_class="4xx") - _value(before, responses, status_class="4xx")
        == 1
    )


@pytest.mark.asyncio
async def test_requests_served_through_asgi_are_counted_too(async_client):
    before = metrics_snapshot()["responses"]["2xx"]
    response = await async_client.get("/healthz")
    assert response.status_code == 200
    assert metrics_snapshot()["responses"]["2xx"] == before + 1


def test_cache_hits_and_misses_per_type_are_exported(staff_client):
    before = _scrape(staff_client)
    cache_get_or_set(CacheType.LEADERBOARD, "metrics-test", lambda: [1, 2, 3])
    cache_get_or_set(CacheType.LEADERBOARD, "metrics-test", lambda: [1, 2, 3])
    after = _scrape(staff_client)
    for name in ("rankly_cache_hits_total", "rankly_cache_misses_total"):
        assert (
            _value(after, name, cache_type="leaderboard")
            - _value(before, name, cache_type="leaderboard")
            == 1
        )
    assert _value(after, "rankly_cache_hits_total", cache_type="products") == _value(
        before, "rankly_cache_hits_total", cache_type="products"
    )


def test_open_websockets_are_exported(staff_client):
    before = _value(_scrape(staff_client), "rankly_websockets_open")
    socket_opened()
    try:
        assert _value(_scrape(staff_client), "rankly_websockets_open") == before + 1
    finally:
        socket_closed()


@override_settings(SLOW_QUERY_SECONDS=0.0)
def test_slow_queries_are_counted_and_logged_with_sql_and_duration(db, caplog):
    before = metrics_snapshot()["slow_queries"]
    with caplog.at_level(logging.WARNING, logger="rankly.db"), connection.cursor() as cursor:
        cursor.execute("SELECT 42 AS slow_marker")
    assert metrics_snapshot()["slow_queries"] == before + 1
    [record] = [r for r in caplog.records if "slow_marker" in r.getMessage()]
    assert "🐢 Slow query on default took" in record.getMessage()
    assert " s: SELECT 42 AS slow_marker" in record.getMessage()


def test_fast_queries_are_not_logged(db, caplog):
    before = metrics_snapshot()["slow_queries"]
    with caplog.at_level(logging.WARNING, logger="rankly.db"), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert metrics_snapshot()["slow_queries"] == before
    assert not [r for r in caplog.records if r.name == "rankly.db"]


@pytest.mark.postgres
@pytest.mark.slow
def test_a_query_over_one_second_is_logged_with_the_default_threshold(db, caplog):
    assert settings.SLOW_QUERY_SECONDS == 1.0
    with caplog.at_level(logging.WARNING, logger="rankly.db"), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(1.05)")
    [record] = [r for r in caplog.records if "pg_sleep" in r.getMessage()]
    # The statement's own time, however long a loaded machine made it.
    took = re.search(r"took (\d+\.\d{3}) s", record.getMessage())
    assert took and float(took.group(1)) >= 1.05


@pytest.mark.postgres
def test_database_pool_use_is_exported(staff_client):
    samples = _scrape(staff_client)
    pool_max = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert _value(samples, "rankly_db_pool_max", database="default") == pool_max
    assert _value(samples, "rankly_db_pool_size", database="default") >= 1
    assert metrics_snapshot()["database_pool"]["default"]["pool_max"] == pool_max


def testhistogram_quantile_interpolates_inside_the_bucket_like_prometheus():
    buckets = [(0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.1)
    assert histogram_quantile(buckets, 0.95) == pytest.approx(0.19)
    assert histogram_quantile([], 0.5) is None
    assert histogram_quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5) is None


def test_a_rank_in_the_open_bucket_reports_the_highest_finite_bound():
    buckets = [(0.1, 10.0), (0.2, 90.0), (float("inf"), 100.0)]
    assert histogram_quantile(buckets, 0.99) == pytest.approx(0.2)


def test_snapshot_reports_latency_percentiles_status_classes_and_cache_hit_rates(client, db):
    for _ in range(5):
        client.get("/healthz")
    cache_get_or_set(CacheType.PRODUCTS, "snapshot", lambda: 1)
    cache_get_or_set(CacheType.PRODUCTS, "snapshot", lambda: 1)
    snapshot = metrics_snapshot()
    requests = snapshot["requests"]
    assert requests["count"] >= 5
    assert 0 < requests["p50_ms"] <= requests["p95_ms"] <= requests["p99_ms"]
    assert requests["average_ms"] > 0
    assert snapshot["responses"]["2xx"] >= 5
    assert 0 < snapshot["cache"]["products"]["hit_rate"] < 1
    assert snapshot["instance"] == settings.INSTANCE_ID
    assert snapshot["websockets_open"] >= 0
