"""Every declared event is sent by its real cause and arrives on its stream's socket."""

import json
import re
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from gamification.models import Achievement
from gamification.tests.factories import AchievementFactory
from products.tests.factories import ProductFactory
from realtime.events import EVENTS, STREAM_PATHS, UndeclaredEvent, event_send, user_group
from realtime.tests.conftest import socket_open, user_with_token

ROOT = Path(__file__).resolve().parents[2]


async def frames_until(socket, wanted: set[str]) -> dict[str, dict]:
    seen: dict[str, dict] = {}
    while not wanted <= set(seen):
        frame = await socket.receive_json_from(timeout=3)
        seen.setdefault(frame["type"], frame)
    return seen


def events_of(stream: str) -> set[str]:
    return {name for name, event in EVENTS.items() if event.stream == stream}


@database_sync_to_async
def ranking_posted(token: str, body: dict) -> int:
    response = Client().post(
        "/api/rankings/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    return response.status_code


@database_sync_to_async
def products_and_first_achievements(category: str) -> tuple[list[int], set[str]]:
    AchievementFactory(metric="rankings_submitted", threshold=1)
    first = Achievement.objects.filter(metric="rankings_submitted", threshold=1, is_active=True)
    return [ProductFactory(category=category).pk for _ in range(3)], set(
        first.values_list("code", flat=True)
    )


@pytest.mark.asyncio
@pytest.mark.usefixtures("realtime")
@pytest.mark.django_db(transaction=True)
async def test_a_submission_over_the_api_sends_every_declared_event_with_its_fields():
    _, token = await user_with_token()
    phones, first_codes = await products_and_first_achievements("phones")
    live = await socket_open("/ws/live/")
    me = await socket_open(f"/ws/me/?token={token}")

    assert await ranking_posted(token, {"category": "phones", "product_ids": phones}) == 201

    received = {
        **await frames_until(live, events_of("live")),
        **await frames_until(me, events_of("me")),
    }
    assert set(received) == set(EVENTS)
    for name, frame in received.items():
        assert set(frame["data"]) == set(EVENTS[name].fields), name
    stats = received["stats.updated"]["data"]
    assert stats["category"] == "phones"
    first = next(p for p in stats["products"] if p["product_id"] == phones[0])
    assert (first["rankers"], first["first_place_votes"], first["average_position"]) == (1, 1, 1)
    position = received["leaderboard.position"]["data"]
    assert position == {
        "window": "all",
        "rank": 1,
        "points": received["points.updated"]["data"]["points"],
        "total": 1,
    }
    assert received["leaderboard.updated"]["data"]["windows"] == ["all", "day", "week", "month"]
    assert received["achievement.unlocked"]["data"]["code"] in first_codes
    assert received["streak.updated"]["data"]["current_length"] == 1
    await live.disconnect()
    await me.disconnect()


@pytest.mark.django_db
def test_an_undeclared_event_or_one_sent_to_another_stream_is_refused():
    with pytest.raises(UndeclaredEvent):
        event_send(group="live", event_type="tick", data={})
    with pytest.raises(UndeclaredEvent):
        event_send(group=user_group(1), event_type="ranking.submitted", data={})


def realtime_doc() -> str:
    docs = ROOT / "docs" / "realtime.md"
    return docs.read_text() if docs.exists() else (ROOT / "README.md").read_text()


def test_the_documented_event_table_is_the_declared_list():
    rows = re.findall(r"^\| `([a-z]+\.[a-z]+)` \| `(/ws/\w+/)` \| ([^|]+) \|", realtime_doc(), re.M)
    documented = {
        name: (path, tuple(re.findall(r"`(\w+)`", fields))) for name, path, fields in rows
    }
    declared = {name: (STREAM_PATHS[event.stream], event.fields) for name, event in EVENTS.items()}
    assert documented == declared


@pytest.mark.django_db
def test_the_openapi_schema_lists_the_declared_events(client):
    schema = client.get("/api/schema/?format=json").json()

    listed = {
        e["type"]: (e["stream"], tuple(e["fields"])) for e in schema["info"]["x-websocket-events"]
    }
    assert listed == {
        name: (STREAM_PATHS[event.stream], event.fields) for name, event in EVENTS.items()
    }
    assert all(f"`{name}`" in schema["info"]["description"] for name in EVENTS)
