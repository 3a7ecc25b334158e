"""daphne, with per-socket limits that hold before the application sees a frame.

- A message over the size limit is refused with the close code 1009, not a dropped link.
- A client sending more than REALTIME_MAX_FRAMES_PER_SECOND frames, or more than
  REALTIME_RECEIVE_QUEUE frames ahead of the application, is closed with 1008 and its further
  frames are dropped: daphne's own queue to the application is unbounded.
- A client that does not read is closed with 1013 once REALTIME_SEND_BUFFER_BYTES wait for it
  beyond the transport's own buffer, instead of being buffered without bound.
- A text frame that is not UTF-8 reaches the application as bytes, which answers with an error
  frame, rather than failing the connection.
- Twisted's access-log line, formatted for every request and then discarded at daphne's default
  verbosity, is not formatted at all (RanklyHTTPFactory).
- A response's last message (a whole response, for most) is written with one send() when
  nothing waits in the connection's buffer, instead of Twisted buffering it and asking the
  event loop to watch the socket for writability (RanklyHTTPChannel).
- A WebSocket's scope carries `extensions["rankly.wire_write"]`: a function that writes a
  frame already encoded for the wire (realtime.hub.wire_frame) straight to the transport, so
  a broadcast is framed once, not once per socket through ASGI and autobahn.

Takes daphne's command line: `python -m config.server [daphne options] config.asgi:application`.

WEB_CONCURRENCY sets how many server processes answer on the port: by default the cores this
process may use when Redis is configured, and one without Redis, whose local caches and
in-memory channel layer one process cannot share with another. With one, this process is the
server. With more, it is a supervisor that starts the workers, each listening on the same
address with SO_REUSEPORT, so that the kernel spreads new connections over them; a worker joins
only once Django is loaded, so no connection waits on one that is starting. A worker that exits
while it serves is started again, the others keeping the port answering meanwhile; the
connections the dead worker held or was queueing are lost. A worker that exits before it ever
listened means a broken release rather than a crash: the supervisor then stops every worker and
exits with an error. SIGTERM and SIGINT stop the workers, then the supervisor.
"""

# Pinned: daphne==4.2.3, autobahn==26.10.2, Twisted==26.10.0 (overrides Server.run, WebRequest,
# HTTPChannel; requirements.txt).
import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet import reactor, tcp
from twisted.internet.endpoints import AdoptedStreamServerEndpoint, serverFromString
from twisted.internet.interfaces import IPushProducer
from twisted.web.http import HTTPChannel, Request, _GenericHTTPChannelProtocol
from twisted.web.http_headers import Headers
from zope.interface import implementer

from config.redis import redis_url

logger = logging.getLogger("rankly.server")

STOP_SECONDS = 10.0
LISTEN_BACKLOG = 1024


REUSE_PORT_FLAG = "--reuse-port"
REUSE_PORT_ENDPOINT = "rankly-reuseport:"
# A pipe the worker writes one byte to once it listens: how the supervisor tells a worker that
# failed to start (restarting cannot help) from one that crashed while serving.
READY_FD_FLAG = "--ready-fd"
_ready_fd: int | None = None


def _server_from_string(reactor_: object, description: str) -> object:
    """Twisted's endpoints, and one more: a TCP port shared with the other workers."""
    if not description.startswith(REUSE_PORT_ENDPOINT):
        return serverFromString(reactor_, description)  # type: ignore[no-untyped-call]  # Twisted
    host, _, port = description.removeprefix(REUSE_PORT_ENDPOINT).rpartition("/")
    sock = listening_socket(host, int(port))
    sock.setblocking(False)
    if _ready_fd is not None:
        os.write(_ready_fd, b"1")
        os.close(_ready_fd)
    # Twisted adopts a copy of the descriptor and closes this one.
    return AdoptedStreamServerEndpoint(reactor_, sock.detach(), sock.family)  # type: ignore[no-untyped-call]


daphne.server.serverFromString = _server_from_string


