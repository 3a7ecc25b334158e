"""Which Redis this process uses, the one connection pool every synchronous use shares, the
asynchronous pool of the event loop, and the circuit breaker that keeps a dead Redis from
slowing requests down."""

import asyncio
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from redis import Redis
from redis.asyncio import BlockingConnectionPool as AsyncBlockingConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

T = TypeVar("T")

logger = logging.getLogger("rankly.redis")


@dataclass(frozen=True)
class RedisChoice:
    url: str  # "" means no Redis: the caches are locmem
    environment: str  # "development" or "production"
    refused: bool = False  # production was given the development database


def redis_url(*, production: bool) -> str:
    """UPSTASH_REDIS_URL_PROD in production, UPSTASH_REDIS_URL elsewhere; "" when unset."""
    name = "UPSTASH_REDIS_URL_PROD" if production else "UPSTASH_REDIS_URL"
    return os.environ.get(name, "").strip()


def redis_choice(*, production: bool) -> RedisChoice:
    """The Redis for this environment; production never uses the development database."""
    environment = "production" if production else "development"
    url = redis_url(production=production)
    if production and url and url == redis_url(production=False):
        return RedisChoice(url="", environment=environment, refused=True)
    return RedisChoice(url=url, environment=environment)


def redis_cache_options(*, url: str, socket_timeout: float, max_connections: int) -> dict[str, Any]:
    """django-redis OPTIONS: short timeouts, a bounded pool, TLS verified for rediss://."""
    pool_kwargs: dict[str, Any] = {
        "max_connections": max_connections,
        # How long a request waits for a free connection before treating Redis as unavailable.
        "timeout": socket_timeout,
    }
    if url.startswith("rediss://"):
        # Upstash serves certificates from a public CA: verify them and the host name.
        pool_kwargs.update(ssl_cert_reqs="required", ssl_check_hostname=True)
    return {
        "SOCKET_CONNECT_TIMEOUT": socket_timeout,
        "SOCKET_TIMEOUT": socket_timeout,
        "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
        "CONNECTION_POOL_KWARGS": pool_kwargs,
    }


class CircuitBreaker:
    """After a Redis failure, skip Redis for `cooldown` seconds, then let one call probe it.

    Shared by every cache object of a process that talks to the same server (Django makes one
    per thread), so the switch is logged once, not once per request or per thread.
    """

    def __init__(self, *, name: str, cooldown: float) -> None:
        self.name = name
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._open = False
        self._retry_at = 0.0
        self._recover_hooks: list[Callable[[], None]] = []

    @property
    def is_open(self) -> bool:
        return self._open

    def allow(self) -> bool:
        """Whether this call may use Redis: always when closed, one probe per cool-down else."""
        if not self._open:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + self.cooldown
            return True

    def record_failure(self, exc: BaseException) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + self.cooldown
            if self._open:
                return
            self._open = True
        logger.error(
            "⚠️ Redis %s unavailable (%s: %s); using the local fallback cache, retrying every %ss",
            self.name,
            type(exc).__name__,
            exc,
            self.cooldown,
        )

    def record_success(self) -> bool:
        """Close the breaker; True when this call is the one that found Redis back."""
        if not self._open:
            return False
        with self._lock:
            if not self._open:
                return False
            self._open = False
        logger.warning("✅ Redis %s is back; the cache uses it again", self.name)
        return True


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def redis_breaker(*, location: str, cooldown: float) -> CircuitBreaker:
    """The one breaker of this process for a Redis server (keyed by its URL)."""
    with _breakers_lock:
        breaker = _breakers.get(location)
        if breaker is None:
            breaker = _breakers[location] = CircuitBreaker(
                name=_redacted(location), cooldown=cooldown
            )
        return breaker


def _redacted(url: str) -> str:
    """host:port/db of a Redis URL, without its password."""
    return url.split("@")[-1].split("://")[-1]


