"""The soak at toy scale, so that it cannot rot: it must run with no error, deliver every event
and keep the ledger invariants. No speeds."""

import os
import subprocess
import sys
from datetime import UTC, datetime

import psycopg
import pytest

from bench.run import ROOT
from bench.soak import GROUPS
from bench.tests.support import run_bench

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

USERS = 60


def test_the_soak_runs_its_users_delivers_every_event_and_keeps_the_ledger(
    scratch_database_url, tmp_path
):
    started = datetime.now(UTC)
    result = run_bench(
        "--soak",
        "--smoke",
        "--users",
        str(USERS),
        "--duration",
        "20",
        "--ramp",
        "8",
        database_url=scratch_database_url,
        results_dir=tmp_path,
        timeout=180,
    )
    load = result["load"]

    assert result["warm"]["failed"] == 0
    assert result["warm"]["leaderboards"]["all"] > 0
    assert load["crashed_users"] == 0, load["error_samples"]
    # Every user signed in and opened its sockets; every answer was a success.
    assert load["http"]["sign_in"]["count"] == USERS
    assert sum(load["http"][group]["count"] for group in GROUPS) > USERS
    assert load["http"]["submit"]["count"] > 0
    assert set(load["status"]) == {"2xx"}, load["error_samples"]
    sockets = load["sockets"]
    assert sockets["connects"] >= USERS + load["live_users"]
    assert sockets["connect_failures"] == {}
    assert sockets["drops"] == {}
    # What the submissions sent reached the sockets.
    assert load["me_delivery"]["expected"] > 0
    assert load["me_delivery"]["missing"] == 0
    assert load["live_delivery"]["public_submissions_seen"] > 0
    assert load["live_delivery"]["subscriber_missing"] == 0
    assert load["live_delivery"]["public_submissions_unseen"] == 0
    assert result["targets"]["events_lost"]["met"]
    # The ledger invariants, checked by the soak itself and again here.
    assert result["invariants"] == {
        "points_equal_ledger_drift": 0,
        "counts_equal_rankings_drift": 0,
    }
    with psycopg.connect(scratch_database_url) as conn:
        submitted = conn.execute(
            # The seed's rows of today are stamped 12:00 UTC, so before noon they are newer
            # than `started`; a submission's row, unlike theirs, names its category.
            "SELECT count(*) FROM gamification_activitylog WHERE kind = 'ranking_submitted' "
            "AND created_at >= %s AND data ? 'category'",
            (started,),
        ).fetchone()[0]
    assert submitted == load["submissions_accepted"] > 0

    # The same database reused for more users than it holds tokens for is refused up front,
    # rather than soaking with users that can only be turned away.
    refused = subprocess.run(
        [
            sys.executable,
            *("-m", "bench.run", "--soak", "--smoke", "--reuse-database"),
            *("--users", str(USERS + 1), "--database-url", scratch_database_url),
            *("--redis-url", os.environ["UPSTASH_REDIS_URL"], "--results-dir", str(tmp_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert f"no token for {USERS + 1} users" in refused.stderr
