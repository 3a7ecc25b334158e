"""The server processes behind one port (config.server), and which of them serves a connection."""

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[2]


def worker_pids(supervisor_pid: int) -> list[int]:
    children = Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children").read_text()
    return sorted(int(pid) for pid in children.split())


def _tcp_inode(*, server_port: int, client_port: int) -> int | None:
    """The inode of the server's end of a connection, from the kernel's TCP tables."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if local_port == server_port and remote_port == client_port and fields[9] != "0":
                return int(fields[9])
    return None


def listening_sockets(port: int) -> int:
    """How many sockets listen on `port` (one per worker that is accepting)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def serving_worker(*, pids: list[int], server_port: int, client_port: int) -> int | None:
    """Which of `pids` accepted the connection from `client_port` (it must have been answered
    once, so that it is accepted)."""
    inode = _tcp_inode(server_port=server_port, client_port=client_port)
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == wanted:
                    return pid
            except OSError:
                continue
    return None


def start_server(
    *,
    port: int,
    env: dict[str, str],
    processes: int,
    ping: tuple[int, int] = (25, 60),
    application: str = "config.asgi:application",
) -> subprocess.Popen:
    """The Procfile's web command line on a loopback port, with `processes` workers."""
    command = [
        sys.executable,
        "-m",
        "config.server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--ping-interval",
        str(ping[0]),
        "--ping-timeout",
        str(ping[1]),
        application,
    ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, "WEB_CONCURRENCY": str(processes)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def connections_per_worker(
    process: subprocess.Popen, *, port: int, count: int, timeout: float = 60
) -> dict[int, http.client.HTTPConnection]:
    """One open HTTP connection to each of the `count` workers, once every one answers."""
    deadline = time.monotonic() + timeout
    pinned: dict[int, http.client.HTTPConnection] = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        pids = worker_pids(process.pid)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
        except OSError:
            connection.close()
            time.sleep(0.2)
            continue
        client_port = connection.sock.getsockname()[1]
        pid = serving_worker(pids=pids, server_port=port, client_port=client_port)
        if pid is None or pid in pinned:
            connection.close()
        else:
            pinned[pid] = connection
        if len(pinned) == count:
            return pinned
    for connection in pinned.values():
        connection.close()
    raise AssertionError(f"{count} workers did not answer on {port} within {timeout} s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def websocket_on(*, port: int, path: str, pid: int, pids: list[int], **options):
    """A WebSocket that worker `pid` serves, from as many tries as it takes."""
    for _ in range(50):
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}{path}", origin=f"http://127.0.0.1:{port}", **options
        )
        client_port = ws.transport.get_extra_info("sockname")[1]
        if serving_worker(pids=pids, server_port=port, client_port=client_port) == pid:
            return ws
        await ws.close()
    raise AssertionError(f"no socket reached worker {pid}")
