"""The two WebSocket streams: /ws/live/ for everyone, /ws/me/ for the signed-in user."""

# Pinned: channels==4.3.2 (overrides AsyncConsumer.dispatch; requirements.txt).
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from realtime import presence
from realtime.events import LIVE_GROUP, user_group
from realtime.hub import frame_encode, hub_for_loop
from realtime.streams import event_id_order, stream_since

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1024 * 1024
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_UNAUTHORIZED = 4401


class EventConsumer(AsyncWebsocketConsumer):
    """Sends a group's events as {"type", "data", "ts", "id"} frames; answers pings.

    Events come through the process's hub (realtime.hub), not a layer channel per socket, so
    the consumer asks Channels for no layer at all.
    """

    channel_layer_alias = "rankly.no-layer-per-socket"

    group: str | None = None
    user_id: int | None = None
    accepted = False
    held: list[tuple[str, str | None]] | None = None
    wire_write: Callable[[bytes], bool] | None = None
    closing = False
    window_start = 0.0
    window_frames = 0
    window_errors = 0

    async def __call__(self, scope, receive, send):
        # However the consumer ends (closed, failed, or cancelled by the server after the
        # client left), it leaves its group and the open-socket count.
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()

    async def dispatch(self, message):
        # These handlers never touch the database: skip Channels' close_old_connections
        # thread hop on every frame, which is what makes connects crawl under load.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message):
        await self.disconnect(message["code"])
        raise StopConsumer()

    def stream(self) -> tuple[str, int | None] | None:
        """The group this socket follows and its user, or None to refuse it."""
        raise NotImplementedError

    async def connect(self) -> None:
        stream = self.stream()
        if stream is None:
            # Accept first so the client sees the code, not a failed handshake.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.group, self.user_id = stream
        presence.socket_opened()
        last_event_id = self.last_event_id()
        if last_event_id is not None:
            # Live events are held back until the missed ones have been replayed.
            self.held = []
        # Join before accepting, so every event after the client sees the socket open reaches it.
        await hub_for_loop().join(group=self.group, socket=self, user_id=self.user_id)
        await self.accept()
        self.accepted = True
        if last_event_id is not None:
            await self.replay(last_event_id)
        # From here on the hub may write its frames straight to the server's transport.
        self.wire_write = self.scope.get("extensions", {}).get("rankly.wire_write")

    def last_event_id(self) -> str | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        values = query.get("last_event_id")
        return values[0] if values else None

    async def replay(self, last_event_id: str) -> None:
        """Missed events in order, then the live ones held meanwhile, each exactly once.

        The socket joined its group before the stream was read, so an event is either in the
        stream read, or held, or both (then the id tells), never neither.
        """
        assert self.group is not None, "replay runs after connect() joined a group"
        missed = await sync_to_async(stream_since, thread_sensitive=False)(
            group=self.group, last_event_id=last_event_id
        )
        newest = None
        if missed is None:
            await self.send(text_data='{"type": "resync"}')
        else:
            newest = event_id_order(last_event_id)
            for message in missed:
                await self.send(text_data=frame_encode(message))
                newest = event_id_order(message["id"])
        # Frames that arrive while the held ones are written are held in turn, keeping order.
        while self.held:
            held, self.held = self.held, []
            for frame, event_id in held:
                if self.replayed(event_id, newest):
                    continue
                await self.send(text_data=frame)
        self.held = None

    @staticmethod
    def replayed(event_id: str | None, newest: tuple[int, int] | None) -> bool:
        return newest is not None and event_id is not None and event_id_order(event_id) <= newest

    async def disconnect(self, code: int) -> None:
        self.release()

    def release(self) -> None:
        self.wire_write = None
        if self.group is None:
            return
        group, self.group = self.group, None
        presence.socket_closed()
        hub_for_loop().leave(group=group, socket=self, user_id=self.user_id)

    async def revoke_if_matching(self, message: dict[str, Any]) -> None:
        """Close with 4401 if this socket's sign-in is among those revoked."""
        if self.closing or not self.signed_in_with(message):
            return
        await self.close_with(CLOSE_UNAUTHORIZED)

    def signed_in_with(self, message: dict[str, Any]) -> bool:
        return False

    async def deliver_frame(self, frame: str, event_id: str | None) -> None:
        if self.held is not None:
            self.held.append((frame, event_id))
            return
        # Straight to the server: this runs once per socket per broadcast.
        if self.accepted:
            await self.base_send({"type": "websocket.send", "text": frame})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if self.closing:
            return
        now = time.monotonic()
        if now - self.window_start >= 1.0:
            self.window_start, self.window_frames, self.window_errors = now, 0, 0
        self.window_frames += 1
        if self.window_frames > settings.REALTIME_MAX_FRAMES_PER_SECOND:
            await self.close_with(CLOSE_POLICY_VIOLATION)
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > MAX_FRAME_BYTES:
            await self.close_with(CLOSE_MESSAGE_TOO_BIG)
            return
        if text_data is None:
            try:
                (bytes_data or b"").decode()
            except UnicodeDecodeError:
                await self.send_error("invalid_utf8", "Frames are UTF-8 JSON text.")
                return
            await self.send_error("binary_frame", "Frames are JSON text.")
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            # RecursionError: nesting too deep for the decoder; ValueError covers numbers too
            # long to convert.
            await self.send_error("malformed_frame", "Frames are JSON objects.")
            return
        if not isinstance(content, dict):
            await self.send_error("malformed_frame", "Frames are JSON objects.")
            return
        if content.get("type") == "ping":
            if self.user_id is not None:
                hub_for_loop().user_seen(user_id=self.user_id)
            await self.send(text_data='{"type": "pong"}')
            return
        await self.send_error("unknown_type", "Unknown frame type; the only one is ping.")

    async def close_with(self, code: int) -> None:
        self.closing = True
        self.wire_write = None
        await self.close(code=code)

    async def send_error(self, code: str, detail: str) -> None:
        # A client cannot make the server write more than a few error frames a second.
        self.window_errors += 1
        if self.window_errors > settings.REALTIME_ERROR_FRAMES_PER_SECOND:
            return
        frame = {
            "type": "error",
            "data": {"detail": detail, "code": code},
            "ts": timezone.now().isoformat(),
        }
        await self.send(text_data=json.dumps(frame))


class LiveConsumer(EventConsumer):
    """/ws/live/: community events for anyone."""

    def stream(self) -> tuple[str, int | None]:
        return LIVE_GROUP, None


class MeConsumer(EventConsumer):
    """/ws/me/: the signed-in user's own events; anonymous sockets are closed with 4401."""

    def stream(self) -> tuple[str, int | None] | None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return None
        return user_group(user.pk), user.pk

    def signed_in_with(self, message: dict[str, Any]) -> bool:
        if message["everywhere"]:
            return True
        user_session_id = self.scope.get("user_session_id")
        if user_session_id is not None:
            return user_session_id in message["user_session_ids"]
        session = self.scope.get("session")
        # The cookie's key, known from the handshake: reading it touches no database.
        return session is not None and session.session_key in message["session_keys"]
