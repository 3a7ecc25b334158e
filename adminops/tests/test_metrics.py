"""The metrics snapshot (config.metrics) as employees read it: the API and the dashboard feed."""

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from realtime import presence

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    return client


def test_metrics_endpoint_returns_the_snapshot(staff_client):
    staff_client.get("/api/admin/caches/")
    response = staff_client.get("/api/admin/metrics/")
    assert response.status_code == 200
    snapshot = response.json()
    assert {"p50_ms", "p95_ms", "p99_ms"} <= set(snapshot["requests"])
    assert snapshot["requests"]["count"] >= 1
    assert {"2xx", "4xx", "5xx"} <= set(snapshot["responses"])
    assert "websockets_open" in snapshot


def test_dashboard_snapshot_counts_requests_between_two_polls(
    admin_client, staff_client, staff_user
):
    first = admin_client.get("/admin/dashboard/snapshot/").json()
    # Online: seen by a socket (Redis presence) or, without Redis, by the session just used.
    presence.users_seen(user_ids=[staff_user.pk])
    for _ in range(3):
        staff_client.get("/api/admin/caches/")
    staff_client.get("/api/admin/no-such-route/")
    second = admin_client.get("/admin/dashboard/snapshot/").json()
    assert second["requests_total"] - first["requests_total"] >= 5
    assert second["status_classes"].get("4xx", 0) > first["status_classes"].get("4xx", 0)
    assert second["latency_ms"]["p99"] >= second["latency_ms"]["p50"] >= 0
    assert set(second["cache_hit_rate"]) >= {"products", "leaderboard"}
    assert second["online_users"] >= 1
    assert second["open_websockets"] >= 0
