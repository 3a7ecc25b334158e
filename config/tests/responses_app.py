"""An ASGI application for the server's tests: responses of each shape a view can send."""

BIG = bytes(range(256)) * (16 * 1024)  # 4 MiB: far more than a socket takes at once


async def application(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/whole":
        await _start(send, 200, length=5)
        await send({"type": "http.response.body", "body": b"whole"})
    elif path == "/big":
        await _start(send, 200, length=len(BIG))
        await send({"type": "http.response.body", "body": BIG})
    elif path == "/stream":
        # No length: sent chunked, the last message ending it.
        await _start(send, 200)
        for part in (b"one,", b"two,"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"three"})
    else:
        await _start(send, 404, length=0)
        await send({"type": "http.response.body", "body": b""})


async def _start(send, status: int, *, length: int | None = None) -> None:
    headers = [(b"content-type", b"application/octet-stream")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
