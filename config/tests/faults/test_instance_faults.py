"""One of two instances killed with SIGKILL under load."""

import signal
import time

import pytest

from config.tests.faults.harness import (
    LiveSocket,
    Load,
    cluster,
    consistency_problems,
    report,
    submit,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_the_other_instance_keeps_serving_after_one_is_killed(fault_db, fresh_users):
    *users, (_, probe_token) = fresh_users
    probe_ids = fault_db["products"][1:11][::-1]
    with cluster(fault_db) as running, Load(running, users=users) as load:
        dead, survivor = running.instances
        orphan = LiveSocket(dead)
        load.run_for(3)
        killed_at = time.monotonic()
        dead.process.send_signal(signal.SIGKILL)
        dead.process.wait(timeout=10)
        # A client whose socket dies reconnects, and the load balancer sends it to the survivor.
        orphan_noticed = orphan.closed.wait(timeout=10)
        reconnected = LiveSocket(survivor)
        submit(survivor, token=probe_token, category=fault_db["category"], product_ids=probe_ids)
        reconnected_gets_events = reconnected.wait_for_submission(probe_ids, timeout=5)
        for live in (orphan, reconnected):
            live.close()
        load.run_for(4)
        survivor_alive = survivor.alive()
    after = [o for o in load.outcomes if o.at > killed_at + 0.5]
    figures = load.figures(
        answered_after_kill={"web-1": 0, "web-2": 0}
        | {name: sum(o.instance == name for o in after) for name in ("web-1", "web-2")},
        time_to_recover_s=load.recovery_seconds(killed_at),
        socket_reconnected_and_got_events=orphan_noticed and reconnected_gets_events,
    )
    report("instance killed (SIGKILL)", figures)
    assert survivor_alive
    assert orphan_noticed and reconnected_gets_events
    # Requests in flight on the killed instance die with it; nothing else fails.
    assert set(load.errors()) <= {"RemoteProtocolError", "ReadError"}
    assert load.server_errors() == []
    assert load.errors(since=killed_at + 0.5) == {}
    assert figures["answered_after_kill"] == {"web-1": 0, "web-2": len(after)} and after
    assert load.failovers > 0
    assert consistency_problems(fault_db, load) == []
