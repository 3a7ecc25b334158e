"""Rankly's ASGI application, with one more route answered before Django: the bench's floor.

`GET /bench/floor` costs the server's HTTP handling and nothing else, so a scenario's ratio to
it says how close to the server's own cost a request comes.
"""

from bench.scenarios import FLOOR
from config.asgi import application as rankly

BODY = b'{"status": "ok"}'
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


async def application(scope: dict, receive, send) -> None:
    if scope["type"] == "http" and scope["path"] == FLOOR:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})
        return
    await rankly(scope, receive, send)
