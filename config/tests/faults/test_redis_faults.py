"""Redis stopped and restarted, and Redis hung, under load on two instances."""

import time

import pytest
from django.conf import settings
from django_ratelimit.core import _get_window

from config.tests.faults.harness import (
    LiveSocket,
    Load,
    cluster,
    consistency_problems,
    report,
    sign_in_request,
    submit,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

# Twenty seconds in production terms; kept short so that CI stays quick.
OUTAGE_SECONDS = 8
PAUSE_SECONDS = 4


def _address_with_a_window_left(seconds: int) -> str:
    """A loopback address whose sign-in window (django-ratelimit's, a different one for each
    client) does not end in the next `seconds`, so that eleven requests share one window."""
    period = settings.RATELIMIT_RATES["auth"][1]
    for last in range(2, 255):
        address = f"127.0.0.{last}"
        if _get_window(address, period) - time.time() > seconds:
            return address
    raise AssertionError("no loopback address with a window left")


def _wait_until_redis_used_again(running, deadline: float) -> float:
    """Seconds until both instances report their cache and channel layer healthy again."""
    started = time.monotonic()
    while time.monotonic() < deadline:
        answers = [instance.readyz() for instance in running.instances]
        if all(answer["status"] == "ok" for answer in answers):
            return round(time.monotonic() - started, 2)
        time.sleep(0.25)
    raise AssertionError(f"Redis not used again: {answers}")


def test_redis_stopped_and_restarted_under_load(fault_db, fresh_users):
    *users, (_, probe_token) = fresh_users
    category, products = fault_db["category"], fault_db["products"]
    local_ids, cross_ids = products[:10][::-1], products[2:12]
    with cluster(fault_db) as running, Load(running, users=users) as load:
        first, second = running.instances
        sockets = [LiveSocket(first), LiveSocket(second)]
        load.run_for(3)
        running.redis.kill()
        outage_at = time.monotonic()
        # Sign-in stays limited while the shared counters are gone: each instance counts alone.
        source = _address_with_a_window_left(60)
        statuses = [
            sign_in_request(first, email="outage@example.com", source=source).status_code
            for _ in range(11)
        ]
        # Realtime keeps working inside each instance.
        submit(first, token=probe_token, category=category, product_ids=local_ids)
        local_delivery = sockets[0].wait_for_submission(local_ids, timeout=5)
        load.run_for(OUTAGE_SECONDS - (time.monotonic() - outage_at))
        running.redis.start()
        back_at = time.monotonic()
        recovery = _wait_until_redis_used_again(running, back_at + 30)
        keys_before = running.redis.client().dbsize()
        # And across instances again once Redis is back.
        submit(first, token=probe_token, category=category, product_ids=cross_ids)
        cross_delivery = sockets[1].wait_for_submission(cross_ids, timeout=15)
        cross_delivery_s = round(time.monotonic() - back_at, 2)
        load.run_for(3)
        keys_after = running.redis.client().dbsize()
        for live in sockets:
            live.close()
    figures = load.figures(
        outage_seconds=OUTAGE_SECONDS,
        sign_in_statuses_during_outage=statuses,
        redis_used_again_after_s=recovery,
        redis_keys_after_return=[keys_before, keys_after],
        latency_during_outage_ms=load.latencies_ms(outage_at, back_at),
        realtime_local_during_outage=local_delivery,
        realtime_cross_instance_after_s=cross_delivery_s if cross_delivery else None,
    )
    report("redis stopped and restarted", figures)
    assert load.server_errors() == []
    assert load.errors() == {}
    assert figures["submissions_accepted"] == figures["submissions_sent"] > 0
    assert statuses == [202] * 10 + [429]
    assert keys_after > 0
    assert local_delivery and cross_delivery
    assert consistency_problems(fault_db, load) == []


def test_hung_redis_does_not_stall_requests(fault_db, fresh_users):
    with cluster(fault_db) as running, Load(running, users=fresh_users) as load:
        load.run_for(2)
        running.redis.pause()
        paused_at = time.monotonic()
        load.run_for(PAUSE_SECONDS)
        running.redis.resume()
        resumed_at = time.monotonic()
        load.run_for(3)
    figures = load.figures(
        pause_seconds=PAUSE_SECONDS,
        latency_before_ms=load.latencies_ms(load.started, paused_at),
        latency_paused_ms=load.latencies_ms(paused_at, resumed_at),
        latency_after_ms=load.latencies_ms(resumed_at, resumed_at + 60),
        slowest=load.slowest(paused_at - 2, resumed_at),
    )
    report("redis hung (SIGSTOP)", figures)
    assert load.server_errors() == []
    assert load.errors() == {}
    assert figures["submissions_accepted"] == figures["submissions_sent"] > 0
    assert consistency_problems(fault_db, load) == []
