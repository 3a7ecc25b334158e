import threading
import time

import pytest
from django.core.cache import cache
from django.test import override_settings

from config.caching import (
    TTL_SECONDS,
    CacheType,
    cache_get_or_set,
    cache_invalidate,
    cache_key,
    cache_stats,
)
from config.redis import redis_call, redis_client, redis_status
from config.tests.private_redis import dead_redis_caches


def _concurrent_cold_reads(threads: int) -> tuple[list[int], int]:
    computed = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def compute() -> int:
        with lock:
            computed.append(1)
        time.sleep(0.2)
        return 42

    results: list[int] = []

    def read() -> None:
        start.wait()
        value = cache_get_or_set(CacheType.LEADERBOARD, "cold", compute)
        with lock:
            results.append(value)

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=20)
    return results, len(computed)


def test_a_value_is_computed_on_a_miss_and_served_on_a_hit():
    calls = []
    before = cache_stats()[CacheType.RANKING_STATS]

    def compute() -> dict:
        calls.append(1)
        return {"score": 3}

    assert cache_get_or_set(CacheType.RANKING_STATS, "p:1", compute) == {"score": 3}
    assert cache_get_or_set(CacheType.RANKING_STATS, "p:1", compute) == {"score": 3}
    after = cache_stats()[CacheType.RANKING_STATS]
    assert len(calls) == 1
    assert after["misses"] - before["misses"] == 1
    assert after["hits"] - before["hits"] == 1


def test_hits_and_misses_are_counted_per_type():
    before = cache_stats()
    cache_get_or_set(CacheType.HOME_STATS, "all", lambda: 1)
    cache_get_or_set(CacheType.HOME_STATS, "all", lambda: 1)
    cache_get_or_set(CacheType.HOME_STATS, "all", lambda: 1)
    after = cache_stats()
    assert after["home_stats"]["hits"] - before["home_stats"]["hits"] == 2
    assert after["home_stats"]["misses"] - before["home_stats"]["misses"] == 1
    assert after["leaderboard"] == before["leaderboard"]


def test_none_and_falsy_values_are_cached_too():
    calls = []
    for _ in range(2):
        cache_get_or_set(CacheType.LEADERBOARD, "empty", lambda: calls.append(1) or None)
    assert calls == [1]


def test_invalidating_a_type_drops_its_values_and_no_other():
    cache_get_or_set(CacheType.PRODUCTS, "page:1", lambda: "old products")
    cache_get_or_set(CacheType.LEADERBOARD, "all", lambda: "old leaderboard")

    cache_invalidate(CacheType.PRODUCTS)

    assert cache_get_or_set(CacheType.PRODUCTS, "page:1", lambda: "new products") == (
        "new products"
    )
    assert cache_get_or_set(CacheType.LEADERBOARD, "all", lambda: "new") == "old leaderboard"


def test_a_lost_generation_never_revives_older_values():
    cache_get_or_set(CacheType.PRODUCTS, "page:1", lambda: "first")
    cache_invalidate(CacheType.PRODUCTS)
    cache_get_or_set(CacheType.PRODUCTS, "page:1", lambda: "second")
    # Redis evicted or flushed the generation: the type starts a new one, it does not reuse one.
    cache.delete("cache-version:products")
    assert cache_get_or_set(CacheType.PRODUCTS, "page:1", lambda: "third") == "third"


def test_a_failed_computation_is_not_cached_and_does_not_block_the_next_reader():
    def fail() -> int:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        cache_get_or_set(CacheType.HOME_STATS, "all", fail)
    started = time.monotonic()
    assert cache_get_or_set(CacheType.HOME_STATS, "all", lambda: 7) == 7
    assert time.monotonic() - started < 1


def test_keys_with_any_characters_are_stored_under_a_safe_name():
    key = cache_key(CacheType.PRODUCTS, "list:phones:1:20:noise cancelling €")
    assert " " not in key and key.isascii()
    assert cache_get_or_set(CacheType.PRODUCTS, "list: a b", lambda: 1) == 1
    assert cache_get_or_set(CacheType.PRODUCTS, "list: a  b", lambda: 2) == 2


def test_20_concurrent_readers_of_a_cold_key_compute_it_once():
    before = cache_stats()["leaderboard"]
    results, computations = _concurrent_cold_reads(20)
    after = cache_stats()["leaderboard"]
    assert results == [42] * 20
    assert computations == 1
    assert after["misses"] - before["misses"] == 1
    assert after["hits"] - before["hits"] == 19


def test_20_concurrent_readers_compute_once_on_the_local_fallback_when_redis_is_dead():
    with override_settings(CACHES=dead_redis_caches()):
        results, computations = _concurrent_cold_reads(20)
    assert results == [42] * 20
    assert computations == 1


@pytest.mark.redis
def test_every_type_is_stored_in_redis_with_its_ttl():
    from config.redis import redis_client

    client = redis_client()
    for cache_type in CacheType:
        cache_get_or_set(cache_type, "ttl-probe", lambda: "value")
        ttl = cache.ttl(cache_key(cache_type, "ttl-probe"))
        assert TTL_SECONDS[cache_type] - 5 <= ttl <= TTL_SECONDS[cache_type], cache_type
        raw_key = cache.make_key(cache_key(cache_type, "ttl-probe"))
        assert TTL_SECONDS[cache_type] - 5 <= client.ttl(raw_key) <= TTL_SECONDS[cache_type]


@pytest.mark.redis
def test_an_invalidation_reaches_every_instance_through_redis():
    from django.core.cache import caches

    cache_get_or_set(CacheType.ACHIEVEMENT_DEFINITIONS, "all", lambda: "before")
    # Another instance sees the same Redis: bump the generation through a second cache object.
    other = caches.create_connection("default")
    other.set("cache-version:achievement_definitions", "another-instance", timeout=None)
    assert cache_get_or_set(CacheType.ACHIEVEMENT_DEFINITIONS, "all", lambda: "after") == "after"


def test_raw_redis_commands_fall_back_to_their_default_when_redis_is_dead():
    with override_settings(CACHES=dead_redis_caches()):
        assert redis_call(lambda r: r.incr("presence"), default=None) is None
        assert redis_client() is None
        assert redis_status() == "degraded"


def test_raw_redis_commands_without_redis_return_their_default():
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ):
        assert redis_call(lambda r: r.incr("presence"), default=0) == 0
        assert redis_status() == "locmem"


@pytest.mark.redis
def test_raw_redis_commands_share_the_cache_connection_pool():
    key = cache.make_key("presence-probe")
    assert redis_call(lambda r: r.incr(key), default=None) == 1
    assert redis_client().connection_pool is cache.client.get_client().connection_pool
    assert redis_status() == "redis"
