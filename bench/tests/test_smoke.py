"""The benchmark at toy scale, so that it cannot rot: it must run and see no error. No speeds."""

import pytest

from bench.run import SCENARIOS
from bench.soak import invariants
from bench.tests.support import run_bench

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def test_every_scenario_runs_without_errors_and_keeps_the_ledger_consistent(
    scratch_database_url, tmp_path
):
    result = run_bench(
        "--smoke",
        "--users",
        "4",
        database_url=scratch_database_url,
        results_dir=tmp_path,
        timeout=240,
    )

    assert set(result["scenarios"]) == {scenario.name for scenario in SCENARIOS}
    for name, stats in result["scenarios"].items():
        assert stats["requests"] > 0, name
        assert stats["errors"] == 0, (name, stats["failures"])
        # The load generator's own CPU is measured, so a saturated Locust shows.
        assert stats["load_generator_cpu_ms_per_request"] > 0, name
    assert result["warm"]["failed"] == 0
    # The boards are in Redis before the first scenario (reads and writes never measure the
    # SQL fallback), the Procfile's worker took every job the server queued, and it and beat
    # ran to the end.
    seeded_players = result["scale"]["users"] - result["scale"]["users"] // 97
    assert result["warm"]["leaderboards"]["all"] >= seeded_players * 0.9
    assert result["jobs_left_queued"] == 0
    assert result["background_jobs_running"] == ["worker", "beat"]
    assert result["seed"]["rows"]["accounts_user"] == result["scale"]["users"] + 1

    # The seed and the submissions made under load keep the game's invariants.
    assert invariants(scratch_database_url) == {
        "points_equal_ledger_drift": 0,
        "counts_equal_rankings_drift": 0,
    }
