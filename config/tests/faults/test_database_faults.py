"""PostgreSQL connections killed under load on two instances."""

import json
import time

import psycopg
import pytest

from config.tests.faults.harness import Load, cluster, consistency_problems, report

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def terminate_backends(database: dict) -> int:
    """pg_terminate_backend on every connection the instances hold to the suite's database."""
    with psycopg.connect(database["url"], autocommit=True) as connection:
        return connection.execute(
            """SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = %s AND pid <> pg_backend_pid()""",
            [database["name"]],
        ).fetchone()[0]


def test_killed_database_connections_fail_cleanly_and_the_pool_recovers(fault_db, fresh_users):
    with cluster(fault_db) as running, Load(running, users=fresh_users) as load:
        load.run_for(3)
        killed_at = time.monotonic()
        killed = [terminate_backends(fault_db)]
        load.run_for(1.5)
        killed.append(terminate_backends(fault_db))
        load.run_for(5)
        tail_from = time.monotonic() - 2
        readiness = [instance.readyz()["status"] for instance in running.instances]
    refusals = load.server_errors()
    figures = load.figures(
        connections_killed=killed,
        time_to_recover_s=load.recovery_seconds(killed_at),
        readiness_after=readiness,
    )
    report("database connections killed", figures)
    for refusal in refusals:
        assert refusal.status == 503, refusal
        assert json.loads(refusal.body)["code"] == "service_unavailable"
    assert set(load.errors()) <= {"503"}
    assert sum(killed) > 0
    assert load.errors(since=tail_from) == {}
    assert readiness == ["ok", "ok"]
    assert consistency_problems(fault_db, load) == []
