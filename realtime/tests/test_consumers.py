import asyncio
import contextlib
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from config.asgi import application
from config.redis import redis_client
from realtime import presence
from realtime.consumers import MAX_FRAME_BYTES
from realtime.events import LIVE_GROUP, event_send, user_group
from realtime.tests.conftest import (
    committed_event,
    session_cookie_for,
    socket_open,
    user_with_token,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("realtime")]


async def assert_closed_with(communicator, code: int) -> None:
    output = await communicator.receive_output(timeout=1)
    assert output == {"type": "websocket.close", "code": code}


@pytest.mark.django_db(transaction=True)
async def test_live_socket_receives_committed_event_as_frame():
    socket = await socket_open("/ws/live/")
    await committed_event(group=LIVE_GROUP, event_type="ranking.submitted", data={"id": 7})

    frame = await socket.receive_json_from()

    assert frame["type"] == "ranking.submitted"
    assert frame["data"] == {"id": 7}
    assert set(frame) == {"type", "data", "ts", "id"}
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_event_is_not_sent_when_the_transaction_rolls_back():
    socket = await socket_open("/ws/live/")

    @database_sync_to_async
    def rolled_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            event_send(group=LIVE_GROUP, event_type="ranking.submitted", data={"id": 1})
            raise RuntimeError("write failed")

    await rolled_back()

    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_anonymous_me_socket_is_closed_with_4401():
    socket = await socket_open("/ws/me/")
    await assert_closed_with(socket, 4401)


@pytest.mark.django_db(transaction=True)
async def test_me_socket_with_unknown_token_is_closed_with_4401():
    await user_with_token()
    socket = await socket_open("/ws/me/?token=not-a-token")
    await assert_closed_with(socket, 4401)


@pytest.mark.django_db(transaction=True)
async def test_me_socket_signed_in_with_token_receives_own_events():
    user, token = await user_with_token()
    socket = await socket_open(f"/ws/me/?token={token}")

    await committed_event(group=user_group(user.pk), event_type="points.updated", data={"p": 10})

    frame = await socket.receive_json_from()
    assert (frame["type"], frame["data"]) == ("points.updated", {"p": 10})
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_me_socket_signed_in_with_session_cookie_is_accepted(make_user):
    user = await make_user()
    cookie = await session_cookie_for(user)
    headers = [(b"origin", b"http://testserver"), (b"cookie", f"sessionid={cookie}".encode())]
    socket = await socket_open("/ws/me/", headers=headers)

    await committed_event(group=user_group(user.pk), event_type="streak.updated", data={"d": 3})

    assert (await socket.receive_json_from())["type"] == "streak.updated"
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_user_event_reaches_only_that_users_socket():
    alice, alice_token = await user_with_token()
    _bob, bob_token = await user_with_token()
    alice_socket = await socket_open(f"/ws/me/?token={alice_token}")
    bob_socket = await socket_open(f"/ws/me/?token={bob_token}")
    live_socket = await socket_open("/ws/live/")

    await committed_event(
        group=user_group(alice.pk), event_type="achievement.unlocked", data={"code": "first"}
    )

    assert (await alice_socket.receive_json_from())["type"] == "achievement.unlocked"
    assert await bob_socket.receive_nothing(timeout=0.3)
    assert await live_socket.receive_nothing(timeout=0.1)
    for socket in (alice_socket, bob_socket, live_socket):
        await socket.disconnect()


async def test_foreign_origin_is_refused():
    socket = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await socket.connect()
    assert not connected


async def test_ping_gets_pong():
    socket = await socket_open("/ws/live/")
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"text_data": "not json"}, "malformed_frame"),
        ({"text_data": "[1, 2]"}, "malformed_frame"),
        ({"text_data": '"ping"'}, "malformed_frame"),
        ({"text_data": '{"type": "subscribe"}'}, "unknown_type"),
        ({"text_data": '{"data": {}}'}, "unknown_type"),
        ({"bytes_data": b"\x00\x01"}, "binary_frame"),
        ({"text_data": "[" * 3000 + "]" * 3000}, "malformed_frame"),
        ({"text_data": '{"type": "ping", "n": ' + "9" * 5000 + "}"}, "malformed_frame"),
        # A text frame that is not UTF-8 reaches the application as bytes (config/server.py).
        ({"bytes_data": b'{"type": "\xff\xfe"}'}, "invalid_utf8"),
    ],
)
async def test_bad_frame_gets_error_frame_and_socket_stays_open(frame, code, caplog):
    socket = await socket_open("/ws/live/")

    await socket.send_to(**frame)
    error = await socket.receive_json_from()

    assert error["type"] == "error"
    assert error["data"]["code"] == code
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]


