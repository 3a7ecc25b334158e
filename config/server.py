"""daphne, with per-socket limits that hold before the application sees a frame.

- A message over the size limit is refused with the close code 1009, not a dropped link.
- A client sending more than REALTIME_MAX_FRAMES_PER_SECOND frames, or more than
  REALTIME_RECEIVE_QUEUE frames ahead of the application, is closed with 1008 and its further
  frames are dropped: daphne's own queue to the application is unbounded.
- A client that does not read is closed with 1013 once REALTIME_SEND_BUFFER_BYTES wait for it
  beyond the transport's own buffer, instead of being buffered without bound.
- A text frame that is not UTF-8 reaches the application as bytes, which answers with an error
  frame, rather than failing the connection.
- A WebSocket's scope carries `extensions["rankly.wire_write"]`: a function that writes a
  frame already encoded for the wire (realtime.hub.wire_frame) straight to the transport, so
  a broadcast is framed once, not once per socket through ASGI and autobahn.

Takes daphne's command line: `python -m config.server [daphne options] config.asgi:application`.
"""

# Pinned: daphne==4.2.3, autobahn==26.10.2 (overrides Server.run; requirements.txt).
import sys
import time
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet import reactor, tcp
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

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
        transport = self.transport
        if not isinstance(transport, tcp.Connection):
            return False
        if not transport.dataBuffer and not transport._tempDataLen and not transport.disconnecting:
            # Nothing queued: one send() now, as asyncio's transports do, instead of Twisted
            # buffering it and asking the event loop to watch the socket for writability.
            sent = transport.writeSomeData(wire)
            if not isinstance(sent, int) or sent == len(wire):
                # Sent, or the connection is lost (Twisted notices when it reads).
                return True
            wire = wire[sent:]
        transport.write(wire)  # type: ignore[call-arg, misc]  # zope declares interface methods without self
        return True

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


if __name__ == "__main__":
    sys.exit(RanklyCommandLineInterface.entrypoint())  # type: ignore[no-untyped-call]
