"""The soak at toy scale, so that it cannot rot: it must run with no error, deliver every event
and keep the ledger invariants. No speeds."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from bench.run import ROOT
from bench.soak import GROUPS

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

USERS = 60


@pytest.fixture
def soak_database_url():
    """A database of its own next to the suite's (<name>_soak_smoke), dropped afterwards."""
    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"{url.path.lstrip('/')}_soak_smoke"
    yield urlunsplit(url._replace(path=f"/{name}"))
    with psycopg.connect(urlunsplit(url._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_soak_runs_its_users_delivers_every_event_and_keeps_the_ledger(
    soak_database_url, tmp_path
):
    started = datetime.now(UTC)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--soak",
            "--smoke",
            "--users",
            str(USERS),
            "--duration",
            "20",
            "--ramp",
            "8",
            "--database-url",
            soak_database_url,
            "--redis-url",
            os.environ["UPSTASH_REDIS_URL"],
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (result_file,) = Path(tmp_path).glob("soak-*.json")
    result = json.loads(result_file.read_text())
    load = result["load"]

    assert result["warm"]["failed"] == 0
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
    with psycopg.connect(soak_database_url) as conn:
        submitted = conn.execute(
            "SELECT count(*) FROM gamification_activitylog WHERE kind = 'ranking_submitted' "
            "AND created_at >= %s",
            (started,),
        ).fetchone()[0]
    assert submitted == load["submissions_accepted"] > 0
