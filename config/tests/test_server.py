"""WEB_CONCURRENCY server processes behind one port (config.server)."""

import asyncio
import base64
import contextlib
import io
import json
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import websockets
from twisted.internet import reactor, tcp
from twisted.internet.testing import StringTransport
from twisted.web.http_headers import Headers

from config.server import RanklyHTTPChannel, RanklyHTTPFactory, web_concurrency
from config.tests.private_redis import free_port
from config.tests.responses_app import BIG
from config.tests.workers import (
    connections_per_worker,
    listening_sockets,
    serving_worker,
    start_server,
    stop_server,
    websocket_on,
    worker_pids,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded_env() -> dict[str, str]:
    """The embedded default: no database or Redis URL, so the workers need nothing running;
    this host only, so that WebSocket Origins are checked."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REPLIT_", "UPSTASH_", "DATABASE_", "DJANGO_", "SENTRY_"))
    }
    return {**env, "ALLOWED_HOSTS": "127.0.0.1"}


@pytest.fixture
def two_workers(embedded_env):
    port = free_port()
    process = start_server(port=port, env=embedded_env, processes=2, ping=(1, 2))
    try:
        yield process, port
    finally:
        stop_server(process)


def readyz(connection) -> dict:
    connection.request("GET", "/readyz")
    return json.loads(connection.getresponse().read())


def test_two_workers_answer_on_one_port_each_its_own_process_and_instance(two_workers):
    process, port = two_workers
    pinned = connections_per_worker(process, port=port, count=2)
    assert len(set(pinned)) == 2
    instances = {readyz(connection)["instance"] for connection in pinned.values()}
    assert len(instances) == 2


def test_a_killed_worker_leaves_the_port_answering_and_is_started_again(two_workers):
    process, port = two_workers
    pinned = connections_per_worker(process, port=port, count=2)
    killed, survivor = list(pinned)
    os.kill(killed, signal.SIGKILL)
    # Connections queued on the dead worker's socket are lost with it; once the kernel has
    # closed that socket, every new connection goes to the survivor while the replacement starts.
    while listening_sockets(port) != 1:
        time.sleep(0.01)
    for _ in range(20):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = worker_pids(process.pid)
        if len(pids) == 2 and killed not in pids:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no worker replaced {killed}: {worker_pids(process.pid)}")
    (replacement,) = set(pids) - {survivor}
    assert replacement in connections_per_worker(process, port=port, count=2)


def test_stopping_the_server_stops_every_worker(two_workers):
    process, port = two_workers
    pids = list(connections_per_worker(process, port=port, count=2))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def test_a_worker_that_cannot_start_stops_the_server_with_an_error(embedded_env):
    process = start_server(
        port=free_port(), env=embedded_env, processes=2, application="config.asgi:missing"
    )
    try:
        assert process.wait(timeout=60) != 0
    finally:
        stop_server(process)


def test_every_worker_keeps_the_websocket_promises(two_workers):
    process, port = two_workers
    pids = sorted(connections_per_worker(process, port=port, count=2))

    async def promises(pid: int) -> None:
        ws = await websocket_on(port=port, path="/ws/live/", pid=pid, pids=pids, max_size=None)
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "pong"}
        await ws.send("x" * (1024 * 1024 + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 1009

    async def foreign_origins_refused() -> None:
        for _ in range(6):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(
                    f"ws://127.0.0.1:{port}/ws/live/", origin="http://evil.example"
                )
            assert refused.value.response.status_code == 403

    for pid in pids:
        asyncio.run(promises(pid))
    asyncio.run(foreign_origins_refused())


def silent_peer(port: int) -> socket.socket:
    """A WebSocket client that never answers the server's pings."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/live/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    return sock


def test_every_worker_drops_a_peer_that_stays_silent_past_the_ping_timeout(two_workers):
    process, port = two_workers
    pids = sorted(connections_per_worker(process, port=port, count=2))
    dropped: set[int] = set()
    for _ in range(40):
        sock = silent_peer(port)
        pid = serving_worker(pids=pids, server_port=port, client_port=sock.getsockname()[1])
        if pid in dropped:
            sock.close()
            continue
        started = time.monotonic()
        # Read (never answer) until the server drops the link: its pings at 1 s go unanswered.
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(4096):
                assert time.monotonic() - started < 8, "the silent peer was never dropped"
        sock.close()
        # Not refused at once: dropped once the 2 s ping timeout had run out.
        assert time.monotonic() - started >= 1.5
        dropped.add(pid)
        if dropped == set(pids):
            return
    raise AssertionError(f"only workers {dropped} of {pids} were checked")


def test_one_process_by_default_without_redis_and_one_per_core_with_it(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("REPLIT_DEPLOYMENT", raising=False)
    monkeypatch.delenv("UPSTASH_REDIS_URL", raising=False)
    assert web_concurrency() == 1
    monkeypatch.setenv("UPSTASH_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert web_concurrency() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert web_concurrency() == 3


@pytest.mark.parametrize(("verbosity", "lines"), [(1, 0), (2, 1)])
def test_twisted_formats_its_access_line_only_where_daphne_passes_it_on(verbosity, lines):
    formatted = []
    factory = RanklyHTTPFactory(SimpleNamespace(verbosity=verbosity))
    factory._logFormatter = lambda when, request: formatted.append(request) or "line"
    factory._logFile = io.StringIO()
    factory.log(object())
    assert len(formatted) == lines


@pytest.fixture
def responses_server(embedded_env):
    """One server process on config/tests/responses_app.py's responses."""
    port = free_port()
    process = start_server(
        port=port,
        env=embedded_env,
        processes=1,
        application="config.tests.responses_app:application",
    )
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the server did not listen"
            time.sleep(0.2)
    try:
        yield port
    finally:
        stop_server(process)


def parsed_responses(data: bytes, methods: list[str]) -> list[tuple[int, dict[str, str], bytes]]:
    """Status, headers and body of each response to pipelined requests, read in order."""
    parsed = []
    for method in methods:
        head, _, data = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines)
        }
        body = b""
        if method == "HEAD":
            pass
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body, data = data[:length], data[length:]
        else:
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line, 16)
                body, data = body + data[:size], data[size + 2 :]
                if size == 0:
                    break
        parsed.append((int(status_line.split()[1]), headers, body))
    assert data == b"", "bytes after the last response"
    return parsed


