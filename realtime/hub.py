"""One channel-layer subscription per process, fanned out to the process's own sockets.

Channels' usual pattern gives every socket its own layer channel and group membership, so a
broadcast to 5,000 sockets costs 5,000 layer deliveries (and, on the pub/sub layer, 5,000
Redis subscriptions to open them). Here a process holds a single layer channel that joins each
group one of its sockets needs; an event arrives once per process, is encoded to JSON once and
written to every local socket of the group. When the layer fails, events raised in this
process are still written to this process's sockets, and the receive loop reconnects and
re-joins its groups by itself.
"""

import asyncio
import atexit
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from realtime import presence

logger = logging.getLogger(__name__)

RETRY_MIN_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0
# Core-layer memberships expire (group_expiry); re-adding well within it keeps them alive.
MEMBERSHIP_REFRESH_SECONDS = 60.0
PRESENCE_FLUSH_SECONDS = 2.0
LAYER_TIMEOUT_SECONDS = 2.0
# Sockets written per turn of the event loop during a fan-out, so the first frames leave
# while the rest are written.
FANOUT_CHUNK = 500


# A layer message that closes the sockets of revoked sign-ins (realtime.revocation).
REVOKE_TYPE = "sockets.revoke"


class Socket(Protocol):
    # Set while the socket can take a frame encoded for the wire (see wire_frame).
    wire_write: Callable[[bytes], bool] | None

    async def deliver_frame(self, frame: str, event_id: str | None) -> None: ...

    async def revoke_if_matching(self, message: dict[str, Any]) -> None: ...


def wire_frame(text: str) -> bytes:
    """A final, unmasked WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


def frame_encode(message: dict[str, Any]) -> str:
    """The client frame for a layer message {"type": "event.deliver", "event", "data", "ts"},
    with the event's stream id when it has one."""
    frame = {"type": message["event"], "data": message["data"], "ts": message["ts"]}
    if message.get("id") is not None:
        frame["id"] = message["id"]
    return json.dumps(frame)


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.layer = get_channel_layer()
        self.members: dict[str, set[Socket]] = {}
        self.user_sockets: dict[int, int] = {}
        self._channel: str | None = None
        self._joined: set[str] = set()
        self._sync_lock = asyncio.Lock()
        self._layer_down = False
        self._tasks: list[asyncio.Task] = []
        self._seen: set[int] = set()
        self._pending: set[asyncio.Task] = set()

    # --- sockets ---------------------------------------------------------------------------
    async def join(self, *, group: str, socket: Socket, user_id: int | None = None) -> None:
        self.members.setdefault(group, set()).add(socket)
        if user_id is not None:
            self.user_sockets[user_id] = self.user_sockets.get(user_id, 0) + 1
            self._seen.add(user_id)
        self._start()
        # Joined before the socket is told it is open, so no event after that is missed.
        await self._sync_groups_bounded()

    def leave(self, *, group: str, socket: Socket, user_id: int | None = None) -> None:
        """Forget a socket now; the layer membership follows in the background.

        Synchronous, so that a consumer being cancelled still leaves.
        """
        sockets = self.members.get(group)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.members[group]
        if user_id is not None:
            left = self.user_sockets.get(user_id, 0) - 1
            if left > 0:
                self.user_sockets[user_id] = left
            else:
                self.user_sockets.pop(user_id, None)
        if self.layer is not None and not self.loop.is_closed():
            task = self.loop.create_task(self._sync_groups_bounded())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def user_seen(self, *, user_id: int) -> None:
        self._seen.add(user_id)
        self._start()

    # --- sending ---------------------------------------------------------------------------
    async def publish(self, message: dict[str, Any]) -> None:
        """Send to the group on every instance; if the layer fails, at least to this one."""
        try:
            if self.layer is None:
                raise RuntimeError("no channel layer configured")
            # A Redis that hangs rather than refuses must not hold local delivery up.
            await asyncio.wait_for(
                self.layer.group_send(message["group"], message), LAYER_TIMEOUT_SECONDS
            )
            self._layer_back()
        except Exception:
            self._layer_failed()
            logger.warning(
                "realtime layer unavailable; %s delivered to this instance only",
                message["event"],
            )
            await self.dispatch(message)

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == "event.deliver":
            await self.fanout(message)
        elif message.get("type") == REVOKE_TYPE:
            await self.revoke(message)

    async def revoke(self, message: dict[str, Any]) -> None:
        for socket in list(self.members.get(message["group"], ())):
            await socket.revoke_if_matching(message)

    async def fanout(self, message: dict[str, Any]) -> int:
        """Write one event to this process's sockets of its group; returns how many.

        The frame is encoded once; a socket served by config.server takes it as wire bytes
        in a plain call, the others (another ASGI server, a replay in progress) through ASGI.
        Every FANOUT_CHUNK sockets the loop lets the transports write what they were given.
        """
        sockets = self.members.get(message.get("group", ""))
        if not sockets:
            return 0
        frame = frame_encode(message)
        wire = wire_frame(frame)
        event_id = message.get("id")
        delivered = 0
        for index, socket in enumerate(list(sockets), start=1):
            write = socket.wire_write
            try:
                if write is None or not write(wire):
                    await socket.deliver_frame(frame, event_id)
                delivered += 1
            except Exception:
                logger.debug("socket gone during fan-out", exc_info=True)
            if not index % FANOUT_CHUNK:
                await asyncio.sleep(0)
        return delivered

    # --- background tasks ------------------------------------------------------------------
    def _start(self) -> None:
        if self._tasks:
            return
        self._tasks = [self.loop.create_task(self._presence_loop())]
        if self.layer is not None:
            self._tasks.append(self.loop.create_task(self._receive_loop()))
            self._tasks.append(self.loop.create_task(self._refresh_loop()))

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._pending]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []

    async def _sync_groups_bounded(self) -> None:
        """_sync_groups, but a layer that hangs delays a socket by LAYER_TIMEOUT_SECONDS at most."""
        try:
            await asyncio.wait_for(self._sync_groups(), LAYER_TIMEOUT_SECONDS)
        except TimeoutError:
            self._layer_failed()

    async def _sync_groups(self, *, rejoin: bool = False) -> bool:
        """Make this process's layer memberships match its sockets' groups; False on failure."""
        if self.layer is None:
            return False
        async with self._sync_lock:
            if rejoin:
                self._joined = set()
            try:
                if self._channel is None:
                    self._channel = await self.layer.new_channel(prefix="rankly.hub.")
                for group in [g for g in self.members if g not in self._joined]:
                    await self.layer.group_add(group, self._channel)
                    self._joined.add(group)
                for group in [g for g in self._joined if g not in self.members]:
                    self._joined.discard(group)
                    await self.layer.group_discard(group, self._channel)
            except Exception:
                # The receive loop joins again once the layer is back.
                self._layer_failed()
                return False
        return True

    def _layer_failed(self) -> None:
        if not self._layer_down:
            logger.warning("realtime layer lost; events reach this instance's sockets only")
        self._layer_down = True

    def _layer_back(self) -> None:
        if self._layer_down:
            logger.warning("realtime layer back; events reach every instance again")
        self._layer_down = False

    async def _receive_loop(self) -> None:
        retry = RETRY_MIN_SECONDS
        rejoin = False
        while True:
            try:
                if not await self._sync_groups(rejoin=rejoin):
                    raise ConnectionError("channel layer unavailable")
                rejoin = False
                message = await self.layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._layer_failed()
                # A restarted Redis may have lost the memberships: join every group again.
                rejoin = True
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX_SECONDS)
                continue
            retry = RETRY_MIN_SECONDS
            self._layer_back()
            await self.dispatch(message)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(MEMBERSHIP_REFRESH_SECONDS)
            if self._channel is None:
                continue
            await self._sync_groups(rejoin=True)

    async def _presence_loop(self) -> None:
        since_heartbeat = 0.0
        while True:
            await asyncio.sleep(PRESENCE_FLUSH_SECONDS)
            since_heartbeat += PRESENCE_FLUSH_SECONDS
            if since_heartbeat >= presence.HEARTBEAT_SECONDS:
                since_heartbeat = 0.0
                self._seen.update(self.user_sockets)
            if self._seen:
                user_ids, self._seen = self._seen, set()
                await _users_seen(user_ids)


