"""The last two minutes of each event stream, so a client that reconnects misses nothing.

Every event gets an id, increasing per stream (the group: `live`, `user.<id>`), and is kept
for REALTIME_REPLAY_SECONDS: in a Redis stream when Redis is configured (shared by every
instance, trimmed by age), in a bounded in-process buffer otherwise. A client that comes back
with the id of the last event it saw gets every later event, or `None` when that event is no
longer kept and it must reload its state.
"""

import json
import logging
import threading
import time
from collections import deque
from typing import Any

from django.conf import settings

from config.redis import redis_client, redis_key

logger = logging.getLogger(__name__)

STREAM_MAX_LENGTH = 1000

_lock = threading.Lock()
_local: dict[str, deque[tuple[str, float, dict[str, Any]]]] = {}
_local_counter = 0


def stream_key(group: str) -> str:
    return redis_key(f"stream:{group}")


def event_id_order(event_id: str) -> tuple[int, int]:
    """Sort key of an id: Redis stream ids are `<ms>-<seq>`, local ids `<n>-0`."""
    first, _, second = event_id.partition("-")
    return int(first), int(second or 0)


def streams_append(*, messages: list[dict[str, Any]]) -> list[str | None]:
    """Keep events, each in the stream of its `group`, in one round trip; returns their ids
    in order, None for each when replay is off or the store is down."""
    seconds = settings.REALTIME_REPLAY_SECONDS
    if not seconds:
        return [None] * len(messages)
    client = redis_client()
    if client is None:
        return [_local_append(m["group"], m, seconds) for m in messages]
    try:
        min_id = f"{int((time.time() - seconds) * 1000)}-0"
        pipe = client.pipeline(transaction=False)
        for message in messages:
            key = stream_key(message["group"])
            # Exact trimming: a stream holds two minutes of events, so it stays short anyway.
            pipe.xadd(key, {"m": json.dumps(message)}, minid=min_id, approximate=False)
            pipe.pexpire(key, max(1, int(seconds * 1000)))
        replies = pipe.execute()
    except Exception:
        logger.warning(
            "events %s not kept for replay: Redis unavailable", [m["event"] for m in messages]
        )
        return [None] * len(messages)
    return [_text(event_id) for event_id in replies[::2]]


def _text(value: bytes | str) -> str:
    # The shared client may or may not decode responses.
    return value.decode() if isinstance(value, bytes) else value


def _field(fields: dict) -> bytes | str:
    return fields[b"m"] if b"m" in fields else fields["m"]


def stream_since(*, group: str, last_event_id: str) -> list[dict[str, Any]] | None:
    """Events after `last_event_id`, oldest first; None if that event is no longer kept."""
    try:
        event_id_order(last_event_id)
    except ValueError:
        return None
    client = redis_client()
    if client is None:
        entries = _local_since(group, last_event_id)
    else:
        try:
            # redis-py declares every part of an XRANGE reply optional; none of them is.
            raw: Any = client.xrange(stream_key(group), min=last_event_id, max="+")
        except Exception:
            logger.warning("replay unavailable: Redis unavailable")
            return None
        entries = [(_text(entry_id), json.loads(_text(_field(fields)))) for entry_id, fields in raw]
    # The client's last event must still be kept: then nothing between it and now is lost.
    if not entries or entries[0][0] != last_event_id:
        return None
    return [dict(message, id=entry_id) for entry_id, message in entries[1:]]


def _local_append(group: str, message: dict[str, Any], seconds: float) -> str:
    global _local_counter
    now = time.monotonic()
    with _lock:
        _local_counter += 1
        event_id = f"{_local_counter}-0"
        buffer = _local.setdefault(group, deque(maxlen=STREAM_MAX_LENGTH))
        buffer.append((event_id, now, message))
        while buffer and buffer[0][1] < now - seconds:
            buffer.popleft()
    return event_id


def _local_since(group: str, last_event_id: str) -> list[tuple[str, dict[str, Any]]]:
    seconds = settings.REALTIME_REPLAY_SECONDS
    now = time.monotonic()
    after = event_id_order(last_event_id)
    with _lock:
        kept = [
            (event_id, message)
            for event_id, at, message in _local.get(group, ())
            if at >= now - seconds and event_id_order(event_id) >= after
        ]
    return kept
