"""Who is connected: open sockets in this process, and users online across instances.

Users online live in one Redis sorted set, user id -> last-seen time, written by every
instance (on connect, on ping, and a heartbeat for every connected user); a count is a ZCOUNT
over the last PRESENCE_WINDOW_SECONDS. Without Redis, or while it is down, the count falls back
to the users whose sessions were seen in the database in the last few minutes.
"""

import logging
import threading
import time
from collections.abc import Iterable

from django.conf import settings

logger = logging.getLogger(__name__)

PRESENCE_KEY = "rankly:presence:users"
PRESENCE_WINDOW_SECONDS = 120
HEARTBEAT_SECONDS = 30
DATABASE_FALLBACK_MINUTES = 5

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


def redis_connection():
    """The project's synchronous Redis client, or None without Redis."""
    try:
        from config.redis import redis_client
    except ImportError:
        if "django_redis" not in settings.CACHES["default"]["BACKEND"]:
            return None
        from django_redis import get_redis_connection

        return get_redis_connection("default")
    return redis_client()


def users_seen(*, user_ids: Iterable[int]) -> None:
    """Mark users as online now; old entries are trimmed and the key expires when idle."""
    user_ids = list(user_ids)
    if not user_ids:
        return
    try:
        client = redis_connection()
        if client is None:
            return
        now = time.time()
        pipe = client.pipeline(transaction=False)
        pipe.zadd(PRESENCE_KEY, dict.fromkeys(map(str, user_ids), now))
        pipe.zremrangebyscore(PRESENCE_KEY, "-inf", now - PRESENCE_WINDOW_SECONDS)
        pipe.expire(PRESENCE_KEY, PRESENCE_WINDOW_SECONDS * 2)
        pipe.execute()
    except Exception:
        logger.warning("presence not recorded: Redis unavailable", exc_info=True)


def users_online_count() -> int:
    """Distinct users connected in the last two minutes on any instance."""
    try:
        client = redis_connection()
        if client is not None:
            return client.zcount(PRESENCE_KEY, time.time() - PRESENCE_WINDOW_SECONDS, "+inf")
    except Exception:
        logger.warning("presence from the database: Redis unavailable", exc_info=True)
    from accounts.selectors import users_seen_since

    return users_seen_since(minutes=DATABASE_FALLBACK_MINUTES)