def redis_is_configured(alias: str = "default") -> bool:
    from django.core.cache import caches
    from django_redis.cache import RedisCache

    return isinstance(caches[alias], RedisCache)


def redis_client(alias: str = "default") -> Redis | None:
    """The cache's own Redis client (its pool is the process's only synchronous pool).

    None when Rankly runs without Redis or while the breaker is open: callers then use their
    local fallback instead of waiting on a socket timeout.
    """
    from django.core.cache import caches
    from django_redis import get_redis_connection

    if not redis_is_configured(alias):
        return None
    breaker = getattr(caches[alias], "breaker", None)
    if breaker is not None and breaker.is_open:
        return None
    return get_redis_connection(alias)


# redis-py's asynchronous connections encode commands in Python; its synchronous ones use
# hiredis's encoder when hiredis is installed, and so does LoopConnections.
_PACKER = HiredisRespSerializer() if HIREDIS_AVAILABLE else None


class LoopConnections:
    """The event loop's connections to Redis, for one command at a time (config.fastpath).

    Each command is sent and its reply read on a connection of its own, without the client's
    retry, event and pool layers, which cost a cached hit more than its own work. At most
    `max_connections` are open at once; a command waits for a free one. A connection whose
    command failed other than by a Redis error reply, or was cancelled, is closed before it is
    used again, so a late reply is never read as another command's. A connection Redis closed
    while idle (a restart) is reconnected once, as redis-py's client retries it.

    The pool's `socket_timeout` bounds a command as a whole (connecting, sending and reading,
    the one retry included) with one timer: the connections themselves are made without it,
    as redis-py would otherwise start a task to time the sending and a timer for the reading.
    """

    def __init__(self, pool: AsyncBlockingConnectionPool) -> None:
        self._pool = pool  # only its settings: it makes the connections
        self._timeout: float | None = pool.connection_kwargs.get("socket_timeout")
        self._free: list[AbstractConnection] = []
        self._slots = asyncio.Semaphore(pool.max_connections)

    async def execute(self, *args: Any) -> Any:
        async with self._slots:
            connection = self._free.pop() if self._free else self._new_connection()
            reused = connection.is_connected
            try:
                async with asyncio.timeout(self._timeout):
                    try:
                        return await self._command(connection, args)
                    except (RedisConnectionError, OSError):
                        if not reused:
                            raise
                        # Idle, then closed by Redis: once more on a new socket.
                        await connection.disconnect()
                        return await self._command(connection, args)
            except ResponseError:
                raise  # the reply was read whole: the connection is clean
            except TimeoutError as exc:
                await connection.disconnect()
                raise RedisTimeoutError(f"no reply from Redis within {self._timeout} s") from exc
            except BaseException:
                await connection.disconnect()
                raise
            finally:
                self._free.append(connection)

    def _new_connection(self) -> AbstractConnection:
        kwargs = {**self._pool.connection_kwargs, "socket_timeout": None}
        connection: AbstractConnection = self._pool.connection_class(**kwargs)
        return connection

    @staticmethod
    async def _command(connection: AbstractConnection, args: tuple[Any, ...]) -> Any:
        packed = _PACKER.pack(*args) if _PACKER is not None else connection.pack_command(*args)
        await connection.send_packed_command(packed, check_health=False)
        return await connection.read_response()


# One per event loop (a server process has one): asyncio connections belong to their loop.
_loop_connections: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopConnections]" = (
    weakref.WeakKeyDictionary()
)
_loop_backends: dict[str, Any] = {}


def loop_cache_backend(alias: str = "default") -> Any:
    """One cache object per process for the event loop's uses (key names, the breaker).

    Django's `caches[alias]` keeps one per thread or asyncio task: on the event loop that would
    build a new backend, its client and its fallback for every request.
    """
    backend = _loop_backends.get(alias)
    if backend is None:
        from django.core.cache import caches

        backend = _loop_backends[alias] = caches.create_connection(alias)
    return backend


