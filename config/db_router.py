"""Read replica routing: only reads that opt in with `replica_reads()` go to the replica.

A replica lags behind the primary, so reading from it by default would show a user a ranking
they just submitted as missing. Selectors opt in when their answers may be minutes old and no
write waits to see them: the Borda aggregates of rankings (cached by TTL, never invalidated by
a submission) and the popular searches and paths. Reads a write invalidates the cache of (the
catalogue, product names in statistics, home stats, leaderboards) stay on the primary, or the
refill right after the write could cache the replica's older answer for the whole TTL. Every
other read, every write and everything inside a transaction stays on `default`. The router is
installed only when DATABASE_REPLICA_URL is set, so `replica_reads()` costs nothing without one.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connections

REPLICA = "replica"

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Send the reads made inside this block to the read replica (also usable as a decorator)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


class ReplicaRouter:
    def db_for_read(self, model: type, **hints: Any) -> str:
        if _replica_reads.get() and not connections["default"].in_atomic_block:
            return REPLICA
        return "default"

    def db_for_write(self, model: type, **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # Both aliases hold the same data, so objects read from either may be related.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"
