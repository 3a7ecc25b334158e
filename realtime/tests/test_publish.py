"""Publishing from a process with no sockets (no hub) never holds a request on the layer."""

import socket
import threading
import time

import pytest
from channels.layers import channel_layers

from realtime import hub as hub_module
from realtime.hub import wire_frame

MESSAGE = {"type": "event.deliver", "group": "live", "event": "ranking.submitted", "data": {}}


@pytest.fixture
def hung_layer(settings):
    # A listening socket nobody accepts on: connections succeed, replies never come.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [url]},
            }
        }
        channel_layers.backends.clear()
        yield
        assert hub_module.messages_published()
    channel_layers.backends.clear()
    hub_module._layer_skip_until = 0.0


def _publish_returns_within(seconds: float) -> bool:
    thread = threading.Thread(target=hub_module.message_publish, args=(MESSAGE,), daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


@pytest.mark.slow
def test_a_hung_layer_holds_no_request_and_costs_one_bounded_wait_per_cool_down(hung_layer):
    assert hub_module._running_hub() is None
    assert _publish_returns_within(0.5)
    started = time.monotonic()
    assert hub_module.messages_published(timeout=hub_module.LAYER_TIMEOUT_SECONDS + 3)
    assert time.monotonic() - started < hub_module.LAYER_TIMEOUT_SECONDS + 3
    assert _publish_returns_within(0.5)
    started = time.monotonic()
    assert hub_module.messages_published()
    # The second event did not wait on the layer at all.
    assert time.monotonic() - started < hub_module.LAYER_TIMEOUT_SECONDS


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
def test_wire_frame_is_one_final_unmasked_text_frame_of_the_payload(length):
    text = "x" * length
    frame = wire_frame(text)

    first, second = frame[0], frame[1]
    assert (first, second & 0x80) == (0x81, 0)
    if length < 126:
        header, declared = 2, second
    elif length < 65536:
        header, declared = 4, int.from_bytes(frame[2:4], "big")
    else:
        header, declared = 10, int.from_bytes(frame[2:10], "big")
    assert declared == length
    assert frame[header:] == text.encode()
