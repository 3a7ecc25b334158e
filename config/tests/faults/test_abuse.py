"""Abuse against a running instance: a sign-in flood, forged X-Forwarded-For, oversized,
deeply nested and undecodable bodies, 10 MB WebSocket frames. Each gets its documented refusal
(4xx JSON, 429, close 1009), and the process stays healthy with its memory roughly flat."""

import collections
import contextlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from config.tests.faults.harness import (
    REQUEST_TIMEOUT,
    LiveSocket,
    cluster,
    consistency_problems,
    report,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SIGN_IN_FLOOD = 2_000
ROUNDS = 20
# Far above what these requests should leave behind, far below a leak of their bodies.
RSS_GROWTH_LIMIT_KIB = 96 * 1024

BIG_BODY = b'{"category": "' + b"x" * (1024 * 1024 + 512) + b'", "product_ids": [1]}'
NESTED = b"[" * 200_000 + b"]" * 200_000
INVALID_UTF8 = b'{"category": "\xff\xfe\xfd", "product_ids": [1]}'


def test_abuse_is_refused_and_the_process_stays_healthy(fault_db, fresh_users):
    with cluster(fault_db) as running:
        target = running.instances[0]
        _, token = fresh_users[0]
        signed_in = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=target.url, timeout=REQUEST_TIMEOUT) as client:
            for _ in range(20):
                client.get("/api/products/")
            rss_before = target.rss_kib()

            def sign_in(number: int) -> int:
                response = client.post(
                    "/api/customer/email-login", json={"email": f"flood{number % 50}@example.com"}
                )
                return response.status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                flood = collections.Counter(pool.map(sign_in, range(SIGN_IN_FLOOD)))
            forged = collections.Counter(
                client.post(
                    "/api/customer/email-login",
                    json={"email": "forged@example.com"},
                    headers={"X-Forwarded-For": f"203.0.113.{number}"},
                ).status_code
                for number in range(20)
            )
            bodies = collections.defaultdict(collections.Counter)
            for _ in range(ROUNDS):
                for name, body in (
                    ("1 MB+", BIG_BODY),
                    ("nested", NESTED),
                    ("invalid UTF-8", INVALID_UTF8),
                ):
                    response = client.post("/api/rankings/", content=body, headers=signed_in)
                    bodies[name][response.status_code] += 1
                    assert "code" in response.json(), (name, response.text[:200])
            # A 10 MB WebSocket frame: the socket is closed with 1009, the process carries on.
            frames_closed = []
            for _ in range(3):
                live = LiveSocket(target)
                with contextlib.suppress(ConnectionClosed, OSError):
                    live.connection.send("x" * (10 * 1024 * 1024))
                live.closed.wait(timeout=10)
                frames_closed.append(live.close_code)
                live.close()
            healthz = client.get("/healthz").status_code
            rss_after = target.rss_kib()
            alive = target.alive()
    figures = {
        "sign_in_flood": dict(flood),
        "forged_x_forwarded_for": dict(forged),
        "bodies": {name: dict(statuses) for name, statuses in bodies.items()},
        "ws_10mb_frames_close_codes": frames_closed,
        "rss_kib_before_after": [rss_before, rss_after],
    }
    report("abuse", figures)
    assert flood == {202: 10, 429: SIGN_IN_FLOOD - 10}
    assert forged == {429: 20}
    for name, statuses in bodies.items():
        assert all(400 <= status < 500 for status in statuses), (name, statuses)
    assert frames_closed == [1009, 1009, 1009]
    assert alive and healthz == 200
    assert rss_after - rss_before < RSS_GROWTH_LIMIT_KIB
    assert consistency_problems(fault_db) == []
