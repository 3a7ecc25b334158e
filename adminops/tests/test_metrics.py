"""The metrics snapshot (config.metrics) as employees read it: the API and the dashboard feed."""

import pytest
from django.test import Client, override_settings

from accounts.tests.factories import UserFactory
from adminops.selectors import dashboard_alerts, dashboard_thresholds
from config import ops_history
from realtime import presence

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_history(monkeypatch):
    """This process's history starts empty, and its next request takes a sample."""
    monkeypatch.setattr(ops_history, "_local", ops_history.deque())
    monkeypatch.setattr(ops_history, "_next_sample", 0.0)


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


@override_settings(OPS_SAMPLE_SECONDS=0)
def test_dashboard_snapshot_shows_the_last_minutes_requests_and_errors(
    admin_client, staff_client, staff_user
):
    # Online: seen by a socket (Redis presence) or, without Redis, by the session just used.
    presence.users_seen(user_ids=[staff_user.pk])
    for _ in range(3):
        staff_client.get("/api/admin/caches/")
    staff_client.get("/api/admin/no-such-route/")

    snapshot = admin_client.get("/admin/dashboard/snapshot/").json()

    [instance] = snapshot["instances"]
    latest = snapshot["instances"][instance][-1]
    assert latest["request_rate"] > 0
    assert latest["error_4xx_percent"] > 0
    assert latest["p99_ms"] >= latest["p50_ms"] >= 0
    assert snapshot["window_seconds"] == 60
    assert snapshot["online_users"] >= 1


@override_settings(OPS_SAMPLE_SECONDS=0, OPS_ALERT_4XX_PERCENT=10.0, OPS_ALERT_P99_MS=10_000.0)
def test_an_error_burst_raises_the_error_alert_only(admin_client, staff_client):
    staff_client.get("/api/admin/caches/")
    for _ in range(3):
        staff_client.get("/api/admin/no-such-route/")

    snapshot = admin_client.get("/admin/dashboard/snapshot/").json()

    figures = {alert["figure"] for alert in snapshot["alerts"]}
    assert "error_4xx_percent" in figures
    assert "p99_ms" not in figures
    assert snapshot["thresholds"]["error_4xx_percent"] == 10.0


def test_alerts_compare_each_figure_with_its_threshold():
    figures = {
        "instances": {
            "a": [
                {
                    "p99_ms": 900,
                    "error_4xx_percent": 1,
                    "error_5xx_percent": 0,
                    "cache_hit_percent": 50,
                }
            ]
        },
        "total": [
            {
                "p99_ms": 100,
                "error_4xx_percent": 1,
                "error_5xx_percent": 2,
                "cache_hit_percent": None,
            }
        ],
    }
    thresholds = {
        "p99_ms": 500,
        "error_5xx_percent": 1,
        "error_4xx_percent": 25,
        "cache_hit_percent": 80,
    }

    alerts = dashboard_alerts(figures=figures, thresholds=thresholds)

    assert {(a["where"], a["figure"]) for a in alerts} == {
        ("a", "p99_ms"),
        ("a", "cache_hit_percent"),
        ("all instances", "error_5xx_percent"),
    }


def test_the_analytics_page_shows_the_reports(admin_client):
    from gamification.tests.factories import PageViewFactory
    from products.services import product_search_record

    PageViewFactory(path="/p/quiet")
    product_search_record(user_id=None, query="unicorn", result_count=0)

    response = admin_client.get("/admin/dashboard/analytics/?days=7")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/p/quiet" in page
    assert "unicorn" in page
    assert 'data-bars="1"' in page


def test_the_analytics_page_draws_active_users_per_week(admin_client):
    from datetime import timedelta

    from accounts.tests.factories import UserFactory
    from config.rollups import day_start, today_utc, week_of
    from gamification.tests.factories import PageViewFactory

    viewer = UserFactory()
    this_week = week_of(today_utc())
    PageViewFactory(user=viewer, created_at=day_start(this_week))
    PageViewFactory(user=viewer, created_at=day_start(this_week - timedelta(days=7)))
    PageViewFactory(user=UserFactory(), created_at=day_start(this_week - timedelta(days=7)))

    page = admin_client.get("/admin/dashboard/analytics/?days=14").content.decode()

    weekly = page[page.index('aria-label="Active users per week"') :]
    assert 'data-bars="2" data-top="2"' in weekly
    assert f"<title>{this_week - timedelta(days=7)}: 2</title>" in weekly


def test_the_analytics_page_refuses_a_period_over_a_year(admin_client):
    response = admin_client.get("/admin/dashboard/analytics/?days=400")

    assert response.status_code == 400
    assert "days" in response.content.decode()


def test_the_documented_defaults_sample_every_5_s_and_alert_at_these_thresholds(settings):
    assert settings.OPS_SAMPLE_SECONDS == 5.0
    assert dashboard_thresholds() == {
        "p99_ms": 500.0,
        "error_5xx_percent": 1.0,
        "error_4xx_percent": 25.0,
        "cache_hit_percent": 80.0,
    }
