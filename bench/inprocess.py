"""CPU per request and thread hops per request, with the ASGI app called in process.

    DATABASE_URL=... UPSTASH_REDIS_URL=... .venv/bin/python -m bench.inprocess [--requests 500]

No server, no network, one request at a time: what one request costs the process, steady
enough to compare two versions on a busy machine where throughput figures swing by 20 %.
Needs a seeded database (`make bench` leaves one). A "hop" is a sync_to_async or async_to_sync
call: each moves the request between the event loop and a worker thread.
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = [
    "/healthz",
    "/api/gamification/home-stats/",
    "/api/gamification/leaderboard/?window=all",
    "/api/gamification/achievements/",
    "/api/products/?category=Headphones",
    "/api/products/3/",
    "/api/rankings/stats/?category=Headphones",
    "/api/rankings/stats/3/",
    "/api/gamification/leaderboard/position/ signed-in",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("paths", nargs="*", default=PATHS, help='"/path?query [signed-in]"')
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

    import django

    django.setup()
    import asgiref.sync

    from bench.scenarios import token_header

    hops = [0]
    sync_to_async_call = asgiref.sync.SyncToAsync.__call__
    async_to_sync_call = asgiref.sync.AsyncToSync.__call__

    async def counted_sync_to_async(self, *a, **k):
        hops[0] += 1
        return await sync_to_async_call(self, *a, **k)

    def counted_async_to_sync(self, *a, **k):
        hops[0] += 1
        return async_to_sync_call(self, *a, **k)

    asgiref.sync.SyncToAsync.__call__ = counted_sync_to_async
    asgiref.sync.AsyncToSync.__call__ = counted_async_to_sync
    # The server's application: a cached route's hit is answered before Django, as served.
    from config.asgi import application as app

    async def request(scope: dict) -> int:
        sent: list[dict] = []
        body = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict:
            if body:
                return body.pop()
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(dict(scope), receive, send)
        return sent[0]["status"]

    async def measure(spec: str) -> str:
        target, _, flag = spec.partition(" ")
        path, _, query = target.partition("?")
        headers = [(b"host", b"127.0.0.1")]
        if flag == "signed-in":
            ((name, value),) = token_header(7).items()
            headers.append((name.lower().encode(), value.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
        }
        for _ in range(20):
            status = await request(scope)
        hops[0] = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.requests):
            status = await request(scope)
        cpu = (time.process_time() - cpu) / args.requests * 1000
        wall = (time.perf_counter() - wall) / args.requests * 1000
        per_request = hops[0] / args.requests
        return f"{spec:<52} {status:>6} {cpu:>7.2f} {wall:>8.2f} {per_request:>5.1f}"

    async def run() -> None:
        print(f"{'path':<52} {'status':>6} {'cpu ms':>7} {'wall ms':>8} {'hops':>5}")
        for spec in args.paths:
            print(await measure(spec), flush=True)

    asyncio.run(run())


if __name__ == "__main__":
    main()
