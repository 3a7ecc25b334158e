"""The registry of Rankly's cache types: every cached read goes through `cache_get_or_set`."""

import threading
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from django.core.cache import cache

T = TypeVar("T")


class CacheType(StrEnum):
    HOME_STATS = "home_stats"
    LEADERBOARD = "leaderboard"
    LEADERBOARD_POSITION = "leaderboard_position"
    ACHIEVEMENT_DEFINITIONS = "achievement_definitions"
    PRODUCT_METADATA = "product_metadata"
    RANKING_STATS = "ranking_stats"
    PRODUCTS = "products"


TTL_SECONDS: dict[CacheType, int] = {
    CacheType.HOME_STATS: 5 * 60,
    CacheType.LEADERBOARD: 5 * 60,
    CacheType.LEADERBOARD_POSITION: 5 * 60,
    CacheType.ACHIEVEMENT_DEFINITIONS: 60 * 60,
    CacheType.PRODUCT_METADATA: 30 * 60,
    CacheType.RANKING_STATS: 30 * 60,
    CacheType.PRODUCTS: 30 * 60,
}

# Functions that fill a type ahead of demand (`manage.py warm_cache`), registered by the apps.
WARMERS: dict[CacheType, list[Callable[[], int]]] = {t: [] for t in CacheType}

_counts_lock = threading.Lock()
_hits: dict[CacheType, int] = dict.fromkeys(CacheType, 0)
_misses: dict[CacheType, int] = dict.fromkeys(CacheType, 0)


def _count(counter: dict[CacheType, int], cache_type: CacheType) -> None:
    with _counts_lock:
        counter[cache_type] += 1


def _version(cache_type: CacheType) -> int:
    """The current generation of a type; bumping it makes every older key unreachable."""
    return cache.get_or_set(f"cache-version:{cache_type}", 1, timeout=None)


def cache_key(cache_type: CacheType, key: str) -> str:
    return f"{cache_type}:v{_version(cache_type)}:{key}"


def cache_get_or_set(cache_type: CacheType, key: str, compute: Callable[[], T]) -> T:
    """The cached value of `key` in a type, computed and stored with the type's TTL on a miss."""
    full_key = cache_key(cache_type, key)
    value = cache.get(full_key)
    if value is not None:
        _count(_hits, cache_type)
        return value
    _count(_misses, cache_type)
    value = compute()
    cache.set(full_key, value, timeout=TTL_SECONDS[cache_type])
    return value


def cache_invalidate(cache_type: CacheType) -> None:
    """Drop every cached value of a type at once."""
    try:
        cache.incr(f"cache-version:{cache_type}")
    except ValueError:
        cache.set(f"cache-version:{cache_type}", 2, timeout=None)


def cache_stats() -> dict[str, dict[str, int]]:
    """Hits and misses per type in this process since it started."""
    with _counts_lock:
        return {t.value: {"hits": _hits[t], "misses": _misses[t]} for t in CacheType}


def cache_warmer(cache_type: CacheType) -> Callable[[Callable[[], int]], Callable[[], int]]:
    """Register a function that fills `cache_type` and returns how many keys it wrote."""

    def register(warm: Callable[[], int]) -> Callable[[], int]:
        WARMERS[cache_type].append(warm)
        return warm

    return register
