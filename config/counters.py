"""Counters buffered between writes: increments land in Redis (one hash per counter) or, with
no Redis, in this process; a periodic task drains them into the database in one statement.

Draining renames the hash first, so increments that arrive meanwhile start a new one; the
drained counts are kept until `ack` (after the database commit), so a flush that dies midway
is redone by the next one rather than lost.
"""

import logging
import threading

from django.core.cache import cache
from django_redis import get_redis_connection
from redis.exceptions import RedisError, ResponseError

from config.redis import redis_is_configured

logger = logging.getLogger("rankly.counters")


class BufferedCounter:
    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._local: dict[int, int] = {}
        self._draining: dict[int, int] = {}

    def _keys(self) -> tuple[str, str]:
        key = cache.make_key(f"counter:{self.name}")
        return key, f"{key}:draining"

    def add(self, key: int, amount: int = 1) -> bool:
        """Count `amount` for `key`; False when the buffer is unreachable (the caller writes
        the count through instead)."""
        if not redis_is_configured():
            with self._lock:
                self._local[key] = self._local.get(key, 0) + amount
            return True
        try:
            get_redis_connection("default").hincrby(self._keys()[0], str(key), amount)
        except RedisError:
            logger.warning("Counter %s: Redis unavailable, counting through", self.name)
            return False
        return True

    def drain(self) -> dict[int, int]:
        """The counts buffered so far (with any a failed flush left), taken out of the buffer."""
        if not redis_is_configured():
            with self._lock:
                if not self._draining:
                    self._draining, self._local = self._local, {}
                return dict(self._draining)
        live, draining = self._keys()
        client = get_redis_connection("default")
        if not client.exists(draining):
            try:
                client.rename(live, draining)
            except ResponseError:
                return {}  # nothing counted since the last flush
        return {int(key): int(amount) for key, amount in client.hgetall(draining).items()}

    def ack(self) -> None:
        """The drained counts are in the database: forget them."""
        if not redis_is_configured():
            with self._lock:
                self._draining = {}
            return
        get_redis_connection("default").delete(self._keys()[1])
