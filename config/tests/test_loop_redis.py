"""The event loop's Redis connections (config.redis.LoopConnections): a reply always reaches the
command that asked for it."""

import asyncio

import pytest
from django.conf import settings
from redis import Redis
from redis.asyncio import BlockingConnectionPool

from config.redis import LoopConnections

pytestmark = pytest.mark.redis


def connections(max_connections: int = 4) -> LoopConnections:
    pool = BlockingConnectionPool.from_url(
        settings.CACHES["default"]["LOCATION"], max_connections=max_connections, socket_timeout=2
    )
    return LoopConnections(pool)


def test_a_cancelled_command_never_hands_its_reply_to_the_next():
    sync = Redis.from_url(settings.CACHES["default"]["LOCATION"])
    sync.delete("loop-redis-late")

    async def run() -> bytes:
        loop_redis = connections(max_connections=1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(loop_redis.execute("BLPOP", "loop-redis-late", 1), 0.1)
        # The reply the cancelled command was waiting for arrives now.
        sync.rpush("loop-redis-late", "late")
        await asyncio.sleep(0.1)
        return await loop_redis.execute("ECHO", "mine")

    try:
        assert asyncio.run(run()) == b"mine"
    finally:
        sync.delete("loop-redis-late")


def test_a_connection_redis_closed_while_idle_is_opened_again():
    sync = Redis.from_url(settings.CACHES["default"]["LOCATION"])

    async def run() -> bytes:
        loop_redis = connections()
        client_id = await loop_redis.execute("CLIENT", "ID")
        sync.client_kill_filter(_id=client_id)
        return await loop_redis.execute("ECHO", "again")

    assert asyncio.run(run()) == b"again"


def test_no_more_connections_than_the_pool_allows():
    async def run() -> set[int]:
        loop_redis = connections(max_connections=2)
        ids = await asyncio.gather(*(loop_redis.execute("CLIENT", "ID") for _ in range(20)))
        return set(ids)

    assert len(asyncio.run(run())) <= 2


def test_an_error_reply_reaches_its_caller_and_the_connection_goes_on():
    async def run() -> tuple[set[int], bytes]:
        loop_redis = connections(max_connections=1)
        first = await loop_redis.execute("CLIENT", "ID")
        with pytest.raises(Exception, match="unknown command"):
            await loop_redis.execute("NO-SUCH-COMMAND")
        second = await loop_redis.execute("CLIENT", "ID")
        return {first, second}, await loop_redis.execute("ECHO", "fine")

    ids, echo = asyncio.run(run())
    assert len(ids) == 1
    assert echo == b"fine"
