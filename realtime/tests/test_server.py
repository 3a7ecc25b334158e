"""The per-socket limits of the server itself (config/server.py), over a real daphne process."""

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.tests.private_redis import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

OP_TEXT = 0x1
OP_CLOSE = 0x8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An embedded-mode server (in-memory layer, no Redis, no database for /ws/live/)."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "stderr.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "UPSTASH_REDIS_URL", "REPLIT_DEPLOYMENT")
    }
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.server", "--port", str(port), "config.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield port, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class RawSocket:
    """A WebSocket client that writes any frame, UTF-8 or not, and reads when told."""

    def __init__(self, port: int, path: str = "/ws/live/") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, payload: bytes, opcode: int = OP_TEXT) -> None:
        # A zero mask leaves the payload as it is; the protocol only requires one to be set.
        length = len(payload)
        if length < 126:
            header = bytes([0x80 | opcode, 0x80 | length])
        else:
            header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
        self.sock.sendall(header + b"\0\0\0\0" + payload)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed without a close frame")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self) -> tuple[int, bytes]:
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._read(2), "big")
        elif length == 127:
            length = int.from_bytes(self._read(8), "big")
        return first & 0x0F, self._read(length)

    def receive_json(self) -> dict:
        opcode, payload = self.receive()
        assert opcode == OP_TEXT, (opcode, payload)
        return json.loads(payload)

    def close_code(self) -> int:
        while True:
            opcode, payload = self.receive()
            if opcode == OP_CLOSE:
                return int.from_bytes(payload[:2], "big")


def test_malformed_frames_get_error_frames_and_no_traceback(server):
    port, log = server
    client = RawSocket(port)

    client.send(b"[" * 3000 + b"]" * 3000)
    assert client.receive_json()["data"]["code"] == "malformed_frame"
    client.send(b'{"type": "ping", "n": ' + b"9" * 5000 + b"}")
    assert client.receive_json()["data"]["code"] == "malformed_frame"
    time.sleep(1.1)  # past the second's error-frame allowance
    client.send(b'{"type": "\xff\xfe"}')
    assert client.receive_json()["data"]["code"] == "invalid_utf8"
    client.send(b'{"type": "ping"}')
    assert client.receive_json() == {"type": "pong"}

    assert b"Traceback" not in log.read_bytes()


def test_a_flooding_client_is_closed_with_1008(server):
    port, _ = server
    client = RawSocket(port)

    for _ in range(100):
        client.send(b'{"type": "ping"}')

    assert client.close_code() == 1008
