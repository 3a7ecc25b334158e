import asyncio
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realtime.hub import messages_published


@pytest.fixture
def events(django_capture_on_commit_callbacks, settings) -> Callable[..., list[dict]]:
    """Listen on channel-layer groups; returns the events sent to them once callbacks ran.

    Usage: `listen = events("live", user_group(1))`, act inside
    `django_capture_on_commit_callbacks(execute=True)`, then `listen()` gives the messages.
    These tests pin which events a service sends; carrying them over Redis is the realtime
    tests' subject, so they listen on the in-memory layer, whose channels outlive a loop.
    """
    # Events of earlier tests still on their way must not reach this test's listeners.
    assert messages_published()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()

    def subscribe(*groups: str) -> Callable[[], list[dict]]:
        channel = async_to_sync(layer.new_channel)()
        for group in groups:
            async_to_sync(layer.group_add)(group, channel)

        def listen() -> list[dict]:
            # Without a hub, events reach the layer from the publisher's thread.
            assert messages_published()
            return async_to_sync(drain)()

        async def drain() -> list[dict]:
            received = []
            while True:
                try:
                    received.append(await asyncio.wait_for(layer.receive(channel), 0.2))
                except TimeoutError:
                    return received

        return listen

    yield subscribe
    if hasattr(layer, "flush"):
        async_to_sync(layer.flush)()
