"""The cache backend: django-redis, with a local fallback and a circuit breaker around it.

Every synchronous cache use in Rankly (cached reads, rate-limit counters, the session cache)
goes through this class, so all of them survive a Redis outage the same way: a failed call is
answered from an in-process LocMemCache, Redis is left alone for a cool-down, and the first call
after it probes Redis again. Keys set or deleted locally while Redis was away are deleted from
Redis when it comes back, so it never serves what the outage made stale (a logged-out session, a
type invalidated meanwhile). Counters (add, incr, decr) are not: Redis's count predates the
outage and only ever undercounts, and dropping it would hand a client a fresh rate-limit budget.
"""

# Pinned: Django==5.2.19 (reads LocMemCache._cache, _expire_info, _lock; requirements.txt).
import fnmatch
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.redis import CircuitBreaker, redis_breaker

logger = logging.getLogger("rankly.redis")

T = TypeVar("T")

_REDIS_DOWN = (ConnectionInterrupted, RedisConnectionError, RedisTimeoutError, OSError)
# Keys written locally during an outage, remembered so Redis drops its copies on recovery.
JOURNAL_LIMIT = 10_000


class _Journal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self.overflowed = False

    def add(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                if len(self._keys) >= JOURNAL_LIMIT:
                    self.overflowed = True
                    return
                self._keys.add(key)

    def take(self) -> tuple[list[str], bool]:
        with self._lock:
            keys, overflowed = list(self._keys), self.overflowed
            self._keys.clear()
            self.overflowed = False
            return keys, overflowed

    def give_back(self, keys: list[str], overflowed: bool) -> None:
        self.add(keys)
        self.overflowed = self.overflowed or overflowed


_journals: dict[str, _Journal] = {}
_journals_lock = threading.Lock()


def _journal_for(location: str) -> _Journal:
    with _journals_lock:
        return _journals.setdefault(location, _Journal())


def _local(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments LocMemCache understands (django-redis adds a few of its own)."""
    return {k: v for k, v in kwargs.items() if k in ("version", "timeout", "default", "delta")}


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS", {}))
        cooldown = float(options.pop("BREAKER_COOLDOWN", 5.0))
        super().__init__(server, {**params, "OPTIONS": options})
        # Failures are handled here, never swallowed silently by django-redis.
        self._ignore_exceptions = False
        self.breaker: CircuitBreaker = redis_breaker(location=server, cooldown=cooldown)
        self._journal = _journal_for(server)
        self.fallback = LocMemCache(
            f"rankly-fallback:{server}",
            {
                "TIMEOUT": params.get("TIMEOUT", 300),
                "KEY_PREFIX": params.get("KEY_PREFIX", ""),
                "OPTIONS": {"MAX_ENTRIES": 5000},
            },
        )

    def _use(
        self,
        on_redis: Callable[[], object],
        on_local: Callable[[], T],
        written: Iterable[str] = (),
    ) -> T:
        if self.breaker.allow():
            try:
                if self.breaker.is_open:
                    self._forget_outage_writes()
                result = on_redis()
            except _REDIS_DOWN as exc:
                self.breaker.record_failure(exc)
            except Exception:
                # Redis answered (e.g. incr of a missing key): it is up, the error is the caller's.
                self.breaker.record_success()
                raise
            else:
                # django-redis is unannotated; it answers with the types LocMemCache does.
                answer = cast(T, result)
                if self.breaker.record_success():
                    # Writes that went local while this probe was running.
                    try:
                        self._forget_outage_writes()
                    except _REDIS_DOWN as exc:
                        self.breaker.record_failure(exc)
                return answer
        self._journal.add(written)
        return on_local()

    def _forget_outage_writes(self) -> None:
        keys, overflowed = self._journal.take()
        try:
            if keys:
                super().delete_many(keys)
        except _REDIS_DOWN:
            self._journal.give_back(keys, overflowed)
            raise
        if overflowed:
            logger.warning(
                "More than %s keys were written during the Redis outage; some Redis entries "
                "may be stale until their TTL",
                JOURNAL_LIMIT,
            )

    # --- Django's cache API --------------------------------------------------------------------
    def get(
        self, key: str, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        return self._use(
            # django-redis ships no annotations.
            lambda: super(ResilientRedisCache, self).get(key, default, version, client),  # type: ignore[no-untyped-call]
            lambda: self.fallback.get(key, default, version),
        )

    def set(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        def local() -> Any:
            if kwargs.get("nx"):
                return self.fallback.add(key, value, *args[:2], **_local(kwargs))
            return self.fallback.set(key, value, *args[:2], **_local(kwargs))

        return self._use(
            lambda: super(ResilientRedisCache, self).set(key, value, *args, **kwargs), local, [key]
        )

    def add(self, key: str, value: Any, *args: Any, **kwargs: Any) -> bool:
        return self._use(
            lambda: super(ResilientRedisCache, self).add(key, value, *args, **kwargs),
            lambda: self.fallback.add(key, value, *args[:2], **_local(kwargs)),
        )

    def delete(self, key: str, *args: Any, **kwargs: Any) -> bool:
        return self._use(
            lambda: super(ResilientRedisCache, self).delete(key, *args, **kwargs),
            lambda: self.fallback.delete(key, *args[:1], **_local(kwargs)),
            [key],
        )

    def get_many(self, keys: Iterable[str], *args: Any, **kwargs: Any) -> dict[str, Any]:
        keys = list(keys)
        return self._use(
            lambda: super(ResilientRedisCache, self).get_many(keys, *args, **kwargs),
            lambda: self.fallback.get_many(keys, *args[:1], **_local(kwargs)),
        )

    def set_many(self, data: dict[str, Any], *args: Any, **kwargs: Any) -> list[str]:
        result = self._use(
            lambda: super(ResilientRedisCache, self).set_many(data, *args, **kwargs),
            lambda: self.fallback.set_many(data, *args[:2], **_local(kwargs)),
            list(data),
        )
        return result or []

    def delete_many(self, keys: Iterable[str], *args: Any, **kwargs: Any) -> Any:
        keys = list(keys)
        return self._use(
            lambda: super(ResilientRedisCache, self).delete_many(keys, *args, **kwargs),
            lambda: self.fallback.delete_many(keys, *args[:1], **_local(kwargs)),
            keys,
        )

    def has_key(self, key: str, *args: Any, **kwargs: Any) -> bool:
        return self._use(
            lambda: super(ResilientRedisCache, self).has_key(key, *args, **kwargs),
            lambda: self.fallback.has_key(key, *args[:1], **_local(kwargs)),
        )

    def incr(self, key: str, delta: int = 1, *args: Any, **kwargs: Any) -> int:
        # LocMemCache.incr raises ValueError on a missing key, as django-ratelimit expects.
        return self._use(
            lambda: super(ResilientRedisCache, self).incr(key, delta, *args, **kwargs),
            lambda: self.fallback.incr(key, delta, *args[:1], **_local(kwargs)),
        )

    def decr(self, key: str, delta: int = 1, *args: Any, **kwargs: Any) -> int:
        return self._use(
            lambda: super(ResilientRedisCache, self).decr(key, delta, *args, **kwargs),
            lambda: self.fallback.decr(key, delta, *args[:1], **_local(kwargs)),
        )

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, *args: Any, **kwargs: Any) -> bool:
        return self._use(
            lambda: super(ResilientRedisCache, self).touch(key, timeout, *args, **kwargs),
            lambda: self.fallback.touch(key, timeout, *args[:1], **_local(kwargs)),
            [key],
        )

    def clear(self) -> None:
        """Delete this cache's keys only (its KEY_PREFIX), never the whole Redis database."""
        self.fallback.clear()
        self._use(lambda: super(ResilientRedisCache, self).delete_pattern("*"), lambda: 0)

    # --- django-redis extras -----------------------------------------------------------------
    def ttl(self, key: str, *args: Any, **kwargs: Any) -> int | None:
        return self._use(
            lambda: super(ResilientRedisCache, self).ttl(key, *args, **kwargs), lambda: None
        )

    def delete_pattern(self, pattern: str, *args: Any, **kwargs: Any) -> int:
        def local() -> int:
            # LocMemCache's private state, which django-stubs does not declare.
            fallback: Any = self.fallback
            prefixed = fallback.make_key(pattern)
            with fallback._lock:
                doomed = [k for k in fallback._cache if fnmatch.fnmatchcase(k, prefixed)]
            for key in doomed:
                fallback._cache.pop(key, None)
                fallback._expire_info.pop(key, None)
            return len(doomed)

        return self._use(
            lambda: super(ResilientRedisCache, self).delete_pattern(pattern, *args, **kwargs),
            local,
        )

    def iter_keys(self, pattern: str, *args: Any, **kwargs: Any) -> Iterable[str]:
        return self._use(
            lambda: list(super(ResilientRedisCache, self).iter_keys(pattern, *args, **kwargs)),
            list,
        )

    def call(self, on_redis: Callable[[Any], T], default: T) -> T:
        """Raw commands on the shared client, through the breaker; `default` while it is open."""
        return self._use(lambda: on_redis(self.client.get_client(write=True)), lambda: default)

    def ping(self) -> bool:
        """Whether Redis answers now (False while the breaker is open)."""
        return self._use(lambda: bool(self.client.get_client(write=True).ping()), lambda: False)
