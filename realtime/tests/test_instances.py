"""Two daphne processes sharing PostgreSQL and Redis, started as the Procfile starts them."""

import asyncio
import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import websockets
from django.conf import settings

from accounts.models import UserSession
from accounts.services import token_hash
from accounts.tests.factories import UserFactory
from config.tests.private_redis import free_port
from gamification.models import Achievement
from gamification.tests.factories import AchievementFactory
from products.tests.factories import ProductFactory
from realtime.events import EVENTS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def port_wait(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "daphne exited at startup"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"daphne not listening on {port} after {timeout} s")


def service_env() -> dict[str, str]:
    """This test's database (so the processes see what the test committed) and Redis."""
    db = settings.DATABASES["default"]
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    return dict(
        os.environ,
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        RANKLY_TEST_KEY_PREFIX=settings.CACHES["default"].get("KEY_PREFIX", ""),
    )


def procfile_web(port: int) -> list[str]:
    """The Procfile's web command on a local port."""
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    words = shlex.split(line.removeprefix("web:").replace("$PORT", str(port)))
    words[0] = str(BIN / words[0])
    return [w if w != "0.0.0.0" else "127.0.0.1" for w in words]


@pytest.fixture
def instances():
    """Instances A and B: their ports; both are stopped however the test ends."""
    env = service_env()
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            procfile_web(port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            port_wait(port, process)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def events_raise_elsewhere(events: list[tuple[str, str, dict]]) -> None:
    """Raise events with event_send in a separate Django process, after commit."""
    code = (
        "from django.db import transaction\n"
        "from realtime.events import event_send\n"
        f"for group, event_type, data in {events!r}:\n"
        "    with transaction.atomic():\n"
        "        event_send(group=group, event_type=event_type, data=data)\n"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=service_env(),
        check=True,
        timeout=60,
        capture_output=True,
    )


async def frames(ws, count: int) -> list[dict]:
    return [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(count)]


def ranking_post(port: int, token: str, body: dict) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/rankings/",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def events_of(stream: str) -> set[str]:
    return {name for name, event in EVENTS.items() if event.stream == stream}


async def frames_until(ws, wanted: set[str]) -> dict[str, dict]:
    """Frames by type until every wanted type has arrived."""
    seen: dict[str, dict] = {}
    while not wanted <= set(seen):
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        seen.setdefault(frame["type"], frame)
    return seen


def test_a_ranking_submitted_on_one_instance_reaches_sockets_on_the_other(instances):
    port_a, port_b = instances
    alice, bob = UserFactory(display_name="Alice"), UserFactory()
    for user in (alice, bob):
        UserSession.objects.create(user=user, token_hash=token_hash(f"token-{user.pk}"))
    # A transactional test may start after another's flush removed the starter achievements.
    first = Achievement.objects.filter(metric="rankings_submitted", threshold=1, is_active=True)
    if not first.exists():
        AchievementFactory(metric="rankings_submitted", threshold=1)
    first_codes = set(first.values_list("code", flat=True))
    phones = [ProductFactory(category="phones").pk for _ in range(3)]

    async def scenario() -> None:
        async with (
            websockets.connect(
                f"ws://127.0.0.1:{port_a}/ws/live/", origin=f"http://127.0.0.1:{port_a}"
            ) as live_a,
            websockets.connect(
                f"ws://127.0.0.1:{port_a}/ws/me/?token=token-{alice.pk}",
                origin=f"http://127.0.0.1:{port_a}",
            ) as alice_a,
            websockets.connect(
                f"ws://127.0.0.1:{port_a}/ws/me/?token=token-{bob.pk}",
                origin=f"http://127.0.0.1:{port_a}",
            ) as bob_a,
        ):
            status = await asyncio.to_thread(
                ranking_post,
                port_b,
                f"token-{alice.pk}",
                {"category": "phones", "product_ids": phones},
            )
            assert status == 201

            # Every declared event is raised by this one submission.
            live = await frames_until(live_a, events_of("live"))
            assert live["ranking.submitted"]["data"]["display_name"] == "Alice"
            assert live["ranking.submitted"]["data"]["product_ids"] == phones
            assert {p["product_id"] for p in live["stats.updated"]["data"]["products"]} == set(
                phones
            )
            mine = await frames_until(alice_a, events_of("me"))
            assert mine["achievement.unlocked"]["data"]["code"] in first_codes
            assert mine["points.updated"]["data"]["points"] > 0
            assert mine["leaderboard.position"]["data"]["rank"] == 1
            for frame in [*live.values(), *mine.values()]:
                assert set(frame["data"]) == set(EVENTS[frame["type"]].fields)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(bob_a.recv(), 0.5)

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_events_raised_elsewhere_reach_sockets_on_every_instance(instances):
    # The events are raised by a third process, so they can only arrive through Redis.
    port_a, port_b = instances
    alice, bob = UserFactory(), UserFactory()
    for user in (alice, bob):
        UserSession.objects.create(user=user, token_hash=token_hash(f"token-{user.pk}"))

    async def scenario() -> None:
        async with (
            websockets.connect(
                f"ws://127.0.0.1:{port_a}/ws/live/", origin=f"http://127.0.0.1:{port_a}"
            ) as live_a,
            websockets.connect(
                f"ws://127.0.0.1:{port_b}/ws/live/", origin=f"http://127.0.0.1:{port_b}"
            ) as live_b,
            websockets.connect(
                f"ws://127.0.0.1:{port_a}/ws/me/?token=token-{alice.pk}",
                origin=f"http://127.0.0.1:{port_a}",
            ) as alice_a,
            websockets.connect(
                f"ws://127.0.0.1:{port_b}/ws/me/?token=token-{bob.pk}",
                origin=f"http://127.0.0.1:{port_b}",
            ) as bob_b,
        ):
            await asyncio.to_thread(
                events_raise_elsewhere,
                [
                    ("live", "ranking.submitted", {"ranking_id": 1}),
                    (f"user.{alice.pk}", "points.updated", {"points": 10}),
                ],
            )
            for live in (live_a, live_b):
                [frame] = await frames(live, 1)
                assert (frame["type"], frame["data"]) == ("ranking.submitted", {"ranking_id": 1})
            [frame] = await frames(alice_a, 1)
            assert (frame["type"], frame["data"]) == ("points.updated", {"points": 10})
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(bob_b.recv(), 0.5)

            await live_a.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(live_a.recv(), 5)) == {"type": "pong"}
            # The server refuses a message over 1 MB before the application sees it: close 1009.
            await live_b.send(json.dumps({"type": "ping", "pad": "x" * (1024 * 1024)}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(live_b.recv(), 5)
            assert closed.value.rcvd.code == 1009

    asyncio.run(asyncio.wait_for(scenario(), 60))


def redis_private(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    port_wait(port, process)
    return process


PUBLISH_EVERY_100_MS = (
    "import time\n"
    "from django.db import transaction\n"
    "from realtime.events import event_send\n"
    "for n in range(300):\n"
    "    with transaction.atomic():\n"
    "        event_send(group='live', event_type='ranking.submitted', data={'n': n})\n"
    "    time.sleep(0.1)\n"
)


def test_instance_gets_cross_instance_events_again_after_redis_restarts():
    redis_port, web_port = free_port(), free_port()
    env = dict(service_env(), UPSTASH_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    processes = {"redis": redis_private(redis_port)}
    try:
        processes["web"] = subprocess.Popen(
            procfile_web(web_port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_wait(web_port, processes["web"])

        async def scenario() -> None:
            url = f"ws://127.0.0.1:{web_port}/ws/live/"
            async with websockets.connect(url, origin=f"http://127.0.0.1:{web_port}") as ws:
                processes["redis"].terminate()
                processes["redis"].wait(timeout=10)
                await asyncio.sleep(1)
                processes["redis"] = redis_private(redis_port)
                processes["publisher"] = subprocess.Popen(
                    [sys.executable, "manage.py", "shell", "-c", PUBLISH_EVERY_100_MS],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                [frame] = await frames(ws, 1)
                assert frame["type"] == "ranking.submitted"

        asyncio.run(asyncio.wait_for(scenario(), 40))
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_client_that_drops_from_one_instance_recovers_missed_events_on_the_other(instances):
    port_a, port_b = instances

    async def scenario() -> None:
        async with websockets.connect(
            f"ws://127.0.0.1:{port_a}/ws/live/", origin=f"http://127.0.0.1:{port_a}"
        ) as ws:
            await asyncio.to_thread(
                events_raise_elsewhere, [("live", "ranking.submitted", {"n": 0})]
            )
            [seen] = await frames(ws, 1)

        await asyncio.to_thread(
            events_raise_elsewhere,
            [("live", "ranking.submitted", {"n": 1}), ("live", "ranking.submitted", {"n": 2})],
        )
        url = f"ws://127.0.0.1:{port_b}/ws/live/?last_event_id={seen['id']}"
        async with websockets.connect(url, origin=f"http://127.0.0.1:{port_b}") as ws:
            replayed = await frames(ws, 2)
            await asyncio.to_thread(
                events_raise_elsewhere, [("live", "ranking.submitted", {"n": 3})]
            )
            [live] = await frames(ws, 1)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)

        assert [frame["data"]["n"] for frame in [*replayed, live]] == [1, 2, 3]

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_socket_that_does_not_read_is_closed_not_buffered_without_bound(instances):
    port_a, _ = instances
    sock = socket.socket()
    # A small receive window, so what the client does not read stays in the server.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port_a))
    sock.sendall(
        (
            f"GET /ws/live/ HTTP/1.1\r\nHost: 127.0.0.1:{port_a}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port_a}\r\n\r\n"
        ).encode()
    )
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(4096)
    assert received.startswith(b"HTTP/1.1 101")

    code = (
        "from django.db import transaction\n"
        "from realtime.events import event_send\n"
        "data = {'display_name': 'x' * 60000, 'category': 'c', 'product_ids': [1]}\n"
        "for _ in range(200):\n"
        "    with transaction.atomic():\n"
        "        event_send(group='live', event_type='ranking.submitted', data=data)\n"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=service_env(),
        check=True,
        timeout=60,
        capture_output=True,
    )
    sock.settimeout(5)
    with contextlib.suppress(ConnectionError, TimeoutError):
        while chunk := sock.recv(1 << 20):
            received += chunk
    sock.close()

    # 200 events of 60 KB are 12 MB: the server gave up on this reader long before.
    assert len(received) < 100 * 60_000


def test_a_session_deleted_on_one_instance_closes_its_socket_on_the_other_within_a_second(
    instances,
):
    port_a, port_b = instances
    user = UserFactory()
    revoked = UserSession.objects.create(user=user, token_hash=token_hash(f"a-{user.pk}"))
    UserSession.objects.create(user=user, token_hash=token_hash(f"b-{user.pk}"))

    async def scenario() -> None:
        url = f"ws://127.0.0.1:{port_a}/ws/me/?token=a-{user.pk}"
        async with websockets.connect(url, origin=f"http://127.0.0.1:{port_a}") as ws:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port_b}/api/customer/sessions/{revoked.pk}",
                headers={"Authorization": f"Token b-{user.pk}"},
                method="DELETE",
            )
            status = await asyncio.to_thread(lambda: urllib.request.urlopen(request).status)
            assert status == 204
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 1)
            assert closed.value.rcvd.code == 4401

    asyncio.run(asyncio.wait_for(scenario(), 60))