def loop_clients_forget(*, setting: str, **kwargs: Any) -> None:
    """After a change of CACHES (tests), the event loop's backends and pools are rebuilt."""
    if setting == "CACHES":
        _loop_backends.clear()
        _loop_connections.clear()


def loop_redis(alias: str = "default") -> LoopConnections | None:
    """The event loop's Redis connections, on the cache's server with the cache's timeouts and
    pool size; None without Redis or while the cache's breaker is open, as `redis_client`."""
    backend = loop_cache_backend(alias)
    breaker = getattr(backend, "breaker", None)
    if breaker is not None and breaker.is_open:
        return None
    loop = asyncio.get_running_loop()
    connections = _loop_connections.get(loop)
    if connections is None:
        connections = _loop_connections_open(alias, backend)
        if connections is not None:
            _loop_connections[loop] = connections
    return connections


def _loop_connections_open(alias: str, backend: Any) -> LoopConnections | None:
    from django.conf import settings
    from django_redis.cache import RedisCache

    if not isinstance(backend, RedisCache):
        return None
    # The options django-redis was given (redis_cache_options): same server, timeouts, TLS.
    options = settings.CACHES[alias]["OPTIONS"]
    pool_kwargs = dict(options.get("CONNECTION_POOL_KWARGS", {}))
    pool = AsyncBlockingConnectionPool.from_url(
        settings.CACHES[alias]["LOCATION"],
        socket_timeout=options.get("SOCKET_TIMEOUT"),
        socket_connect_timeout=options.get("SOCKET_CONNECT_TIMEOUT"),
        **pool_kwargs,
    )
    return LoopConnections(pool)


def redis_key(name: str, alias: str = "default") -> str:
    """A raw Redis key under the cache's KEY_PREFIX: deployments sharing a database stay apart."""
    from django.conf import settings

    return f"{settings.CACHES[alias].get('KEY_PREFIX', 'rankly')}:{name}"


def redis_call(command: Callable[[Redis], T], *, default: T, alias: str = "default") -> T:
    """Run raw Redis commands on the shared pool, behind the cache's circuit breaker.

    `default` without Redis, or when Redis fails or is in its cool-down; never raises a
    connection error or waits on a dead server.
    """
    from django.core.cache import caches

    backend = caches[alias]
    if not hasattr(backend, "call"):
        return default
    result: T = backend.call(command, default)
    return result


def redis_status(alias: str = "default") -> str:
    """What the cache runs on now: redis, degraded (Redis configured, breaker open) or locmem."""
    from django.core.cache import caches

    if not redis_is_configured(alias):
        return "locmem"
    breaker = getattr(caches[alias], "breaker", None)
    return "degraded" if breaker is not None and breaker.is_open else "redis"


def redis_log_startup() -> None:
    """The startup lines saying which Redis this process uses and whether it answers."""
    from django.conf import settings
    from django.core.cache import caches

    choice: RedisChoice = settings.REDIS_CHOICE
    if choice.refused:
        logger.critical(
            "❌ CRITICAL: UPSTASH_REDIS_URL_PROD is the development Redis; production refuses it "
            "and falls back to the in-memory cache (single instance only)"
        )
        return
    if not choice.url:
        if choice.environment == "production":
            logger.critical("❌ CRITICAL: UPSTASH_REDIS_URL_PROD not found in production!")
        else:
            logger.warning("⚠️ UPSTASH_REDIS_URL not found")
        return
    logger.info("🔌 Establishing Redis connection pool for %s...", choice.environment)
    if not redis_is_configured():
        return
    from config.cache_backend import ResilientRedisCache

    backend = caches["default"]
    if isinstance(backend, ResilientRedisCache) and backend.ping():
        logger.info("✅ Redis connected successfully")


def redis_db(url: str) -> int:
    """The database number of a redis:// URL (path /N or ?db=N), 0 when absent."""
    parsed = urlparse(url)
    for part in parsed.query.split("&"):
        if part.startswith("db="):
            return int(part[3:])
    path = parsed.path.strip("/")
    return int(path) if path.isdigit() else 0
