"""The registry of Rankly's cache types: every cached read goes through `cache_get_or_set`.

A value is stored with the generation of its type; `cache_invalidate` starts a new generation,
so every older value of the type becomes a miss at once, on every instance. A hit costs one
round trip (the generation and the value are read together).
"""

import contextvars
import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import partial
from typing import Any, TypeGuard, TypeVar, cast

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger("rankly.cache")

T = TypeVar("T")


class CacheType(StrEnum):
    HOME_STATS = "home_stats"
    LEADERBOARD = "leaderboard"
    LEADERBOARD_POSITION = "leaderboard_position"
    ACHIEVEMENT_DEFINITIONS = "achievement_definitions"
    PRODUCT_METADATA = "product_metadata"
    RANKING_STATS = "ranking_stats"
    PRODUCTS = "products"
    ANALYTICS_SEARCHES = "analytics_searches"
    ANALYTICS_VIEWS = "analytics_views"
    ANALYTICS_ACTIVE_USERS = "analytics_active_users"
    ANALYTICS_STREAKS = "analytics_streaks"
    ANALYTICS_ACHIEVEMENTS = "analytics_achievements"
    ANALYTICS_RANKINGS = "analytics_rankings"
    ANALYTICS_RANK_MOVEMENT = "analytics_rank_movement"


TTL_SECONDS: dict[CacheType, int] = {
    CacheType.HOME_STATS: 5 * 60,
    CacheType.LEADERBOARD: 5 * 60,
    CacheType.LEADERBOARD_POSITION: 5 * 60,
    CacheType.ACHIEVEMENT_DEFINITIONS: 60 * 60,
    CacheType.PRODUCT_METADATA: 30 * 60,
    CacheType.RANKING_STATS: 30 * 60,
    CacheType.PRODUCTS: 30 * 60,
    # Employees' analytics: whole days and weeks, so minutes of staleness hide nothing, while
    # each read walks up to a year of rows.
    CacheType.ANALYTICS_SEARCHES: 10 * 60,
    CacheType.ANALYTICS_VIEWS: 10 * 60,
    CacheType.ANALYTICS_ACTIVE_USERS: 30 * 60,
    CacheType.ANALYTICS_STREAKS: 10 * 60,
    CacheType.ANALYTICS_ACHIEVEMENTS: 30 * 60,
    CacheType.ANALYTICS_RANKINGS: 10 * 60,
    CacheType.ANALYTICS_RANK_MOVEMENT: 30 * 60,
}

# Functions that fill a type ahead of demand (`manage.py warm_cache`), registered by the apps
# with @cache_warmer in their caching.py or selectors.py, which are imported at startup.
WARMERS: dict[CacheType, list[Callable[[], int]]] = {t: [] for t in CacheType}

# Single flight: the first request for a cold key computes it under a short lock; the others
# poll for its result, and compute themselves only if it takes longer than the wait.
LOCK_SECONDS = 15
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.02

# Part of every value's key. Raised when what a type stores changes shape, so that during a
# rolling deploy each release reads only the values it stored itself.
VALUE_FORMAT = 2

_SAFE_KEY = re.compile(r"[A-Za-z0-9_.:=,-]{1,150}")

_counts_lock = threading.Lock()
_hits: dict[CacheType, int] = dict.fromkeys(CacheType, 0)
_misses: dict[CacheType, int] = dict.fromkeys(CacheType, 0)


def _count(counter: dict[CacheType, int], cache_type: CacheType) -> None:
    with _counts_lock:
        counter[cache_type] += 1


def _version_key(cache_type: CacheType) -> str:
    return f"cache-version:{cache_type}"


def generation_key(cache_type: CacheType, *, backend: Any = cache) -> str:
    """The Redis key that holds a type's generation (readers compare its bytes, never decode
    them)."""
    return str(backend.make_key(_version_key(cache_type)))


def cache_key(cache_type: CacheType, key: str) -> str:
    """Where a value of a type is stored; keys with unsafe characters are hashed."""
    if not _SAFE_KEY.fullmatch(key):
        key = "h-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{cache_type}:v{VALUE_FORMAT}:{key}"


