"""docs/performance.md, written from a benchmark result (`bench/results/latest.json`).

`make bench` calls `performance_doc_write` after a full run; `python -m bench.report` renders
the latest result again without running anything.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LATEST = ROOT / "bench" / "results" / "latest.json"
DOC = ROOT / "docs" / "performance.md"

INTRO = """\
# Performance

Written by `make bench` from `bench/results/latest.json`; `.venv/bin/python -m bench.report`
writes it again from that file. Edit `bench/report.py`, not this file.

## How it is measured

`make bench` measures one Rankly process under load on the machine it runs on:

1. drops and creates the PostgreSQL database `rankly_bench`, migrates it, and seeds it with
   set-based SQL (`bench/seed.py`) that keeps the game's invariants: points equal the ledger,
   ranking counts equal the rankings, streaks and achievements follow from the same days;
2. starts one daphne process with the Procfile's `web` command, on PostgreSQL and Redis, with
   `bench/settings.py`: the development settings with `DEBUG` off and the per-IP rate limits
   raised (a load generator on one IP would be refused within a second at the real limits;
   raised rather than switched off, so every request still pays for being counted in Redis);
3. warms the caches: `manage.py warm_cache`, then every read path of the hot set once;
4. runs Locust headless in its own process for each scenario, while sampling the server's
   memory and the database's connections and reading the server's CPU time before and after;
5. prints one table, writes it as JSON to `bench/results/latest.json`, and this file from it.

Every scenario but `writes_paced` is a closed loop without think time: each user sends its next
request when the last one is answered, so throughput is what one process sustains and latency
is mostly queueing. Ratios to the `healthz` baseline and CPU per request are what to compare
between runs: the machine's cores are shared with PostgreSQL, Redis and Locust itself.
"""

OUTRO_TEMPLATE = """\
## Running it

```sh
make bench                                   # the full run
make bench BENCH_ARGS="--duration 60"        # longer scenarios
make bench BENCH_ARGS="--reuse-database --profile --only cached_reads writes"
.venv/bin/python -m bench.profile bench/results/run-*/profile-writes.txt
```

`--profile` attaches py-spy and prints the share of the server's samples per layer; a profiled
run is slower, so it writes `bench/results/profile-latest.json`, not `latest.json`.
`BENCH_DATABASE_URL` and `BENCH_REDIS_URL` point the bench elsewhere (it drops and recreates
that database). CI runs the same harness at toy scale as `bench/tests/test_smoke.py`, which
checks that every scenario ran with no error and that the ledger invariants still hold, never
a speed.

## Leaderboards at a million players

`.venv/bin/python bench/leaderboards.py [--users 1000000] [--reseed]` measures the boards in
process: it seeds a PostgreSQL database of its own (`rankly_boards_bench`) with `bench/seed.py`,
rebuilds each board from the ledger into Redis, then times positions (rank, percentile and 25
neighbours each side) of random players and 100-entry pages at random offsets, with and
without the public names' query, and the SQL fallback with Redis out of the way.

One run on 2026-11-29: 1,000,001 users and 12.8 million ledger rows (seeded in 20 minutes),
1,000 reads of each kind, on the shared two-core machine under a load average of 10 to 13 from
other work. Every latency below is inflated by that load by an amount this run cannot tell (no
idle machine was available); the Redis-alone medians are the closest to the board's own cost.

{leaderboard_table}

A position or a page is one Redis round trip plus one PostgreSQL query for the public names
(by primary key), which is most of the end-to-end time here. Redis keeps about 97 MiB per
million players per board, so all four boards of a million players take about 310 MiB.