def test_pipelined_responses_of_every_shape_arrive_whole_and_in_order(responses_server):
    requests = [
        ("GET", "/whole"),
        ("GET", "/stream"),
        ("GET", "/big"),
        ("HEAD", "/whole"),
        ("GET", "/missing"),
    ]
    raw = b""
    for index, (method, path) in enumerate(requests):
        close = b"Connection: close\r\n" if index == len(requests) - 1 else b""
        raw += f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + close + b"\r\n"
    with socket.create_connection(("127.0.0.1", responses_server), timeout=30) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
    got = parsed_responses(data, [method for method, _ in requests])
    assert [(status, body) for status, _, body in got] == [
        (200, b"whole"),
        (200, b"one,two,three"),
        (200, BIG),
        (200, b""),
        (404, b""),
    ]
    assert got[1][1]["transfer-encoding"] == "chunked"
    assert got[3][1]["content-length"] == "5"


@pytest.fixture
def channel_on_socket():
    """A RanklyHTTPChannel on one end of a socket pair, its event loop never run: what reaches
    the other end was sent at once."""
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    channel = RanklyHTTPChannel()
    transport = tcp.Connection(ours, channel, reactor)
    transport.connected = 1
    channel.transport = transport
    try:
        yield channel, peer
    finally:
        transport.stopWriting()
        ours.close()
        peer.close()


def received(peer: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := peer.recv(1 << 16):
            data += chunk
    return data


def response_written(channel: RanklyHTTPChannel, body: bytes) -> bytes:
    channel.writeHeaders(
        b"HTTP/1.1", b"200", b"OK", Headers({b"content-length": [str(len(body)).encode()]})
    )
    channel.write(body)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_a_gathered_response_is_sent_at_once_head_and_body_together(channel_on_socket):
    channel, peer = channel_on_socket
    with channel.writes_gathered():
        expected = response_written(channel, b"hello")
    assert received(peer) == expected
    # Twisted's own path, for contrast: buffered until the event loop finds the socket writable.
    response_written(channel, b"again")
    assert received(peer) == b""


def test_what_the_socket_does_not_take_waits_in_order_in_the_connection_buffer(channel_on_socket):
    channel, peer = channel_on_socket
    transport = channel.transport
    with channel.writes_gathered():
        expected = response_written(channel, BIG)
    first = received(peer)
    assert first and len(first) < len(expected)
    assert transport._tempDataLen or transport.dataBuffer
    with channel.writes_gathered():
        expected += response_written(channel, b"next")
    data = first
    while len(data) < len(expected):
        transport.doWrite()
        data += received(peer)
    assert data == expected


def test_a_gathered_response_on_another_transport_goes_through_it_whole():
    # TLS wraps the TCP connection: the gathered response is handed to the wrapper as one write.
    channel = RanklyHTTPChannel()
    channel.transport = StringTransport()
    with channel.writes_gathered():
        expected = response_written(channel, b"hello")
    assert channel.transport.value() == expected


def test_a_connection_asks_the_socket_for_its_address_once():
    asked = []

    class Transport(StringTransport):
        def getHost(self):
            asked.append(1)
            return super().getHost()

    channel = RanklyHTTPChannel()
    channel.transport = Transport()
    assert channel.getHost() is channel.getHost()
    assert len(asked) == 1