def write_now(transport: object, data: bytes) -> bool:
    """Write to a TCP connection with one send() when nothing is buffered before it, as asyncio's
    transports do, instead of Twisted buffering it and asking the event loop to watch the socket
    for writability (two epoll_ctl calls and one more loop iteration); what the socket does not
    take is buffered by Twisted as before. False when the transport is not a TCP connection."""
    if not isinstance(transport, tcp.Connection):
        return False
    if not transport.dataBuffer and not transport._tempDataLen and not transport.disconnecting:
        sent = transport.writeSomeData(data)
        if not isinstance(sent, int) or sent == len(data):
            # Sent, or the connection is lost (Twisted notices when it reads).
            return True
        data = data[sent:]
    transport.write(data)  # type: ignore[no-untyped-call]  # Twisted's FileDescriptor is untyped
    return True


class RanklyHTTPChannel(HTTPChannel):
    """Twisted's HTTP connection, whose writes can be gathered and then sent at once, and which
    asks the socket for its local address once, not for every request."""

    _gathered: list[bytes] | None = None
    _host: object = None

    def getHost(self) -> object:
        if self._host is None:
            self._host = super().getHost()  # type: ignore[no-untyped-call]  # Twisted's http is untyped
        return self._host

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Headers) -> None:
        if self._gathered is None or not isinstance(headers, Headers):
            super().writeHeaders(version, code, reason, headers)  # type: ignore[no-untyped-call]  # Twisted's http is untyped
            return
        # Twisted's own serialisation, which writes to the transport directly.
        gathered = self._gathered
        gathered += (version, b" ", code, b" ", reason, b"\r\n")
        for name, values in headers.getAllRawHeaders():
            for value in values:
                gathered += (name, b": ", value, b"\r\n")
        gathered.append(b"\r\n")

    def write(self, data: bytes) -> None:
        if self._gathered is None:
            super().write(data)  # type: ignore[no-untyped-call]  # Twisted's http is untyped
        else:
            self._gathered.append(data)

    def writeSequence(self, iovec: list[bytes]) -> None:
        if self._gathered is None:
            super().writeSequence(iovec)  # type: ignore[no-untyped-call]  # Twisted's http is untyped
        else:
            self._gathered.extend(iovec)

    @contextlib.contextmanager
    def writes_gathered(self) -> Iterator[None]:
        """The writes made inside go out together, the head and body of a response in one
        segment, through `write_now`."""
        self._gathered = []
        try:
            yield
        finally:
            data, self._gathered = b"".join(self._gathered), None
            if data and not write_now(self.transport, data):
                super().write(data)  # type: ignore[no-untyped-call]  # Twisted's http is untyped


class RanklyWebRequest(WebRequest):
    """daphne's HTTP request, writing a response's last message through its channel's
    `writes_gathered`: a response sent whole costs one send()."""

    def handle_reply(self, message: dict[str, Any]) -> None:
        channel = self.channel
        last = message.get("type") == "http.response.body" and not message.get("more_body")
        if not last or not isinstance(channel, RanklyHTTPChannel):
            super().handle_reply(message)  # type: ignore[no-untyped-call]  # daphne ships no annotations
            return
        with channel.writes_gathered():
            super().handle_reply(message)  # type: ignore[no-untyped-call]  # daphne ships no annotations


class RanklyHTTPFactory(HTTPFactory):
    """daphne's HTTP factory, with Rankly's channel and request, and without Twisted's own
    access-log line at daphne's default verbosity: Twisted formats one for every request, and
    daphne then discards Twisted's log (it writes its own access log). From verbosity 2, daphne
    passes Twisted's log on, and the line is written as before."""

    def protocol(self) -> _GenericHTTPChannelProtocol:
        return _GenericHTTPChannelProtocol(RanklyHTTPChannel())  # type: ignore[no-untyped-call]  # Twisted's http is untyped

    def buildProtocol(self, addr: object) -> _GenericHTTPChannelProtocol:
        protocol: _GenericHTTPChannelProtocol = super().buildProtocol(addr)  # type: ignore[no-untyped-call]  # daphne ships no annotations
        protocol.requestFactory = RanklyWebRequest
        return protocol

    def log(self, request: Request) -> None:
        if self.server.verbosity > 1:
            super().log(request)


