"""Rankly's ASGI application, with two more routes answered before Django: the bench's floors.

`GET /bench/floor` costs the server's HTTP handling and nothing else, so a scenario's ratio to
it says how close to the server's own cost a request comes. `GET /bench/floor-redis` first
reads one missing key from Redis on the connections the cached reads use (config.redis's
`loop_redis`): the least an answer read from Redis costs, one round trip and nothing else.
"""

from bench.scenarios import FLOOR, FLOOR_REDIS
from config.asgi import application as rankly
from config.redis import loop_redis, redis_key

BODY = b'{"status": "ok"}'
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


async def application(scope: dict, receive, send) -> None:
    if scope["type"] == "http" and scope["path"] in (FLOOR, FLOOR_REDIS):
        if scope["path"] == FLOOR_REDIS:
            connections = loop_redis()
            if connections is None:
                raise RuntimeError(f"{FLOOR_REDIS} needs Redis")
            await connections.execute("GET", redis_key("bench:floor"))
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})
        return
    await rankly(scope, receive, send)