def _generation(cache_type: CacheType, current: str | None) -> str:
    """The type's generation, starting one if Redis has none (first use, flush, eviction)."""
    if current is not None:
        return current
    fresh = secrets.token_hex(8)
    if cache.add(_version_key(cache_type), fresh, timeout=None):
        return fresh
    return cache.get(_version_key(cache_type)) or fresh


def _valid(entry: object, generation: str) -> TypeGuard[tuple[str, Any]]:
    return isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation


# Set while caches_refresh runs: reads recompute and store instead of answering from the cache.
_refreshing: contextvars.ContextVar[bool] = contextvars.ContextVar("refreshing", default=False)


def cache_get_or_set(cache_type: CacheType, key: str, compute: Callable[[], T]) -> T:
    """The cached value of `key` in a type, computed once and stored with the type's TTL."""
    stored_at = cache_key(cache_type, key)
    found = cache.get_many([_version_key(cache_type), stored_at])
    generation = _generation(cache_type, found.get(_version_key(cache_type)))
    if _refreshing.get():
        return _compute_and_store(cache_type, stored_at, generation, compute, lock=None)
    entry = found.get(stored_at)
    if _valid(entry, generation):
        _count(_hits, cache_type)
        return cast(T, entry[1])

    lock = f"lock:{stored_at}"
    deadline = time.monotonic() + WAIT_SECONDS
    waited = False
    while not cache.add(lock, 1, timeout=LOCK_SECONDS):
        if time.monotonic() >= deadline:
            logger.info("cache %s: gave up waiting for %s, computing it too", cache_type, key)
            return _compute_and_store(cache_type, stored_at, generation, compute, lock=None)
        waited = True
        time.sleep(POLL_SECONDS)
        entry = cache.get(stored_at)
        if _valid(entry, generation):
            _count(_hits, cache_type)
            return cast(T, entry[1])
    if waited:
        # The previous holder may have stored the value just before releasing the lock.
        entry = cache.get(stored_at)
        if _valid(entry, generation):
            cache.delete(lock)
            _count(_hits, cache_type)
            return cast(T, entry[1])
    return _compute_and_store(cache_type, stored_at, generation, compute, lock=lock)


def _compute_and_store(
    cache_type: CacheType,
    stored_at: str,
    generation: str,
    compute: Callable[[], T],
    *,
    lock: str | None,
) -> T:
    _count(_misses, cache_type)
    try:
        value = compute()
        cache.set(stored_at, (generation, value), timeout=TTL_SECONDS[cache_type])
        return value
    finally:
        if lock is not None:
            cache.delete(lock)


def cache_invalidate(cache_type: CacheType) -> None:
    """Drop every cached value of a type at once, on every instance."""
    cache.set(_version_key(cache_type), secrets.token_hex(8), timeout=None)


def cache_types_invalidate_on_commit(*, cache_types: Iterable[CacheType]) -> None:
    """Invalidate after commit, so no request refills a type from rows about to change."""
    for cache_type in cache_types:
        transaction.on_commit(partial(cache_invalidate, cache_type))


def cache_hit_count(cache_type: CacheType) -> None:
    """A hit served without `cache_get_or_set` (config.fastpath), counted with the others."""
    _count(_hits, cache_type)


def cache_stats() -> dict[str, dict[str, int]]:
    """Hits and misses per type in this process since it started."""
    with _counts_lock:
        return {t.value: {"hits": _hits[t], "misses": _misses[t]} for t in CacheType}


def caches_refresh(*, cache_types: Iterable[CacheType]) -> int:
    """Recompute and store, with a fresh TTL, the entries the warmers of these types fill: the
    hottest entries are replaced before they expire, so no reader meets them cold. Returns how
    many keys were written; a failing warmer is logged and skipped."""
    token = _refreshing.set(True)
    written = 0
    try:
        for cache_type in cache_types:
            for warm in WARMERS[cache_type]:
                try:
                    written += warm()
                except Exception:
                    logger.exception("Cache refresh of %s failed", warm.__name__)
    finally:
        _refreshing.reset(token)
    return written


def cache_warmer(cache_type: CacheType) -> Callable[[Callable[[], int]], Callable[[], int]]:
    """Register a function that fills `cache_type` and returns how many keys it wrote."""

    def register(warm: Callable[[], int]) -> Callable[[], int]:
        WARMERS[cache_type].append(warm)
        return warm

    return register
