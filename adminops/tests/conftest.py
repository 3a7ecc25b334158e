import pytest

from config.caching import CacheType, cache_get_or_set


@pytest.fixture
def fill_cache():
    """Cache a value of a type and return a function telling whether it is still cached."""

    def fill(cache_type: CacheType) -> callable:
        cache_get_or_set(cache_type, "probe", lambda: "cached")

        def still_cached() -> bool:
            return cache_get_or_set(cache_type, "probe", lambda: "recomputed") == "cached"

        return still_cached

    return fill


@pytest.fixture
def run_tool(staff_client, django_capture_on_commit_callbacks):
    """POST a tool as an employee and return its job once run. Without a broker the job runs
    in process once the request has committed; the POST answers 202 with it still queued."""

    def run(path: str, data: dict | None = None, fmt: str = "json") -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(f"/api/tools/{path}/", data, format=fmt)
            assert response.status_code == 202, response.content
            assert response.json()["job"]["status"] == "queued"
        job = response.json()["job"]
        return staff_client.get(f"/api/tools/jobs/{job['id']}/").json()

    return run
