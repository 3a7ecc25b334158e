"""WebSocket fan-out benchmark: Rankly against Socket.IO with the Redis adapter and a floor.

Opens N sockets to /ws/live/ of one Rankly server process (`python -m config.server`, as the
Procfile runs it), raises M broadcasts with event_send from a separate process (through
Redis), and prints the sockets held, the time to connect them all, failed connects, fan-out
latency p50/p99 (from the event's `ts`, stamped by the sending process after its commit, to
its receipt at each socket), the server's memory and its memory per socket. Then the same
against:
- the original architecture's stack, Socket.IO 4 with the Redis adapter (bench/socketio,
  broadcasts from a second Node process through Redis), when `node` is installed and
  `npm install` has been run in bench/socketio;
- a bare `websockets` server holding as many sockets and sending the same frame: the floor.

    (cd bench/socketio && npm install)
    UPSTASH_REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python bench/ws_fanout.py --clients 5000

The clients run in their own process. This is a benchmark, not a test: it prints figures.
"""

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CONNECT_CONCURRENCY = 100
DAPHNE_FLAGS = ["--ping-interval", "25", "--ping-timeout", "60", "config.asgi:application"]
SOCKETIO = ROOT / "bench" / "socketio"


def open_files_raise() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_wait(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- client process --------------------------------------------------------------------------
async def client_run(url: str, clients: int, expect: int, timeout: float) -> dict:
    """Socket.IO URLs (`/socket.io/`) speak Engine.IO 4 over the WebSocket: `40` joins the
    default namespace, `2` is the server's ping (answered `3`), `42[name, payload]` an event."""
    import websockets

    socketio = "/socket.io/" in url

    semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)
    # The page's own origin: the server's scheme, host and port.
    origin = "http://" + url.split("://", 1)[1].split("/", 1)[0]
    failed = 0
    latencies: list[float] = []
    received = 0

    async def one() -> websockets.ClientConnection | None:
        nonlocal failed
        async with semaphore:
            try:
                ws = await websockets.connect(
                    url, origin=origin, open_timeout=30, ping_interval=None
                )
                if socketio:
                    await ws.send("40")
                return ws
            except Exception:
                failed += 1
                return None

    started = time.perf_counter()
    sockets = [s for s in await asyncio.gather(*(one() for _ in range(clients))) if s]
    connect_seconds = time.perf_counter() - started
    print(json.dumps({"ready": len(sockets)}), flush=True)

    async def listen(ws) -> None:
        nonlocal received
        got = 0
        while got < expect:
            raw = await ws.recv()
            now = time.time()
            if socketio:
                if raw == "2":
                    await ws.send("3")
                if not raw.startswith("42"):
                    continue
                frame = json.loads(raw[2:])[1]
            else:
                frame = json.loads(raw)
            if frame.get("type") != "ranking.submitted":
                continue
            latencies.append(now - datetime.fromisoformat(frame["ts"]).timestamp())
            got += 1
            received += 1

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(listen(s) for s in sockets)), timeout)
    for ws in sockets:
        ws.transport.abort()
    return {
        "held": len(sockets),
        "failed": failed,
        "connect_s": connect_seconds,
        "received": received,
        "expected": len(sockets) * expect,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


# --- floor server process ---------------------------------------------------------------------
async def floor_serve(port: int) -> None:
    import websockets

    connections: set = set()

    async def handler(ws) -> None:
        connections.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connections.discard(ws)

    async with websockets.serve(handler, "127.0.0.1", port, ping_interval=None, backlog=1024):
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            frame = json.dumps(
                {
                    "type": "ranking.submitted",
                    "data": {"seq": command["seq"]},
                    "ts": datetime.now(UTC).isoformat(),
                }
            )
            websockets.broadcast(connections, frame)


# --- broadcaster process ---------------------------------------------------------------------
def rankly_broadcast(messages: int, interval: float) -> None:
    """event_send from synchronous code run by an event loop, as a view runs under daphne, so
    the layer keeps one Redis connection instead of opening one per event."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from realtime.events import LIVE_GROUP, event_send

    def send(seq: int) -> None:
        with transaction.atomic():
            event_send(
                group=LIVE_GROUP,
                event_type="ranking.submitted",
                data={"display_name": "bench", "category": "bench", "product_ids": [seq]},
            )

    async def run() -> None:
        for seq in range(messages):
            await sync_to_async(send)(seq)
            await asyncio.sleep(interval)

    asyncio.run(run())


# --- orchestration ---------------------------------------------------------------------------
def client_start(url: str, args) -> subprocess.Popen:
    counts = ["--clients", str(args.clients), "--messages", str(args.messages)]
    return subprocess.Popen(
        [PYTHON, __file__, "--role", "client", "--url", url, *counts],
        stdout=subprocess.PIPE,
        text=True,
    )


def client_ready(client: subprocess.Popen) -> int:
    return json.loads(client.stdout.readline())["ready"]


def client_result(client: subprocess.Popen, timeout: float) -> dict:
    out, _ = client.communicate(timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def run_rankly(args, layer: str) -> dict:
    port = free_port()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="ws_settings",
        PYTHONPATH=f"{ROOT / 'bench'}:{ROOT}",
        RANKLY_BENCH_LAYER=layer.removesuffix("-noreplay"),
        RANKLY_BENCH_REPLAY="off" if layer.endswith("-noreplay") else "on",
    )
    server = subprocess.Popen(
        [PYTHON, "-m", "config.server", "-b", "127.0.0.1", "-p", str(port), *DAPHNE_FLAGS],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_wait(port)
        idle_rss = rss_mb(server.pid)
        client = client_start(f"ws://127.0.0.1:{port}/ws/live/", args)
        held = client_ready(client)
        held_rss = rss_mb(server.pid)
        subprocess.run(
            [
                PYTHON,
                __file__,
                "--role",
                "broadcast",
                "--messages",
                str(args.messages),
                "--interval",
                str(args.interval),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
        )
        result = client_result(client, timeout=60)
        result.update(held=held, rss_idle_mb=idle_rss, rss_mb=held_rss)
        return result
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_floor(args) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [PYTHON, __file__, "--role", "floor-server", "--port", str(port)],
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        port_wait(port)
        idle_rss = rss_mb(server.pid)
        client = client_start(f"ws://127.0.0.1:{port}/", args)
        held = client_ready(client)
        held_rss = rss_mb(server.pid)
        for seq in range(args.messages):
            server.stdin.write(json.dumps({"seq": seq}) + "\n")
            server.stdin.flush()
            time.sleep(args.interval)
        result = client_result(client, timeout=60)
        result.update(held=held, rss_idle_mb=idle_rss, rss_mb=held_rss)
        return result
    finally:
        server.terminate()
        server.wait(timeout=10)


def socketio_available() -> bool:
    return shutil.which("node") is not None and (SOCKETIO / "node_modules").is_dir()


def run_socketio(args) -> dict:
    port = free_port()
    redis_url = os.environ["UPSTASH_REDIS_URL"]
    server = subprocess.Popen(
        ["node", "server.js", "serve", str(port), redis_url],
        cwd=SOCKETIO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        idle_rss = rss_mb(server.pid)
        client = client_start(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", args)
        held = client_ready(client)
        held_rss = rss_mb(server.pid)
        subprocess.run(
            ["node", "server.js", "emit", redis_url, str(args.messages), str(args.interval)],
            cwd=SOCKETIO,
            check=True,
            timeout=120,
        )
        result = client_result(client, timeout=60)
        result.update(held=held, rss_idle_mb=idle_rss, rss_mb=held_rss)
        return result
    finally:
        server.terminate()
        server.wait(timeout=10)


def report(name: str, r: dict) -> None:
    per_socket = (r["rss_mb"] - r["rss_idle_mb"]) * 1024 / max(r["held"], 1)
    print(
        f"{name:<22} held {r['held']:>5}  failed {r['failed']:>4}  connect {r['connect_s']:6.2f} s"
        f"  received {r['received']}/{r['expected']}  p50 {r['p50_ms']:7.1f} ms"
        f"  p99 {r['p99_ms']:7.1f} ms  RSS {r['rss_idle_mb']:.0f} -> {r['rss_mb']:.0f} MB"
        f" ({per_socket:.1f} KB a socket)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", default="run")
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=10)
    # Far enough apart that each broadcast is measured alone, not queued behind the last one.
    parser.add_argument("--interval", type=float, default=2.0)
    # A "-noreplay" suffix runs without keeping events for reconnecting clients.
    parser.add_argument("--layers", default="pubsub")
    parser.add_argument("--rounds", type=int, default=1, help="repeat, alternating servers")
    parser.add_argument("--url")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    open_files_raise()

    if args.role == "client":
        result = asyncio.run(client_run(args.url, args.clients, args.messages, timeout=45))
        print(json.dumps(result), flush=True)
        return
    if args.role == "floor-server":
        asyncio.run(floor_serve(args.port))
        return
    if args.role == "broadcast":
        rankly_broadcast(args.messages, args.interval)
        return

    if not os.environ.get("UPSTASH_REDIS_URL"):
        sys.exit("Set UPSTASH_REDIS_URL: the broadcast reaches daphne through Redis.")
    print(f"{args.clients} clients, {args.messages} broadcasts, {os.cpu_count()} CPUs")
    if not socketio_available():
        print("Socket.IO skipped: needs node and `npm install` in bench/socketio")
    for _ in range(args.rounds):
        floor = run_floor(args)
        report("floor (websockets)", floor)
        socketio = None
        if socketio_available():
            socketio = run_socketio(args)
            report("socket.io + redis", socketio)
            print(f"{'':<22} p99 / floor p99 = {socketio['p99_ms'] / floor['p99_ms']:.2f}")
        for layer in args.layers.split(","):
            result = run_rankly(args, layer)
            report(f"rankly ({layer})", result)
            ratios = f"p99 / floor p99 = {result['p99_ms'] / floor['p99_ms']:.2f}"
            if socketio:
                ratios += f", p99 / socket.io p99 = {result['p99_ms'] / socketio['p99_ms']:.2f}"
            print(f"{'':<22} {ratios}")


if __name__ == "__main__":
    main()
