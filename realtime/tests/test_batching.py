from collections.abc import Callable

import pytest
from django.db import transaction
from redis.client import Pipeline

from rankings.services import ranking_submit
from rankings.tests.factories import ProductRankingFactory
from realtime.events import LIVE_GROUP, event_send, events_batched
from realtime.streams import stream_since, streams_append

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(events) -> Callable[[], list[dict]]:
    """The live group's messages, as they have reached the layer so far."""
    return events(LIVE_GROUP)


def tick(n: int) -> None:
    event_send(group=LIVE_GROUP, event_type="ranking.submitted", data={"n": n})


def ticks(messages: list[dict]) -> list[int]:
    return [m["data"]["n"] for m in messages if m["event"] == "ranking.submitted"]


def test_a_batch_sends_its_committed_events_when_it_ends_in_order_and_replayable(live):
    with events_batched():
        with transaction.atomic():
            tick(1)
            tick(2)
        # Committed, but the block has not ended.
        assert ticks(live()) == []
        with transaction.atomic():
            tick(3)

    sent = [m for m in live() if m["event"] == "ranking.submitted"]
    assert ticks(sent) == [1, 2, 3]
    assert ticks(stream_since(group=LIVE_GROUP, last_event_id=sent[0]["id"]) or []) == [2, 3]


def test_a_batch_sends_nothing_a_rollback_took_back(live):
    with events_batched():
        with transaction.atomic():
            tick(1)
            with pytest.raises(RuntimeError), transaction.atomic():
                tick(2)
                raise RuntimeError("savepoint rolled back")
            tick(3)
        with pytest.raises(RuntimeError), transaction.atomic():
            tick(4)
            raise RuntimeError("transaction rolled back")

    assert ticks(live()) == [1, 3]


def test_a_nested_batch_joins_the_outer_one_and_an_event_outside_goes_at_once(live):
    with events_batched():
        with events_batched(), transaction.atomic():
            tick(1)
        assert ticks(live()) == []
    assert ticks(live()) == [1]

    with transaction.atomic():
        tick(2)
    assert ticks(live()) == [2]


def test_an_event_whose_data_fails_to_read_leaves_the_rest_of_its_batch(live):
    def broken() -> dict:
        raise RuntimeError("read failed")

    with events_batched(), transaction.atomic():
        tick(1)
        event_send(group=LIVE_GROUP, event_type="stats.updated", data=broken)
        tick(2)

    assert ticks(live()) == [1, 2]


@pytest.mark.redis
def test_a_submission_keeps_all_its_events_for_replay_in_one_round_trip(live, monkeypatch):
    ranking = ProductRankingFactory()
    executes = []
    execute = Pipeline.execute

    def counted(pipeline: Pipeline, *args, **kwargs):
        executes.append([command[0][0] for command in pipeline.command_stack])
        return execute(pipeline, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counted)
    ranking_submit(user=ranking.user, category=ranking.category, product_ids=[ranking.product_id])

    appends = [commands for commands in executes if "XADD" in commands]
    assert len(appends) == 1
    sent = live()
    assert {m["event"] for m in sent} >= {"ranking.submitted", "stats.updated"}
    assert appends[0].count("XADD") >= len(sent)


def test_with_replay_off_a_batch_still_sends(live, settings):
    settings.REALTIME_REPLAY_SECONDS = 0
    assert streams_append(messages=[{"group": LIVE_GROUP, "event": "x"}]) == [None]
    with events_batched(), transaction.atomic():
        tick(1)
    sent = [m for m in live() if m["event"] == "ranking.submitted"]
    assert [("id" in m, m["data"]["n"]) for m in sent] == [(False, 1)]
