"""The one way Rankly's services tell connected clients what happened, and the one list of
what they can tell: EVENTS, each type with its stream and the fields of its `data`."""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from realtime.hub import message_publish
from realtime.streams import streams_append

logger = logging.getLogger(__name__)

LIVE_GROUP = "live"

Stream = Literal["live", "me"]
# The endpoint of each stream.
STREAM_PATHS: dict[Stream, str] = {"live": "/ws/live/", "me": "/ws/me/"}


@dataclass(frozen=True)
class EventType:
    name: str
    stream: Stream
    fields: tuple[str, ...]
    description: str
    # A summary of state rather than a change: one per interval is enough.
    coalesced: bool = False


EVENTS: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType(
            "ranking.submitted",
            "live",
            ("display_name", "category", "product_ids"),
            "someone submitted a ranking of a category (products best first)",
        ),
        EventType(
            "stats.updated",
            "live",
            ("category", "products"),
            "the Borda stats of the products a submission changed: "
            "`[{product_id, score, rankers, average_position, first_place_votes}]`",
        ),
        EventType(
            "leaderboard.updated",
            "live",
            ("windows", "version"),
            "points moved on these boards (`all`, `week`): refetch them if `version` (the "
            "change's time, ms since the epoch) is newer than yours; at most one a second",
            coalesced=True,
        ),
        EventType(
            "points.updated",
            "me",
            ("points",),
            "your new points total",
        ),
        EventType(
            "leaderboard.position",
            "me",
            ("window", "rank", "points", "total"),
            "your new rank on the `all` board (`null` when you are not ranked) of `total` users",
        ),
        EventType(
            "streak.updated",
            "me",
            ("current_length", "longest_length", "freezes_left", "last_active_date"),
            "your streak moved (a submission, or an employee's repair)",
        ),
        EventType(
            "achievement.unlocked",
            "me",
            ("code", "name", "description", "icon", "points", "level", "level_name"),
            "you unlocked an achievement, or a level of a tiered one",
        ),
    )
}


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def group_stream(group: str) -> Stream:
    return "live" if group == LIVE_GROUP else "me"


class UndeclaredEvent(ValueError):
    """An event type missing from EVENTS, or sent to a group of another stream."""


Data = dict[str, Any] | Callable[[], dict[str, Any]]

# The events of an `events_batched` block still to deliver, per thread.
_batch = threading.local()


@contextmanager
def events_batched() -> Iterator[None]:
    """Deliver the events the block raises together when it ends, rather than one by one as
    its transaction's commit hooks run: one Redis round trip keeps them all for replay.

    For a service whose transaction raises several events (a ranking submission raises about
    six): wrap the transaction, so that its commit runs inside. Events still wait for the
    commit, and one raised outside such a block goes at once; a nested block joins the outer.
    """
    if getattr(_batch, "pending", None) is not None:
        yield
        return
    _batch.pending = []
    try:
        yield
    finally:
        pending, _batch.pending = _batch.pending, None
        _deliver_many(pending)


def _deliver(group: str, event_type: str, data: Data) -> None:
    pending = getattr(_batch, "pending", None)
    if pending is not None:
        pending.append((group, event_type, data))
    else:
        _deliver_many([(group, event_type, data)])


def _deliver_many(events: list[tuple[str, str, Data]]) -> None:
    """Read each event's data, keep them all for replay, then publish them, in order."""
    messages: list[dict[str, Any]] = []
    for group, event_type, data in events:
        try:
            messages.append(
                {
                    "type": "event.deliver",
                    "group": group,
                    "event": event_type,
                    "data": data() if callable(data) else data,
                    "ts": timezone.now().isoformat(),
                }
            )
        except Exception:
            _not_delivered(event_type, group)
    if not messages:
        return
    for message, event_id in zip(messages, streams_append(messages=messages), strict=True):
        if event_id is not None:
            message["id"] = event_id
        try:
            message_publish(message)
        except Exception:
            _not_delivered(message["event"], message["group"])


def _not_delivered(event_type: str, group: str) -> None:
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


def event_send(
    *,
    group: str,
    event_type: str,
    data: Data,
) -> None:
    """Send `event_type` to a group's sockets once the current transaction commits.

    `data` may be a function, called after the commit: for payloads read from the committed
    state, outside the transaction's locks.
    """
    declared = EVENTS.get(event_type)
    if declared is None or declared.stream != group_stream(group):
        raise UndeclaredEvent(f"{event_type!r} is not a declared event of group {group!r}")

    def send() -> None:
        _deliver(group, event_type, data)

    if declared.coalesced:
        transaction.on_commit(lambda: _coalescer.submit((group, event_type), send))
    else:
        transaction.on_commit(send)