daphne.server.HTTPFactory = RanklyHTTPFactory  # type: ignore[misc]  # daphne's module global


CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013


@implementer(IPushProducer)  # type: ignore[no-untyped-call]  # zope ships no annotations
class RanklyWebSocketProtocol(WebSocketProtocol):
    refused = False
    # Set by the transport (as this socket's producer) while its buffer is full.
    paused = False
    sent_while_paused = 0
    window_start = 0.0
    window_frames = 0

    def onOpen(self) -> None:
        super().onOpen()  # type: ignore[no-untyped-call]  # daphne ships no annotations
        # The HTTP channel that upgraded the connection is its producer until now.
        transport = self.transport
        if not isinstance(transport, tcp.Connection):
            return
        if transport.producer is not None:
            transport.unregisterProducer()
        transport.registerProducer(self, True)

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.sent_while_paused = 0

    def stopProducing(self) -> None:
        self.paused = False

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.refused:
            return
        now = time.monotonic()
        if now - self.window_start >= 1.0:
            self.window_start, self.window_frames = now, 0
        self.window_frames += 1
        queue = getattr(self, "application_queue", None)
        if self.window_frames > settings.REALTIME_MAX_FRAMES_PER_SECOND or (
            queue is not None and queue.qsize() >= settings.REALTIME_RECEIVE_QUEUE
        ):
            self.refuse(CLOSE_POLICY_VIOLATION)
            return
        if not isBinary:
            try:
                payload.decode("utf8")
            except UnicodeDecodeError:
                isBinary = True
        super().onMessage(payload, isBinary)  # type: ignore[no-untyped-call]  # daphne ships no annotations

    def serverSend(self, content: bytes | str, binary: bool = False) -> None:
        if self.refused:
            return
        if self.paused:
            self.sent_while_paused += len(content)
            if self.sent_while_paused > settings.REALTIME_SEND_BUFFER_BYTES:
                self.refuse(CLOSE_TRY_AGAIN_LATER)
                return
        super().serverSend(content, binary)  # type: ignore[no-untyped-call]  # daphne ships no annotations

    def serverClose(self, code: int | None = None) -> None:
        # autobahn's sendClose takes only 1000 and 3000-4999; the application closes with the
        # protocol's own codes too (1008, 1009, 1013).
        self.sendCloseFrame(code=1000 if code is None else code)

    def wire_write(self, wire: bytes) -> bool:
        """Write a whole server frame; False when only the ASGI path can send now."""
        if self.refused or self.state != self.STATE_OPEN or self._perMessageCompress is not None:
            return False
        if self.paused:
            self.sent_while_paused += len(wire)
            if self.sent_while_paused > settings.REALTIME_SEND_BUFFER_BYTES:
                self.refuse(CLOSE_TRY_AGAIN_LATER)
                return True
        return write_now(self.transport, wire)

    def refuse(self, code: int) -> None:
        self.refused = True
        # The close frame may wait behind unread data: autobahn drops the link if unanswered.
        self.sendCloseFrame(code=code)


