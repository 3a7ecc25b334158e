import asyncio

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from realtime.events import LIVE_GROUP, event_send, user_group
from realtime.hub import messages_published
from realtime.tests.conftest import committed_event, socket_open, user_with_token

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.usefixtures("realtime"),
    pytest.mark.django_db(transaction=True),
]


@database_sync_to_async
def ticks_committed(*, group: str, numbers: range) -> None:
    for n in numbers:
        with transaction.atomic():
            event_send(group=group, event_type="ranking.submitted", data={"n": n})
    # With no socket open there is no hub: these go out from the publisher's thread.
    assert messages_published()


async def test_events_raised_while_away_are_replayed_in_order_once_then_live():
    socket = await socket_open("/ws/live/")
    await committed_event(group=LIVE_GROUP, event_type="ranking.submitted", data={"n": 0})
    last_seen = (await socket.receive_json_from())["id"]
    await socket.disconnect()

    await ticks_committed(group=LIVE_GROUP, numbers=range(1, 4))
    socket = await socket_open(f"/ws/live/?last_event_id={last_seen}")
    replayed = [await socket.receive_json_from() for _ in range(3)]
    await committed_event(group=LIVE_GROUP, event_type="ranking.submitted", data={"n": 4})
    live = await socket.receive_json_from()

    assert [frame["data"]["n"] for frame in [*replayed, live]] == [1, 2, 3, 4]
    assert len({frame["id"] for frame in [*replayed, live]}) == 4
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_reconnect_with_nothing_missed_gets_only_the_live_feed():
    socket = await socket_open("/ws/live/")
    await committed_event(group=LIVE_GROUP, event_type="ranking.submitted", data={"n": 0})
    last_seen = (await socket.receive_json_from())["id"]
    await socket.disconnect()

    socket = await socket_open(f"/ws/live/?last_event_id={last_seen}")
    assert await socket.receive_nothing(timeout=0.3)
    await committed_event(group=LIVE_GROUP, event_type="ranking.submitted", data={"n": 1})
    assert (await socket.receive_json_from())["data"] == {"n": 1}
    await socket.disconnect()


@pytest.mark.parametrize("last_event_id", ["0-1", "not-an-id", "99999999999999-0"])
async def test_unknown_or_too_old_id_gets_resync_first(last_event_id):
    await ticks_committed(group=LIVE_GROUP, numbers=range(2))

    socket = await socket_open(f"/ws/live/?last_event_id={last_event_id}")

    assert await socket.receive_json_from() == {"type": "resync"}
    await committed_event(group=LIVE_GROUP, event_type="ranking.submitted", data={"n": 9})
    assert (await socket.receive_json_from())["data"] == {"n": 9}
    await socket.disconnect()


async def test_event_no_longer_kept_gets_resync(settings):
    socket = await socket_open("/ws/live/")
    await committed_event(group=LIVE_GROUP, event_type="ranking.submitted", data={"n": 0})
    last_seen = (await socket.receive_json_from())["id"]
    await socket.disconnect()
    settings.REALTIME_REPLAY_SECONDS = 0.001
    await asyncio.sleep(0.01)
    await committed_event(group=LIVE_GROUP, event_type="ranking.submitted", data={"n": 1})

    socket = await socket_open(f"/ws/live/?last_event_id={last_seen}")

    assert await socket.receive_json_from() == {"type": "resync"}
    await socket.disconnect()


async def test_user_stream_replays_only_that_users_events():
    alice, token = await user_with_token()
    bob, _ = await user_with_token()
    socket = await socket_open(f"/ws/me/?token={token}")
    await committed_event(group=user_group(alice.pk), event_type="points.updated", data={"p": 1})
    last_seen = (await socket.receive_json_from())["id"]
    await socket.disconnect()

    await committed_event(group=user_group(bob.pk), event_type="points.updated", data={"p": 99})
    await committed_event(group=user_group(alice.pk), event_type="points.updated", data={"p": 2})
    socket = await socket_open(f"/ws/me/?token={token}&last_event_id={last_seen}")

    assert (await socket.receive_json_from())["data"] == {"p": 2}
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()
