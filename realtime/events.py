"""The one way Rankly's services tell connected clients what happened."""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from realtime.hub import message_publish
from realtime.streams import stream_append

logger = logging.getLogger(__name__)

LIVE_GROUP = "live"
# Events that summarise state rather than report a change: one per interval is enough.
COALESCED_EVENTS = frozenset({"leaderboard.updated"})


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _deliver(group: str, event_type: str, data: dict[str, Any]) -> None:
    message = {
        "type": "event.deliver",
        "group": group,
        "event": event_type,
        "data": data,
        "ts": timezone.now().isoformat(),
    }
    try:
        event_id = stream_append(group=group, message=message)
        if event_id is not None:
            message["id"] = event_id
        message_publish(message)
    except Exception:
        # A realtime outage never fails the write that raised the event.
        logger.warning("realtime event %s to %s not delivered", event_type, group, exc_info=True)


class Coalescer:
    """At most one send per key per interval: the first goes at once, the latest of the rest
    goes when the interval ends, the ones in between are dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_sent: dict[tuple[str, str], float] = {}
        self._pending: dict[tuple[str, str], Callable[[], None]] = {}

    def submit(self, key: tuple[str, str], send: Callable[[], None]) -> None:
        interval = settings.REALTIME_COALESCE_SECONDS
        with self._lock:
            if key in self._pending:
                self._pending[key] = send
                return
            wait = self._last_sent.get(key, float("-inf")) + interval - time.monotonic()
            if wait > 0:
                self._pending[key] = send
                timer = threading.Timer(wait, self._flush, args=(key,))
                timer.daemon = True
                timer.start()
                return
            self._last_sent[key] = time.monotonic()
        send()

    def _flush(self, key: tuple[str, str]) -> None:
        with self._lock:
            send = self._pending.pop(key, None)
            self._last_sent[key] = time.monotonic()
        if send is not None:
            send()


_coalescer = Coalescer()


def event_send(*, group: str, event_type: str, data: dict[str, Any]) -> None:
    """Send `event_type` to a group's sockets once the current transaction commits."""

    def send() -> None:
        _deliver(group, event_type, data)

    if event_type in COALESCED_EVENTS:
        transaction.on_commit(lambda: _coalescer.submit((group, event_type), send))
    else:
        transaction.on_commit(send)
