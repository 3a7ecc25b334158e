import pytest

from adminops.models import AuditAction, AuditLog
from config.caching import WARMERS, CacheType, cache_get_or_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def products_warmer(monkeypatch):
    """A warmer of the products type that caches two keys, registered for one test."""

    def warm() -> int:
        for key in ("page-1", "page-2"):
            cache_get_or_set(CacheType.PRODUCTS, key, lambda k=key: f"warm {k}")
        return 2

    monkeypatch.setitem(WARMERS, CacheType.PRODUCTS, [warm])


def test_warm_caches_runs_every_registered_warmer_and_reports_keys(
    run_tool, staff_user, products_warmer
):
    job = run_tool("warm-caches")
    assert job["status"] == "succeeded"
    report = job["report"]
    assert report["keys"]["products"] == 2
    assert set(report["keys"]) == {t.value for t in CacheType}
    assert report["total"] == sum(report["keys"].values())
    assert cache_get_or_set(CacheType.PRODUCTS, "page-1", lambda: "cold") == "warm page-1"
    entry = AuditLog.objects.get(action=AuditAction.CACHE_WARM)
    assert (entry.actor, entry.data["total"]) == (staff_user, report["total"])


def test_warm_caches_twice_gives_the_same_report(run_tool, products_warmer):
    first, second = run_tool("warm-caches"), run_tool("warm-caches")
    assert first["id"] != second["id"]
    assert first["report"] == second["report"]


def test_tools_refuse_get(staff_client):
    assert staff_client.get("/api/tools/warm-caches/").status_code == 405


def test_a_failing_warmer_is_reported_and_the_others_still_run(
    run_tool, products_warmer, monkeypatch
):
    def broken() -> int:
        raise RuntimeError("no database today")

    monkeypatch.setitem(WARMERS, CacheType.HOME_STATS, [broken])
    report = run_tool("warm-caches")["report"]
    assert report["failed"] == ["home_stats: broken"]
    assert report["keys"]["products"] == 2
