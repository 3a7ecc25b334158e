"""The one way Rankly's services tell connected clients what happened."""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

LIVE_GROUP = "live"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _deliver(group: str, event_type: str, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {
        "type": "event.deliver",
        "event": event_type,
        "data": data,
        "ts": timezone.now().isoformat(),
    }
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # A realtime outage never fails the write that raised the event.
        logger.warning("realtime event %s to %s not delivered", event_type, group, exc_info=True)


def event_send(*, group: str, event_type: str, data: dict[str, Any]) -> None:
    """Send `event_type` to a group's sockets once the current transaction commits."""
    transaction.on_commit(lambda: _deliver(group, event_type, data))
