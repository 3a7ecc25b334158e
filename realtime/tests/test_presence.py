from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import UserSession
from accounts.tests.factories import UserFactory
from adminops.selectors import dashboard_snapshot
from config.redis import redis_client
from gamification.selectors import home_stats
from realtime import presence


@pytest.fixture
def presence_key_clean():
    client = redis_client()
    client.delete(presence.presence_key())
    yield client
    client.delete(presence.presence_key())


def session_seen(user, *, minutes_ago: int) -> None:
    UserSession.objects.create(
        user=user,
        token_hash=f"hash-{user.pk}-{minutes_ago}",
        last_seen_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


@pytest.mark.django_db
def test_users_online_without_redis_counts_sessions_seen_in_the_last_minutes(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    recent, also_recent, gone = UserFactory(), UserFactory(), UserFactory()
    session_seen(recent, minutes_ago=1)
    session_seen(recent, minutes_ago=2)
    session_seen(also_recent, minutes_ago=4)
    session_seen(gone, minutes_ago=30)

    assert presence.users_online_count() == 2


@pytest.mark.redis
@pytest.mark.django_db
def test_users_online_counts_distinct_users_seen_on_any_instance(presence_key_clean):
    presence.users_seen(user_ids=[1, 2])
    presence.users_seen(user_ids=[2, 3])

    assert presence.users_online_count() == 3


@pytest.mark.redis
@pytest.mark.django_db
def test_users_seen_long_ago_are_not_online(presence_key_clean):
    presence.users_seen(user_ids=[1])
    long_ago = presence_key_clean.zscore(presence.presence_key(), "1") - 3600
    presence_key_clean.zadd(presence.presence_key(), {"2": long_ago})

    assert presence.users_online_count() == 1


@pytest.mark.django_db
def test_users_online_falls_back_to_the_database_while_redis_is_down(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            # Nothing listens on port 1: every Redis call fails at once.
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    session_seen(UserFactory(), minutes_ago=1)

    presence.users_seen(user_ids=[1, 2, 3])

    assert presence.users_online_count() == 1


@pytest.mark.redis
@pytest.mark.django_db
def test_home_stats_and_the_dashboard_read_the_users_online_across_instances(presence_key_clean):
    # Three users with open sockets elsewhere, none with a session seen here lately.
    presence.users_seen(user_ids=[UserFactory().pk for _ in range(3)])

    assert home_stats()["users_online"] == 3
    assert dashboard_snapshot()["online_users"] == 3
