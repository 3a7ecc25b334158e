"""The benchmark at toy scale, so that it cannot rot: it must run and see no error. No speeds."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from bench.run import ROOT, SCENARIOS

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def smoke_database_url():
    """A database of its own next to the suite's (<name>_bench_smoke), dropped afterwards."""
    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"{url.path.lstrip('/')}_bench_smoke"
    yield urlunsplit(url._replace(path=f"/{name}"))
    with psycopg.connect(urlunsplit(url._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_scenario_runs_without_errors_and_keeps_the_ledger_consistent(
    smoke_database_url, tmp_path
):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--users",
            "4",
            "--database-url",
            smoke_database_url,
            "--redis-url",
            os.environ["UPSTASH_REDIS_URL"],
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (result_file,) = Path(tmp_path).glob("bench-*.json")
    result = json.loads(result_file.read_text())

    assert set(result["scenarios"]) == {scenario.name for scenario in SCENARIOS}
    for name, stats in result["scenarios"].items():
        assert stats["requests"] > 0, name
        assert stats["errors"] == 0, (name, stats["failures"])
    assert result["warm"]["failed"] == 0
    assert result["seed"]["rows"]["accounts_user"] == result["scale"]["users"] + 1

    # The seed and the submissions made under load keep the game's invariants.
    with psycopg.connect(smoke_database_url) as conn:
        drifted_points = conn.execute(
            "SELECT count(*) FROM accounts_user AS u WHERE u.points <> COALESCE("
            "(SELECT sum(points) FROM gamification_activitylog AS a WHERE a.user_id = u.id), 0)"
        ).fetchone()[0]
        drifted_counts = conn.execute(
            "SELECT count(*) FROM products_productmetadata AS m WHERE m.ranking_count <> "
            "(SELECT count(*) FROM rankings_productranking AS r WHERE r.product_id = m.product_id)"
        ).fetchone()[0]
    assert drifted_points == 0
    assert drifted_counts == 0
