"""daphne, as WEB_CONCURRENCY processes behind one port, with oversized WebSocket messages refused
by a close frame (1009), not a dropped link.

Takes daphne's command line: `python -m config.server [daphne options] config.asgi:application`.

WEB_CONCURRENCY sets how many server processes answer on the port: by default the cores this
process may use when Redis is configured, and one without Redis, whose local caches and
in-memory channel layer one process cannot share with another. With one, this process is the
server. With more, it is a supervisor that starts the workers, each listening on the same
address with SO_REUSEPORT, so that the kernel spreads new connections over them; a worker joins
only once Django is loaded, so no connection waits on one that is starting. A worker that exits
while it serves is started again, the others keeping the port answering meanwhile; the
connections the dead worker held or was queueing are lost. A worker that exits with an error
within its first seconds means a broken release rather than a crash: the supervisor then stops
every worker and exits with an error. SIGTERM and SIGINT stop the workers, then the supervisor.
"""

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import reactor
from twisted.internet.endpoints import AdoptedStreamServerEndpoint, serverFromString

from config.redis import redis_url

logger = logging.getLogger("rankly.server")

# A worker that exits with an error this soon after its start failed to start: restarting
# cannot help.
STARTUP_SECONDS = 10.0
STOP_SECONDS = 10.0
LISTEN_BACKLOG = 1024


REUSE_PORT_FLAG = "--reuse-port"
REUSE_PORT_ENDPOINT = "rankly-reuseport:"


def _server_from_string(reactor_: object, description: str) -> object:
    """Twisted's endpoints, and one more: a TCP port shared with the other workers."""
    if not description.startswith(REUSE_PORT_ENDPOINT):
        return serverFromString(reactor_, description)
    host, _, port = description.removeprefix(REUSE_PORT_ENDPOINT).rpartition("/")
    sock = listening_socket(host, int(port))
    sock.setblocking(False)
    # Twisted adopts a copy of the descriptor and closes this one.
    return AdoptedStreamServerEndpoint(reactor_, sock.detach(), sock.family)


daphne.server.serverFromString = _server_from_string


class RanklyServer(Server):
    def run(self) -> None:
        # daphne's WebSocket factory fails a message over its size limit by dropping the TCP
        # connection; with failByDrop off, autobahn sends the close code 1009 first.
        reactor.callWhenRunning(lambda: self.ws_factory.setProtocolOptions(failByDrop=False))
        super().run()


class RanklyCommandLineInterface(CommandLineInterface):
    server_class = RanklyServer


def web_concurrency() -> int:
    value = os.environ.get("WEB_CONCURRENCY", "").strip()
    if not value:
        production = os.environ.get("REPLIT_DEPLOYMENT", "") == "1"
        return len(os.sched_getaffinity(0)) if redis_url(production=production) else 1
    processes = int(value)
    if processes < 1:
        raise SystemExit(f"WEB_CONCURRENCY must be at least 1, not {value}")
    return processes


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(LISTEN_BACKLOG)
    return sock


class Supervisor:
    """Starts `processes` workers on one address and keeps them running until told to stop."""

    def __init__(self, *, processes: int, worker_args: list[str]) -> None:
        self.worker_args = worker_args
        self.workers: dict[int, tuple[subprocess.Popen, float]] = {}
        self.processes = processes
        self.stopping = False

    def start_worker(self, index: int) -> None:
        env = dict(os.environ)
        if env.get("INSTANCE_ID"):
            env["INSTANCE_ID"] = f"{env['INSTANCE_ID']}-{index}"
        command = [sys.executable, "-m", "config.server", REUSE_PORT_FLAG, *self.worker_args]
        self.workers[index] = (subprocess.Popen(command, env=env), time.monotonic())

    def stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for index in range(self.processes):
            self.start_worker(index)
        failed = False
        while not self.stopping:
            for index, (process, started) in list(self.workers.items()):
                code = process.poll()
                if code is None or self.stopping:
                    continue
                # Killed by a signal (the OOM killer, an operator) is a crash, whenever it came.
                if code > 0 and time.monotonic() - started < STARTUP_SECONDS:
                    logger.error("worker %d exited with %s while starting", index, code)
                    failed = True
                    self.stopping = True
                    break
                logger.warning("worker %d (pid %d) exited with %s", index, process.pid, code)
                self.start_worker(index)
            time.sleep(0.2)
        self.stop_workers()
        return 1 if failed else 0

    def stop_workers(self) -> None:
        for process, _ in self.workers.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for process, _ in self.workers.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_argv(argv: list[str]) -> list[str]:
    """daphne's command line with its --bind and --port turned into a shared-port endpoint."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-b", "--bind", dest="host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8000)
    known, rest = parser.parse_known_args([arg for arg in argv if arg != REUSE_PORT_FLAG])
    return ["--endpoint", f"{REUSE_PORT_ENDPOINT}{known.host}/{known.port}", *rest]


def main(argv: list[str]) -> int:
    if REUSE_PORT_FLAG in argv:
        return RanklyCommandLineInterface().run(worker_argv(argv)) or 0
    processes = web_concurrency()
    if processes == 1:
        return RanklyCommandLineInterface().run(argv) or 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logger.info("starting %d workers", processes)
    return Supervisor(processes=processes, worker_args=argv).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