async def _users_seen(user_ids: Iterable[int]) -> None:
    await sync_to_async(presence.users_seen, thread_sensitive=False)(user_ids=list(user_ids))


_hub: Hub | None = None


def hub_for_loop() -> Hub:
    """This process's hub, created on the running loop (a new loop, e.g. per test, gets one)."""
    global _hub
    loop = asyncio.get_running_loop()
    if _hub is None or _hub.loop is not loop:
        _hub = Hub(loop)
    return _hub


def _running_hub() -> Hub | None:
    hub = _hub
    if hub is None or hub.loop.is_closed() or not hub.loop.is_running():
        return None
    return hub


# Until then, a process without a running hub sends no events through the layer.
_layer_skip_until = 0.0


class Publisher:
    """Sends layer messages, in order, from a thread and event loop of its own, for a process
    whose hub is not running: a request hands its events over and never waits on the layer."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._unsent = 0
        self._sent = threading.Condition()
        threading.Thread(target=self._run, name="rankly-publisher", daemon=True).start()

    def submit(self, message: dict[str, Any]) -> None:
        with self._sent:
            self._unsent += 1
        self.loop.call_soon_threadsafe(self._queue.put_nowait, message)

    def wait(self, timeout: float) -> bool:
        """Wait until every message submitted so far is sent or given up; False on timeout."""
        with self._sent:
            return self._sent.wait_for(lambda: not self._unsent, timeout)

    def _run(self) -> None:
        self.loop.run_until_complete(self._send_forever())

    async def _send_forever(self) -> None:
        while True:
            message = await self._queue.get()
            await _layer_send(message)
            with self._sent:
                self._unsent -= 1
                self._sent.notify_all()


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


def _publisher_running() -> Publisher:
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            _publisher = Publisher()
            # A command that raises events and exits still gets them out.
            atexit.register(_publisher.wait, LAYER_TIMEOUT_SECONDS)
        return _publisher


def message_publish(message: dict[str, Any]) -> None:
    """Publish from synchronous code without waiting on the layer."""
    hub = _running_hub()
    if hub is not None:
        asyncio.run_coroutine_threadsafe(hub.publish(message), hub.loop)
        return
    if get_channel_layer() is None or time.monotonic() < _layer_skip_until:
        return
    _publisher_running().submit(message)


def messages_published(*, timeout: float = LAYER_TIMEOUT_SECONDS + 1) -> bool:
    """Wait until the messages published so far without a hub are sent or given up."""
    return _publisher is None or _publisher.wait(timeout)


async def _layer_send(message: dict[str, Any]) -> None:
    global _layer_skip_until
    layer = get_channel_layer()
    if layer is None or time.monotonic() < _layer_skip_until:
        return
    try:
        await asyncio.wait_for(layer.group_send(message["group"], message), LAYER_TIMEOUT_SECONDS)
    except Exception:
        # A hung or dead layer costs one timeout per cool-down, not one per event.
        _layer_skip_until = time.monotonic() + settings.REDIS_BREAKER_COOLDOWN
        logger.warning(
            "realtime event %s to %s not delivered",
            message["event"],
            message["group"],
            exc_info=True,
        )