async def test_error_frames_are_limited_per_second(settings):
    settings.REALTIME_ERROR_FRAMES_PER_SECOND = 2
    socket = await socket_open("/ws/live/")

    for _ in range(6):
        await socket.send_to(text_data="not json")

    assert (await socket.receive_json_from())["type"] == "error"
    assert (await socket.receive_json_from())["type"] == "error"
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_more_frames_in_a_second_than_allowed_close_the_socket_with_1008(settings):
    settings.REALTIME_MAX_FRAMES_PER_SECOND = 3
    socket = await socket_open("/ws/live/")

    for _ in range(5):
        await socket.send_json_to({"type": "ping"})

    for _ in range(3):
        assert await socket.receive_json_from() == {"type": "pong"}
    await assert_closed_with(socket, 1008)


async def test_a_consumer_cancelled_by_the_server_leaves_the_open_socket_count():
    # daphne cancels an application that has not finished 10 s after its client left.
    before = presence.open_socket_count()
    socket = await socket_open("/ws/live/")
    assert presence.open_socket_count() == before + 1

    socket.future.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await socket.future

    assert presence.open_socket_count() == before


async def test_frame_over_one_megabyte_closes_with_1009():
    socket = await socket_open("/ws/live/")
    await socket.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * MAX_FRAME_BYTES}))
    await assert_closed_with(socket, 1009)


async def test_frame_of_exactly_one_megabyte_is_read():
    socket = await socket_open("/ws/live/")
    frame = '{"type": "ping", "pad": "'
    await socket.send_to(text_data=frame + "x" * (MAX_FRAME_BYTES - len(frame) - 2) + '"}')
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()


async def test_open_sockets_are_counted_while_open():
    before = presence.open_socket_count()
    first = await socket_open("/ws/live/")
    second = await socket_open("/ws/live/")
    assert presence.open_socket_count() == before + 2

    await first.disconnect()
    await second.disconnect()
    assert presence.open_socket_count() == before


async def test_refused_socket_is_not_counted():
    before = presence.open_socket_count()
    socket = await socket_open("/ws/me/")
    await assert_closed_with(socket, 4401)
    assert presence.open_socket_count() == before


@pytest.mark.django_db(transaction=True)
async def test_leaderboard_updates_are_coalesced_to_first_and_latest(settings):
    settings.REALTIME_COALESCE_SECONDS = 0.5
    socket = await socket_open("/ws/live/")

    @database_sync_to_async
    def four_updates_committed_together():
        with transaction.atomic():
            for n in range(1, 5):
                event_send(group=LIVE_GROUP, event_type="leaderboard.updated", data={"n": n})

    await four_updates_committed_together()

    first = await socket.receive_json_from(timeout=5)
    latest = await socket.receive_json_from(timeout=5)
    assert (first["data"], latest["data"]) == ({"n": 1}, {"n": 4})
    assert await socket.receive_nothing(timeout=0.8)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_other_events_are_never_coalesced():
    socket = await socket_open("/ws/live/")
    for n in range(3):
        await committed_event(group=LIVE_GROUP, event_type="ranking.submitted", data={"n": n})
    received = [(await socket.receive_json_from())["data"]["n"] for _ in range(3)]
    assert received == [0, 1, 2]
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_layer_outage_fails_no_write_and_local_sockets_still_get_events(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # Nothing listens on port 1: every Redis call fails at once.
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    user, token = await user_with_token()
    socket = await socket_open(f"/ws/me/?token={token}")

    @database_sync_to_async
    def write_with_event():
        with transaction.atomic():
            user.display_name = "Renamed"
            user.save(update_fields=["display_name"])
            event_send(group=user_group(user.pk), event_type="points.updated", data={"p": 1})
        user.refresh_from_db()
        return user.display_name

    assert await write_with_event() == "Renamed"
    frame = await socket.receive_json_from(timeout=3)
    assert frame["type"] == "points.updated"
    await socket.disconnect()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_signed_in_socket_marks_its_user_online_across_instances():
    user, token = await user_with_token()
    client = redis_client()
    client.zrem(presence.presence_key(), str(user.pk))
    socket = await socket_open(f"/ws/me/?token={token}")

    seen = None
    for _ in range(50):
        seen = client.zscore(presence.presence_key(), str(user.pk))
        if seen is not None:
            break
        await asyncio.sleep(0.1)

    assert seen is not None
    await socket.disconnect()
