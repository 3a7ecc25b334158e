import os

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from config.redis import redis_call, redis_key

REQUIRE_SERVICES = os.environ.get("RANKLY_REQUIRE_SERVICES") == "1"
BROWSER_BINARIES = ("/usr/bin/chromium", "/usr/bin/chromedriver")


def _missing_service(item: pytest.Item) -> str | None:
    if item.get_closest_marker("postgres") and settings.DATABASES["default"]["ENGINE"] != (
        "django.db.backends.postgresql"
    ):
        return "needs PostgreSQL: set DATABASE_URL"
    if item.get_closest_marker("redis") and not os.environ.get("UPSTASH_REDIS_URL"):
        return "needs Redis: set UPSTASH_REDIS_URL"
    if item.get_closest_marker("browser") and not all(map(os.path.exists, BROWSER_BINARIES)):
        return "needs Chromium: apt-get install chromium chromium-driver"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _missing_service(item)
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"RANKLY_REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
    pytest.skip(reason)


def _clear_boards() -> None:
    """The leaderboards' sorted sets live beside the cache's keys: a rolled-back test's
    boards must not outlive its data."""

    def drop(client) -> None:
        doomed = list(client.scan_iter(match=redis_key("board:*"), count=1000))
        if doomed:
            client.delete(*doomed)

    redis_call(drop, default=None)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    _clear_boards()
    yield
    cache.clear()
    _clear_boards()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True)


def _signed_in(user) -> APIClient:
    from accounts.models import UserSession
    from accounts.services import token_hash

    token = f"test-token-{user.pk}"
    UserSession.objects.create(user=user, token_hash=token_hash(token))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def user_client(user) -> APIClient:
    """A client signed in as `user` with an API token."""
    return _signed_in(user)


@pytest.fixture
def staff_client(staff_user) -> APIClient:
    return _signed_in(staff_user)