With Redis away (every read from PostgreSQL; 20 reads, 3 for a period's page): the `all` top
page p50 17.9 ms (the first read also counts the board: 1.1 s), a position p50 33 ms at the
top, 219 ms in the middle and 339 ms at the bottom, where the index-only count walks most of
the board. A period board's page aggregates the period's ledger: 9.7 s for the `day` (246,179
players) and 42 s for the `week` at this scale, far from usable; a per-period totals table would
make them index ranges like `all`.

## Smaller benchmarks

Each prints figures and asserts none: `bench/inprocess.py` (CPU and thread hops per request,
the ASGI app called in process), `bench/cache_outage.py` (request time with Redis healthy, hung
and dead), `bench/metrics_middleware.py` and `bench/ratelimit_middleware.py` (what one
middleware adds to a request), `bench/game_queries.py` (leaderboard position at a million
users), `bench/ws_fanout.py` (WebSocket fan-out against a bare `websockets` server) and
`bench/ws_redis_restart.py` (live events after a Redis restart).
"""


# One run of bench/leaderboards.py at a million players (see the text above the table).
LEADERBOARD_RUN = [
    ("board", "players", "rebuild", "Redis memory", "per million players",
     "position p50 / p99", "page p50 / p99", "Redis alone p50 / p99: position, page"),
    ("`all`", "984,717", "46.8 s", "95.6 MiB", "97.1 MiB",
     "10.1 / 29.8 ms", "11.3 / 23.6 ms", "0.56 / 8.2 ms, 1.32 / 10.2 ms"),
    ("`day`", "246,179", "16.3 s", "23.9 MiB", "97.1 MiB",
     "12.8 / 32.7 ms", "17.4 / 43.4 ms", "1.02 / 10.6 ms, 2.52 / 13.7 ms"),
    ("`week`", "984,717", "74.1 s", "95.7 MiB", "97.1 MiB",
     "15.0 / 67.8 ms", "19.3 / 49.5 ms", "1.83 / 14.7 ms, 3.42 / 31.0 ms"),
    ("`month`", "984,717", "85.7 s", "95.7 MiB", "97.1 MiB",
     "12.0 / 78.9 ms", "12.9 / 35.3 ms", "1.04 / 8.7 ms, 1.19 / 7.3 ms"),
]  # fmt: skip


def _markdown_table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]])


OUTRO = OUTRO_TEMPLATE.format(leaderboard_table=_markdown_table(LEADERBOARD_RUN))


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:g}"


def performance_markdown(result: dict) -> str:
    """The performance reference, every figure taken from one benchmark result."""
    machine, settings, seed = result["machine"], result["settings"], result["seed"]
    lines = [INTRO, "## Latest run", ""]
    lines.append(
        f"Run {result['started_at']} at commit `{result['commit']}` on {machine['cpu']}, "
        f"{machine['cores']} cores, {machine['memory_gb']} GB, Python {machine['python']}; "
        f"load average {machine['load_average_at_start'][0]} at start, "
        f"{machine['load_average_at_end'][0]} at end. {settings['users']} users, "
        f"{settings['duration_s']} s per scenario. Server: {settings['server']}."
    )
    lines.append("")
    rows = ", ".join(f"{_number(count)} {table}" for table, count in seed["rows"].items())
    lines.append(f"Seeded in {seed['seconds']} s: {rows}.")
    lines += ["", "| scenario | what the users request |", "|---|---|"]
    for name, row in result["scenarios"].items():
        lines.append(f"| `{name}` | {row['description']} |")
    lines += [
        "",
        "| scenario | req/s | p50 ms | p95 ms | p99 ms | errors | x healthz "
        "| server CPU ms/req | DB conns (max) | RSS MB (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["scenarios"].items():
        lines.append(
            f"| `{name}` | {row['rps']:.1f} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} "
            f"| {row['p99_ms']:.0f} | {row['errors']} | {row['ratio_to_healthz']:.2f} "
            f"| {row['server_cpu_ms_per_request']:.2f} | {row['db_connections_max']} "
            f"| {row['rss_mb_max']:.0f} |"
        )
    rates = result["cache_during_mix"]["rates"]
    lines += ["", "Cache hit rate during the mix:", ""]
    lines += ["| cache type | hit rate | hits | misses |", "|---|---:|---:|---:|"]
    for cache_type, rate in rates.items():
        lines.append(
            f"| {cache_type} | {rate['hit_rate']:.1%} | {rate['hits']} | {rate['misses']} |"
        )
    lines.append("")
    lines.append(f"Server peak memory (VmHWM): {result['server']['peak_memory_mb']:.0f} MB.")
    lines += ["", "| target | measured | |", "|---|---:|---|"]
    for name, target in result["targets"].items():
        verdict = "met" if target["met"] else "**missed**"
        label = name.replace("_", " ")
        lines.append(f"| {label} {target['target']} | {target['value']} | {verdict} |")
    lines += ["", OUTRO]
    return "\n".join(lines)


def performance_doc_write(*, result_path: Path = LATEST, doc_path: Path = DOC) -> Path:
    doc_path.write_text(performance_markdown(json.loads(result_path.read_text())))
    return doc_path


if __name__ == "__main__":
    written = performance_doc_write(result_path=Path(sys.argv[1]) if len(sys.argv) > 1 else LATEST)
    print(f"wrote {written}")
