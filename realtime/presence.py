"""Who is connected: open sockets in this process, and users online across instances.

Users online live in one Redis sorted set, user id -> last-seen time, written by every
instance (on connect, on ping, and a heartbeat for every connected user); a count is a ZCOUNT
over the last PRESENCE_WINDOW_SECONDS. Without Redis, or while it is down, the count falls back
to the users whose sessions were seen in the database in the last few minutes.
"""

import threading
import time
from collections.abc import Iterable

from accounts.selectors import users_seen_since
from config.redis import redis_call, redis_key

PRESENCE_WINDOW_SECONDS = 120
HEARTBEAT_SECONDS = 30
DATABASE_FALLBACK_MINUTES = 5


def presence_key() -> str:
    return redis_key("presence:users")


_lock = threading.Lock()
_open_sockets = 0


def socket_opened() -> None:
    global _open_sockets
    with _lock:
        _open_sockets += 1


def socket_closed() -> None:
    global _open_sockets
    with _lock:
        _open_sockets -= 1


def open_socket_count() -> int:
    """WebSockets open on this instance now."""
    return _open_sockets


def users_seen(*, user_ids: Iterable[int]) -> None:
    """Mark users as online now; old entries are trimmed and the key expires when idle."""
    user_ids = list(user_ids)
    if not user_ids:
        return
    now = time.time()

    def record(client) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.zadd(presence_key(), dict.fromkeys(map(str, user_ids), now))
        pipe.zremrangebyscore(presence_key(), "-inf", now - PRESENCE_WINDOW_SECONDS)
        pipe.expire(presence_key(), PRESENCE_WINDOW_SECONDS * 2)
        pipe.execute()

    # Without Redis (or while it is down) presence falls back to the database's sessions.
    redis_call(record, default=None)


def users_online_count() -> int:
    """Distinct users connected in the last two minutes on any instance."""
    since = time.time() - PRESENCE_WINDOW_SECONDS
    count = redis_call(lambda client: client.zcount(presence_key(), since, "+inf"), default=None)
    if count is not None:
        return count
    return users_seen_since(minutes=DATABASE_FALLBACK_MINUTES)