class RanklyServer(Server):
    def create_application(self, protocol: object, scope: dict[str, Any]) -> object:
        if scope.get("type") == "websocket" and isinstance(protocol, RanklyWebSocketProtocol):
            extensions = {**scope.get("extensions", {}), "rankly.wire_write": protocol.wire_write}
            scope = {**scope, "extensions": extensions}
        return super().create_application(protocol, scope)  # type: ignore[no-untyped-call]  # daphne ships no annotations

    def run(self) -> None:
        # daphne's WebSocket factory fails a message over its size limit by dropping the TCP
        # connection; with failByDrop off, autobahn sends the close code 1009 first. UTF-8 is
        # checked by onMessage above, so autobahn must not fail the connection for it first.
        reactor.callWhenRunning(self.websocket_options)
        super().run()  # type: ignore[no-untyped-call]  # daphne ships no annotations

    def websocket_options(self) -> None:
        factory = self.ws_factory
        factory.protocol = RanklyWebSocketProtocol
        factory.setProtocolOptions(
            failByDrop=False,
            utf8validateIncoming=False,
            closeHandshakeTimeout=1,
        )


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


class Worker:
    def __init__(self, *, index: int, worker_args: list[str]) -> None:
        env = dict(os.environ)
        if env.get("INSTANCE_ID"):
            env["INSTANCE_ID"] = f"{env['INSTANCE_ID']}-{index}"
        self.ready_read, ready_write = os.pipe()
        os.set_blocking(self.ready_read, False)
        command = [
            sys.executable,
            "-m",
            "config.server",
            REUSE_PORT_FLAG,
            READY_FD_FLAG,
            str(ready_write),
            *worker_args,
        ]
        try:
            self.process = subprocess.Popen(command, env=env, pass_fds=(ready_write,))
        finally:
            os.close(ready_write)
        self.ready = False

    def poll(self) -> int | None:
        """The exit code once the worker has exited; notes meanwhile whether it listens."""
        code = self.process.poll()
        if not self.ready:
            # Read after the exit check, so that a worker that listened and then died is seen
            # as having listened.
            with contextlib.suppress(BlockingIOError):
                self.ready = os.read(self.ready_read, 1) == b"1"
        if code is not None:
            os.close(self.ready_read)
        return code


class Supervisor:
    """Starts `processes` workers on one address and keeps them running until told to stop."""

    def __init__(self, *, processes: int, worker_args: list[str]) -> None:
        self.worker_args = worker_args
        self.workers: dict[int, Worker] = {}
        self.processes = processes
        self.stopping = False

    def start_worker(self, index: int) -> None:
        self.workers[index] = Worker(index=index, worker_args=self.worker_args)

    def stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for index in range(self.processes):
            self.start_worker(index)
        failed = False
        while not self.stopping:
            for index, worker in list(self.workers.items()):
                code = worker.poll()
                if code is None or self.stopping:
                    continue
                if not worker.ready:
                    logger.error("worker %d exited with %s before it listened", index, code)
                    failed = True
                    self.stopping = True
                    break
                logger.warning("worker %d (pid %d) exited with %s", index, worker.process.pid, code)
                self.start_worker(index)
            time.sleep(0.2)
        self.stop_workers()
        return 1 if failed else 0

    def stop_workers(self) -> None:
        processes = [worker.process for worker in self.workers.values()]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_argv(argv: list[str]) -> tuple[list[str], int | None]:
    """daphne's command line with its --bind and --port turned into a shared-port endpoint, and
    the descriptor to report readiness on."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-b", "--bind", dest="host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8000)
    parser.add_argument(READY_FD_FLAG, dest="ready_fd", type=int, default=None)
    known, rest = parser.parse_known_args([arg for arg in argv if arg != REUSE_PORT_FLAG])
    endpoint = f"{REUSE_PORT_ENDPOINT}{known.host}/{known.port}"
    return ["--endpoint", endpoint, *rest], known.ready_fd


def main(argv: list[str]) -> int:
    if REUSE_PORT_FLAG in argv:
        global _ready_fd
        daphne_argv, _ready_fd = worker_argv(argv)
        return RanklyCommandLineInterface().run(daphne_argv) or 0  # type: ignore[no-untyped-call]
    processes = web_concurrency()
    if processes == 1:
        return RanklyCommandLineInterface().run(argv) or 0  # type: ignore[no-untyped-call]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logger.info("starting %d workers", processes)
    return Supervisor(processes=processes, worker_args=argv).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
