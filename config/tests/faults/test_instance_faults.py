"""One of two instances killed with SIGKILL under load."""

import signal
import time

import pytest

from config.tests.faults.harness import Load, cluster, consistency_problems, report

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_the_other_instance_keeps_serving_after_one_is_killed(fault_db, fresh_users):
    with cluster(fault_db) as running, Load(running, users=fresh_users) as load:
        load.run_for(3)
        dead, survivor = running.instances
        killed_at = time.monotonic()
        dead.process.send_signal(signal.SIGKILL)
        dead.process.wait(timeout=10)
        load.run_for(5)
        survivor_alive = survivor.alive()
    after = [o for o in load.outcomes if o.at > killed_at + 0.5]
    figures = load.figures(
        answered_after_kill={"web-1": 0, "web-2": 0}
        | {name: sum(o.instance == name for o in after) for name in ("web-1", "web-2")},
        time_to_recover_s=load.recovery_seconds(killed_at),
    )
    report("instance killed (SIGKILL)", figures)
    assert survivor_alive
    # Requests in flight on the killed instance die with it; nothing else fails.
    assert set(load.errors()) <= {"RemoteProtocolError", "ReadError"}
    assert load.server_errors() == []
    assert load.errors(since=killed_at + 0.5) == {}
    assert figures["answered_after_kill"] == {"web-1": 0, "web-2": len(after)} and after
    assert load.failovers > 0
    assert consistency_problems(fault_db, load) == []
