"""One run of the bench, as the smoke tests start it."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.run import ROOT


def run_bench(*args: str, database_url: str, results_dir: Path, timeout: int) -> dict:
    """`make bench` with these arguments on the suite's Redis; the result file it wrote."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            *args,
            "--database-url",
            database_url,
            "--redis-url",
            os.environ["UPSTASH_REDIS_URL"],
            "--results-dir",
            str(results_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    prefix = "soak" if "--soak" in args else "bench"
    (result_file,) = results_dir.glob(f"{prefix}-*.json")
    return json.loads(result_file.read_text())
