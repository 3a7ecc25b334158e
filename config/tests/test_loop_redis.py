"""The event loop's Redis connections (config.redis.LoopConnections): a reply always reaches the
command that asked for it."""

import asyncio

import pytest
from django.conf import settings
from redis import Redis
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import TimeoutError as RedisTimeoutError

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


def test_a_hung_redis_costs_a_command_its_timeout_and_no_more():
    """A server that accepts and never answers: the command fails within the pool's
    socket_timeout (connecting included), and the next one is tried afresh."""

    async def run() -> tuple[float, float]:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = BlockingConnectionPool.from_url(
            f"redis://127.0.0.1:{port}/0", max_connections=1, socket_timeout=0.3
        )
        loop_redis = LoopConnections(pool)
        elapsed = []
        for _ in range(2):
            started = asyncio.get_running_loop().time()
            with pytest.raises(RedisTimeoutError):
                await loop_redis.execute("GET", "anything")
            elapsed.append(asyncio.get_running_loop().time() - started)
        server.close()
        return elapsed[0], elapsed[1]

    first, second = asyncio.run(run())
    assert 0.25 < first < 1.0
    assert 0.25 < second < 1.0
