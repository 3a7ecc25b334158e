"""WebSocket flood benchmark: does a client that floods and leaves give the server's memory back?

Starts one server process as the Procfile does (`python -m config.server`), then, for each
round, opens `--clients` anonymous /ws/live/ sockets that each write up to `--frames` small
frames (`{"type": "ping"}`) as fast as the kernel takes them, never reading a reply, and close.
Prints the server's RSS before, at its peak during the flood and a few seconds after, and the
`rankly_websockets_open` gauge before and after (from /metrics).

    .venv/bin/python bench/ws_flood.py --frames 1000000 --rounds 2

The server closes a flooding socket (1008) after REALTIME_MAX_FRAMES_PER_SECOND frames in a
second, so a client writes until its kernel buffers fill or the connection is gone: the figure
printed per client is how many frames it got written. This is a benchmark: it prints figures.
"""

import argparse
import base64
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "ws-flood-bench"
FRAME = b'{"type": "ping"}'
# A zero mask leaves the payload as it is; the protocol only requires one to be set.
MASKED_FRAME = bytes([0x81, 0x80 | len(FRAME)]) + b"\0\0\0\0" + FRAME
BATCH = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sockets_open(port: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^rankly_websockets_open(?:\{[^}]*\})? (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else -1


def flood(port: int, frames: int) -> int:
    """Write up to `frames` frames without reading; returns how many were written."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/live/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    sent = 0
    batch = MASKED_FRAME * BATCH
    try:
        while sent < frames:
            count = min(BATCH, frames - sent)
            sock.sendall(batch if count == BATCH else MASKED_FRAME * count)
            sent += count
    except OSError:
        # The server closed the socket: the frames still in the buffer were never read.
        pass
    finally:
        sock.close()
    return sent


def rss_sample(pid: int, peaks: list[float], done: threading.Event) -> None:
    while not done.is_set():
        peaks.append(rss_mb(pid))
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after the close")
    args = parser.parse_args()

    port = free_port()
    env = dict(os.environ, METRICS_TOKEN=TOKEN)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")
    server = subprocess.Popen(
        [sys.executable, "-m", "config.server", "--port", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        # Warm the process (imports, first request) so that "before" is its resting size.
        sockets_open(port)
        flood(port, 10)
        time.sleep(args.settle)
        print(f"flood: {args.clients} client(s) x up to {args.frames:,} frames, per round")
        print("round | frames written per client | RSS before / peak / after | gauge before/after")
        for round_number in range(1, args.rounds + 1):
            gauge_before, rss_before = sockets_open(port), rss_mb(server.pid)
            peaks = [rss_before]
            done = threading.Event()
            sampler = threading.Thread(target=rss_sample, args=(server.pid, peaks, done))
            sampler.start()
            started = time.monotonic()
            with ThreadPoolExecutor(args.clients) as pool:
                written = list(pool.map(lambda _: flood(port, args.frames), range(args.clients)))
            elapsed = time.monotonic() - started
            time.sleep(args.settle)
            done.set()
            sampler.join()
            peak, rss_after, gauge_after = max(peaks), rss_mb(server.pid), sockets_open(port)
            print(
                f"{round_number} | {min(written):,}-{max(written):,} in {elapsed:.1f} s | "
                f"{rss_before:.0f} / {peak:.0f} / {rss_after:.0f} MB "
                f"({rss_after - rss_before:+.1f}) | {gauge_before} / {gauge_after}"
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
