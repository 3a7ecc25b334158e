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

`make bench` measures Rankly under load on the machine it runs on, one server process unless
`--web-concurrency N` asks for more:

1. drops and creates the PostgreSQL database `rankly_bench`, migrates it, and seeds it with
   set-based SQL (`bench/seed.py`) that keeps the game's invariants: points equal the ledger,
   ranking counts equal the rankings, streaks and achievements follow from the same days;
2. starts the server with the Procfile's `web` command and `WEB_CONCURRENCY` from
   `--web-concurrency` (default 1), on PostgreSQL and Redis, serving `bench/asgi.py` (Rankly
   with two more routes answered before Django: `/bench/floor`, the server's own cost, and
   `/bench/floor-redis`, the same after one Redis round trip) with
   `bench/settings.py`: the development settings with `DEBUG` off and the per-IP rate limits
   raised (a load generator on one IP would be refused within a second at the real limits;
   raised rather than switched off, so every request still pays for being counted in Redis);
   beside it the Procfile's `worker` and `beat`, as in production, so the jobs the server
   queues run and the periodic housekeeping with them (their CPU is not counted as the
   server's; the machine's busy cores include it);
3. builds the Redis leaderboards (`manage.py rebuild_leaderboards`, as after a deploy to an
   empty Redis; reads and writes then use the boards, not the SQL fallback), warms the caches
   (`manage.py warm_cache`), then reads every path of the hot set once;
4. runs Locust headless in its own process for each scenario, while sampling the server's
   memory and the database's connections and reading the server's CPU time before and after
   (with several processes: CPU summed over the workers, memory of the largest);
5. prints one table, writes it as JSON to `bench/results/latest.json`, and this file from it.

Every scenario but the paced ones is a closed loop without think time: each user sends its next
request when the last one is answered, so throughput is what the server sustains and latency is
mostly queueing. `writes_paced` offers a steady 16 submissions a second: each user submits once
every users/16 s, counted from its own random start within the first period (so the users never
fall back into one burst); `writes_80` paces the same way to 80 % of the capacity `writes`
measured in the same run. Ratios to the `healthz` baseline (a Django view through every
middleware) and to the `floor` (a response written before Django), and CPU per request, are
what to compare between runs: the machine's cores are shared with PostgreSQL, Redis and Locust
itself. `floor_redis`'s own ratio to the `floor` is the most that a cached hit, which reads
Redis once, could reach against it. Locust is one process: the load generator's cores (its CPU
time over the scenario's length) near 1.0 mean it, not the server, set the pace, and a ratio
between two scenarios then understates the cheaper one; the server's CPU per request does not
depend on it. The server's cores (its CPU time over the same span, summed over its processes)
and the machine's busy cores (every program's CPU time, from `/proc/stat`) say what ran short:
machine busy cores near the machine's count mean the cores set the pace, not the server; server
cores near the number of processes mean the server did. Redis CPU per request is the Redis
server's own (every client's, if the Redis is shared with other work).
"""

# The routes config.fastpath answers, by the name each app registers (a test compares them).
FAST_PATH_ROUTES = [
    ("product_categories", "`GET /api/products/categories/`"),
    ("product_list", "`GET /api/products/` (the catalogue pages; never with `search`)"),
    ("product_detail", "`GET /api/products/{id}/`"),
    ("category_stats", "`GET /api/rankings/stats/?category=`"),
    ("product_stats", "`GET /api/rankings/stats/{id}/`"),
    ("home_stats", "`GET /api/gamification/home-stats/`"),
    ("leaderboard", "`GET /api/gamification/leaderboard/` (every window, kept per UTC day)"),
    ("achievements", "`GET /api/gamification/achievements/`"),
]

FAST_PATH_TEMPLATE = """\
## What is answered before Django

`config/fastpath.py` answers these routes on the event loop, in one Redis round trip (the
request's rate-limit count, the generations of the route's cache types and the stored answer),
with no worker thread, middleware or view, when the request is signed out and its answer is
stored:

{routes}

It sends the `200` Django sent for the same host, path and query string (body, `ETag`,
`Cache-Control`, `Vary` and the security headers, HSTS included in production) with the
request's own `X-RateLimit-*` headers, or the `304` Django would send when `If-None-Match`
names that `ETag` (weak comparison, or `*`). `config/tests/test_fastpath.py` sends every route
both ways and requires the same status, headers and body.

Django answers everything else, and the answer of a cached route's `200` is stored for the
next request:

- every signed-in request (an `Authorization` header or the session cookie), on these routes
  too: a token or session is checked by Django's authentication on every request, so a revoked
  one or a deactivated user is refused at once; the signed-in user's leaderboard position,
  `/api/gamification/me/...` and the achievements a user has unlocked are never answered
  before Django;
- searches (`/api/products/?search=`, which are recorded);
- `If-Match`, `If-Unmodified-Since` and an `If-Modified-Since` without `If-None-Match`;
- a client over its rate limit (the `429`, counted once), a `Host` outside `ALLOWED_HOSTS`,
  plain HTTP where production redirects to HTTPS, a query string with anything but printable,
  percent-encoded characters;
- a miss: the first request after an invalidation of any of the route's cache types, after a
  new UTC day for the leaderboards, or after 60 s;
- Redis unavailable (the breaker open): every request goes to Django as if there were no fast
  path;
- every write, WebSocket, `/healthz`, the admin and the employees' API.

In the table above, `anonymous_reads` requests only these routes, signed out; `cached_reads`
adds signed-in reads (the leaderboard position), which Django answers.
"""

FAST_PATH = FAST_PATH_TEMPLATE.format(
    routes="\n".join(f"- {route}" for _, route in FAST_PATH_ROUTES)
)

OUTRO_TEMPLATE = """\
## Running it

```sh
make bench                                   # the full run
make bench BENCH_ARGS="--duration 60"        # longer scenarios
make bench BENCH_ARGS="--reuse-database --profile --only cached_reads writes"
make bench BENCH_ARGS="--reuse-database --web-concurrency 2"
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
rebuilds each board into Redis, then times positions (rank, percentile and 25 neighbours each
side) of random players and 100-entry pages at random offsets, the Redis round trip alone, the
page through the HTTP endpoint, and the SQL fallback with Redis out of the way.

One run on 2026-11-29 from 23:06 UTC, at commit `6c431dc`, on a quiet two-core machine (load
average 1.1 to 1.2 through the reads): 1,000,001 users and 13.6 million ledger rows (seeded
earlier in 14 minutes), 2,000 positions and 2,000 pages of each kind per board and 500 HTTP
pages. A position answers rank, percentile and 25 neighbours each side, a page 100 entries at
a random offset, both with their public names.

{leaderboard_table}

A read is one Redis round trip, names included: its median is 0.05 to 0.26 ms above the round
trip alone (the Python around it), and every read's p99 is under 1.3 ms (target 5 ms). The
HTTP endpoint called in process, the page cache missed, adds a median 2.2 to 2.9 ms to the
read (middleware, the cache's lookup, lock and store, rendering). An earlier run the same
evening on the machine shared with other work (load average 3.9 to 4.4) had p99s of 4.4 to
6.5 ms, its Redis round trip alone up to 5.7 ms: the tail there was the load's, not the
board's.

Redis keeps about 97 MiB per million players per board (a `day` board holds only that day's
players): the four boards of this run take 311 MiB, four boards of a million players each
about 390 MiB; the names' hash adds about 77 MiB per million players. A full rebuild reads
each batch's scores and public names by a range of user ids along an index: the `all` board
of 984,717 players in 15.9 s (target 60 s). With each batch's names looked up by a list of
10,000 ids, as before, it took 88 s under a load of about 5.

With Redis away, the `all` board counts through the index `user_leaderboard` and the period
boards through the totals table `PeriodPoints` (index `periodpoints_board`); a rank is counted
from the board's ladder plus at most 1/64 of the board. The ladders are counted by the beat
each minute and stored in PostgreSQL, and a read takes its board's one row: counting and
storing the four took 2.3 s in this run, and no read counted one. Twenty reads each: top
pages p50 3.3 to 6.0 ms, p99 under 8 ms; positions at the top, middle and bottom of every
board p50 7.2 to 47 ms, p99 under 95 ms (target 200 ms). Before the ladders were stored, the
first read of a board in each process counted its ladder, 0.25 to 1.34 s under a load of
about 4.

## Smaller benchmarks

Each prints figures and asserts none: `bench/inprocess.py` (CPU and thread hops per request,
the ASGI app called in process), `bench/cache_outage.py` (request time with Redis healthy, hung
and dead), `bench/metrics_middleware.py` and `bench/ratelimit_middleware.py` (what one
middleware adds to a request), `bench/game_queries.py` (leaderboard position at a million
users), `bench/ws_fanout.py` (WebSocket fan-out against a bare `websockets` server) and
`bench/ws_redis_restart.py` (live events after a Redis restart) and `bench/write_cost.py` (CPU
and statements per ranking submission, `ranking_submit` called in process on a copy of the
bench database, with the share spent after the commit).
"""


# One run of bench/leaderboards.py at a million players (see the text above the table).
LEADERBOARD_RUN = [
    ("board", "players", "rebuild", "Redis memory", "per million players",
     "position p50 / p99", "page p50 / p99", "Redis alone p50 / p99: position, page",
     "HTTP page p50 / p99"),
    ("`all`", "984,717", "15.9 s", "95.7 MiB", "97.1 MiB",
     "0.43 / 0.62 ms", "0.72 / 0.99 ms", "0.38 / 0.55 ms, 0.58 / 0.87 ms", "3.53 / 6.31 ms"),
    ("`day`", "246,179", "8.6 s", "23.9 MiB", "97.1 MiB",
     "0.52 / 0.78 ms", "0.56 / 0.83 ms", "0.32 / 0.52 ms, 0.42 / 0.70 ms", "3.46 / 6.26 ms"),
    ("`week`", "984,717", "21.9 s", "95.6 MiB", "97.1 MiB",
     "0.57 / 0.89 ms", "0.74 / 1.16 ms", "0.40 / 0.65 ms, 0.48 / 0.77 ms", "3.04 / 5.24 ms"),
    ("`month`", "984,717", "18.5 s", "95.7 MiB", "97.2 MiB",
     "0.46 / 0.73 ms", "0.77 / 1.21 ms", "0.41 / 0.66 ms, 0.51 / 0.78 ms", "3.01 / 5.66 ms"),
]  # fmt: skip


def _markdown_table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]])


OUTRO = OUTRO_TEMPLATE.format(leaderboard_table=_markdown_table(LEADERBOARD_RUN))


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:g}"


def _optional(value: float | None, spec: str) -> str:
    """A figure older results may lack, "-" then."""
    return "-" if value is None else format(value, spec)


def performance_markdown(result: dict) -> str:
    """The performance reference, every figure taken from one benchmark result."""
    machine, settings, seed = result["machine"], result["settings"], result.get("seed")
    lines = [INTRO, "## Latest run", ""]
    lines.append(
        f"Run {result['started_at']} at commit `{result['commit']}` on {machine['cpu']}, "
        f"{machine['cores']} cores, {machine['memory_gb']} GB, Python {machine['python']}; "
        f"load average {machine['load_average_at_start'][0]} at start, "
        f"{machine['load_average_at_end'][0]} at end. {settings['users']} users, "
        f"{settings['duration_s']} s per scenario. Server: {settings['server']}"
        + (
            f"; REQUEST_THREADS: {settings['request_threads']}."
            if "request_threads" in settings
            else "."
        )
    )
    lines.append("")
    if seed is None:
        # `--reuse-database`: the rows are an earlier seed's and what earlier runs added to it.
        lines.append("On a database seeded by an earlier run (`--reuse-database`).")
    else:
        rows = ", ".join(f"{_number(count)} {table}" for table, count in seed["rows"].items())
        lines.append(f"Seeded in {seed['seconds']} s: {rows}.")
    lines += ["", "| scenario | what the users request |", "|---|---|"]
    for name, row in result["scenarios"].items():
        lines.append(f"| `{name}` | {row['description']} |")
    lines += [
        "",
        "| scenario | offered/s | req/s | p50 ms | p95 ms | p99 ms | errors | x healthz "
        "| x floor | server CPU ms/req | DB conns (max) | RSS MB (max) | load generator cores "
        "| server cores | machine busy cores | Redis CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["scenarios"].items():
        offered = f"{row['offered_rps']:.1f}" if row.get("offered_rps") else "max"
        floor = f"{row['ratio_to_floor']:.2f}" if row.get("ratio_to_floor") else "-"
        cores = [
            _optional(row.get(key), ".2f")
            for key in ("load_generator_cores", "server_cores", "machine_busy_cores")
        ]
        redis_cpu = _optional(row.get("redis_cpu_ms_per_request"), ".3f")
        lines.append(
            f"| `{name}` | {offered} | {row['rps']:.1f} | {row['p50_ms']:.0f} "
            f"| {row['p95_ms']:.0f} | {row['p99_ms']:.0f} | {row['errors']} "
            f"| {row['ratio_to_healthz']:.2f} | {floor} "
            f"| {row['server_cpu_ms_per_request']:.2f} | {row['db_connections_max']} "
            f"| {row['rss_mb_max']:.0f} | {' | '.join(cores)} | {redis_cpu} |"
        )
    server = result["server"]
    if server.get("write_capacity_per_core"):
        lines += [
            "",
            f"Write capacity: {server['write_capacity_per_core']} submissions a second per "
            "core used (`writes` divided by the processes, at most the cores).",
        ]
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
    lines += ["", FAST_PATH, OUTRO]
    return "\n".join(lines)


SOAK_INTRO = """\
## Soak: a community on two instances

`make bench BENCH_ARGS="--soak --users 5000"` (`bench/soak.py`) runs two instances of the
Procfile's `web` command on PostgreSQL and Redis with the real per-IP rate limits
(`bench/soak_settings.py`), and drives the users from load-generator processes of their own
(asyncio clients with httpx and websockets), each user from a loopback address of its own
(127.x.y.z), which the server takes as the client's IP. Each user arrives over the ramp, signs
in once (with the token the seeder gave it, `bench-token-<id>`, rather than the e-mail flow),
opens `/ws/me/` (every third user also `/ws/live/`), then every 10 to 30 s browses (the
catalogue by category, a search, a product, the leaderboard or the home stats) or, one action
in ten, submits a ranking; it pings each socket every 25 s. One user in five leaves once for 5
to 90 s and comes back on the other instance with `last_event_id`.

"Sent" events are what the run can prove was sent: on `/ws/live/`, every id any subscriber saw
(each subscriber must have seen every one between its first and last event) and one
`ranking.submitted` per public submission; on `/ws/me/`, a `points.updated` per submission that
awarded points and an `achievement.unlocked` per unlock the answer named. Latency of an event is
its arrival at the client less its `ts`, live events only (a replayed one is as old as the gap).
Resources are sampled every 2 s once every user has arrived; an instance's CPU and memory are
those of its whole process tree. The load generators share the machine's cores with the
servers, PostgreSQL and Redis, so their event-loop lag is printed with the latencies it inflates.
"""

# Prices are assumptions made on 2026-11-29 for the model, not figures looked up: check the
# providers' current price lists before relying on any of them.
PRICES_ASSUMED_ON = "2026-11-29"
PRICES = {
    "compute_per_vcpu_hour": 0.09,
    "memory_per_gib_hour": 0.01,
    "upstash_free_commands_per_day": 10_000,
    "upstash_per_100k_commands": 0.20,
    "neon_plan_per_month": 19.0,
    "neon_compute_unit_hour": 0.16,
}
HOURS_PER_MONTH = 730


def _objective_label(name: str) -> str:
    return name.replace("_", " ")


def soak_markdown(result: dict, knee: list[dict] | None = None) -> str:
    """The soak's section: the latest run, the knee across user counts, the capacity model."""
    settings, machine, load = result["settings"], result["machine"], result["load"]
    resources = result["resources"]
    lines = [SOAK_INTRO, "### Latest soak", ""]
    lines.append(
        f"Run {result['started_at']} at commit `{result['commit']}` on {machine['cpu']}, "
        f"{machine['cores']} cores; load average {machine['load_average_at_start'][0]} at start, "
        f"{machine['load_average_at_end'][0]} at end. {settings['users']:,} users on "
        f"{settings['instances']} instances for {settings['duration_s']} s "
        f"({settings['ramp_s']} s ramp), {settings['generators']} load-generator processes; "
        f"WEB_CONCURRENCY: {settings['web_concurrency']}; DB_POOL_MAX_SIZE "
        f"{settings['db_pool_max']} per process; Redis: {settings['redis']}. "
        + (
            "The Procfile's worker and beat ran beside the instances, and the Redis leaderboards "
            "were built before the users arrived."
            if "leaderboards" in result.get("warm", {})
            else "No worker ran beside the instances and no Redis leaderboard was built (the run "
            "predates both), so leaderboards and positions were read from the SQL fallback."
        )
    )
    lines += [
        "",
        "| group | kind | req/s | p50 ms | p95 ms | p99 ms | requests | answers |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for group, row in load["http"].items():
        answers = ", ".join(f"{k} {v:,}" for k, v in sorted(row["status"].items())) or "-"
        lines.append(
            f"| {group} | {row['kind']} | {row['per_s']:.1f} | {row['p50_ms']:.0f} "
            f"| {row['p95_ms']:.0f} | {row['p99_ms']:.0f} | {row['count']:,} | {answers} |"
        )
    events, pong, lag = load["events"], load["pong"], load["generator_loop_lag"]
    me, live, sockets = load["me_delivery"], load["live_delivery"], load["sockets"]
    lines += [
        "",
        f"- Events delivered live: {events['count']:,}, p50 {events['p50_ms']} ms, "
        f"p95 {events['p95_ms']} ms, p99 {events['p99_ms']} ms; socket ping to pong p50 "
        f"{pong['p50_ms']} ms, p99 {pong['p99_ms']} ms; the load generators' event-loop lag p50 "
        f"{lag['p50_ms']} ms, p99 {lag['p99_ms']} ms.",
        f"- `/ws/me/`: the submissions made while their user's socket was open sent "
        f"{me['expected']:,} events; {me['received']:,} arrived, counting replays of those "
        f"sent while a user was away ({me['missing']} missing, {me['missing_after_gap']} "
        f"missed across a gap with no id to resume from, {me['duplicates']} duplicates).",
        f"- `/ws/live/`: {live['subscriber_received']:,} of the {live['subscriber_expected']:,} "
        f"events in the subscribers' windows arrived ({live['duplicates']} duplicates); "
        f"{live['public_submissions_seen']:,} of {live['public_submissions']:,} public "
        "submissions were seen as `ranking.submitted`.",
        f"- Sockets: {sockets['connects']:,} connects, "
        f"{sum(sockets['connect_failures'].values())} failed, "
        f"{sum(sockets['drops'].values())} dropped by the server, {sockets['returns']} users "
        f"came back, {sockets['resyncs']} were told to resync.",
    ]
    for i, instance in enumerate(resources.get("instances", []), start=1):
        lines.append(
            f"- Instance {i}: CPU {instance['cpu_cores_mean']} cores on average "
            f"({instance['cpu_cores_max']} at most), RSS at most {instance['rss_mb_max']:.0f} MB, "
            f"at most {instance['open_connections_max']:,} open connections."
        )
    if resources:
        lines.append(
            f"- PostgreSQL: at most {resources['db_connections_max']} connections "
            f"({resources['db_active_max']} active); the database grew "
            f"{resources['database_growth_mb']} MB. Redis: at most "
            f"{resources['redis_memory_mb_max']} MB used, {resources['redis_commands_per_s']:,} "
            "commands a second."
        )
    lines += ["", "| objective | measured | |", "|---|---:|---|"]
    for name, target in result["targets"].items():
        verdict = "met" if target["met"] else "**missed**"
        lines.append(
            f"| {_objective_label(name)} {target['target']} | {target['value']} | {verdict} |"
        )
    if knee:
        lines += ["", knee_markdown(knee)]
    lines += ["", capacity_markdown(knee or [result])]
    return "\n".join(lines)


def knee_markdown(runs: list[dict]) -> str:
    runs = sorted(runs, key=lambda r: r["settings"]["users"])
    lines = [
        "### The knee",
        "",
        "One run per user count (the latest of each, at the commit named; `s` is its length, "
        "against the 10 minutes the soak defaults to); each line is one run, not a median, and "
        "`load avg` says how shared the machine was when it started.",
        "",
        "| users | run | s | load avg | cached p99 | DB read p99 | submit p99 | event p99 "
        "| 5xx | failed connects | lost | server cores | generator cores | client lag p99 "
        "| DB conns | Redis cmd/s | RSS MB max | all met | missed |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
        "|---|---|",
    ]
    for r in runs:
        t, res = r["targets"], r["resources"]
        cores = sum(i["cpu_cores_mean"] for i in res.get("instances", []))
        generator_cores = sum(g["cpu_seconds"] for g in r["load"]["generators"]) / max(
            r["settings"]["duration_s"], 1
        )
        missed = ", ".join(_objective_label(n) for n, v in t.items() if not v["met"]) or "-"
        met = "yes" if all(v["met"] for v in t.values()) else "no"
        lines.append(
            f"| {r['settings']['users']:,} | {r['started_at']} `{r['commit']}` "
            f"| {r['settings']['duration_s']} "
            f"| {r['machine']['load_average_at_start'][0]} "
            f"| {t['cached_reads_p99_ms']['value']} | {t['database_reads_p99_ms']['value']} "
            f"| {t['submissions_p99_ms']['value']} | {t['event_delivery_p99_ms']['value']} "
            f"| {t['http_5xx_or_no_answer']['value']} | {t['socket_connect_failures']['value']} "
            f"| {t['events_lost']['value']} | {cores:.2f} | {generator_cores:.2f} "
            f"| {r['load']['generator_loop_lag']['p99_ms']} | {res.get('db_connections_max')} "
            f"| {res.get('redis_commands_per_s')} | {t['instance_rss_mb_max']['value']} "
            f"| {met} | {missed} |"
        )
    passing = [r["settings"]["users"] for r in runs if all(v["met"] for v in r["targets"].values())]
    lines.append("")
    lines.append(
        f"Largest user count that met every objective: {max(passing):,}."
        if passing
        else "No user count met every objective."
    )
    return "\n".join(lines)


def capacity_base(runs: list[dict]) -> tuple[dict, str]:
    """The run the model scales from: the largest that met every objective, else the smallest,
    the least overloaded (an overloaded run serves less than its users ask for)."""
    passing = [r for r in runs if all(v["met"] for v in r["targets"].values())]
    if passing:
        return max(
            passing, key=lambda r: r["settings"]["users"]
        ), "the largest that met every objective"
    return min(runs, key=lambda r: r["settings"]["users"]), (
        "the smallest run; none met every objective, so this is a floor on the cost"
    )


def capacity_markdown(runs: list[dict]) -> str:
    """Per 1,000 concurrent users, from the measured run, and what it would cost a month."""
    result, why = capacity_base(runs)
    users = result["settings"]["users"]
    resources, load = result["resources"], result["load"]
    per_k = 1000 / users
    instances = resources.get("instances", [])
    cores = sum(i["cpu_cores_mean"] for i in instances) * per_k
    memory_mb = sum(i["rss_mb_max"] for i in instances)
    commands_per_s = resources.get("redis_commands_per_s", 0)
    commands_day = commands_per_s * per_k * 86_400
    user_hour_commands = commands_per_s * 3600 / users
    free = PRICES["upstash_free_commands_per_day"]
    passing = [r["settings"]["users"] for r in runs if all(v["met"] for v in r["targets"].values())]
    per_instance = max(passing) / result["settings"]["instances"] if passing else None
    submissions_per_s = load["http"]["submit"]["per_s"]
    growth_mb = resources.get("database_growth_mb", 0)
    seconds = result["settings"]["duration_s"]
    lines = [
        "### Capacity and cost model",
        "",
        f"From the soak at {users:,} users on {len(instances)} instances ({why}; run "
        f"{result['started_at']}), scaled linearly per 1,000 concurrent users.",
        "",
        "| per 1,000 concurrent users | measured |",
        "|---|---:|",
        f"| server CPU (cores, mean) | {cores:.2f} |",
        f"| server memory (MB; the instances' peak RSS at {users:,} users, so mostly each "
        f"process's fixed cost) | {memory_mb * per_k:,.0f} |",
        f"| instances (at the knee's {per_instance or 0:,.0f} users per instance) | "
        + (f"{1000 / per_instance:.2f} |" if per_instance else "none met every objective |"),
        f"| Redis commands a second | {commands_per_s * per_k:,.1f} |",
        f"| Redis commands a day, if held around the clock | {commands_day:,.0f} |",
        f"| Redis memory (MB, peak) | {resources.get('redis_memory_mb_max', 0) * per_k:,.1f} |",
        "| PostgreSQL connections (peak; the pools hold them, so they follow the instances, "
        f"not the users) | {resources.get('db_connections_max', 0) * per_k:.1f} |",
        f"| ranking submissions a second | {submissions_per_s * per_k:.2f} |",
        f"| database growth (MB an hour) | {growth_mb * per_k * 3600 / seconds:,.1f} |",
        "",
        f"One user-hour costs {user_hour_commands:,.0f} Redis commands (rate-limit counters, cache "
        "reads, the event streams and their fan-out, presence). Upstash's free tier "
        f"({free:,} commands a day) therefore covers {free / user_hour_commands:,.1f} user-hours "
        f"a day, {free / user_hour_commands / 24:,.2f} users kept online around the clock; beyond "
        "that every command is paid.",
        "",
        f"Monthly cost, held around the clock (prices assumed on {PRICES_ASSUMED_ON}, not looked "
        "up: "
        f"compute ${PRICES['compute_per_vcpu_hour']}/vCPU-hour and "
        f"${PRICES['memory_per_gib_hour']}/GiB-hour, Upstash pay-as-you-go "
        f"${PRICES['upstash_per_100k_commands']} per 100,000 commands, Neon "
        f"${PRICES['neon_plan_per_month']:.0f}/month plan plus "
        f"${PRICES['neon_compute_unit_hour']}/compute-unit-hour for one compute unit):",
        "",
        "| concurrent users | compute (mean cores, peak memory, no headroom) | Upstash | Neon "
        "| total |",
        "|---:|---:|---:|---:|---:|",
    ]
    for concurrent in (1000, 2500, 5000):
        scale = concurrent / 1000
        compute = (
            cores * scale * PRICES["compute_per_vcpu_hour"]
            + memory_mb * per_k * scale / 1024 * PRICES["memory_per_gib_hour"]
        ) * HOURS_PER_MONTH
        redis_cost = (
            max(0.0, commands_day * scale - free)
            * 30
            / 100_000
            * PRICES["upstash_per_100k_commands"]
        )
        neon = PRICES["neon_plan_per_month"] + PRICES["neon_compute_unit_hour"] * HOURS_PER_MONTH
        total = compute + redis_cost + neon
        lines.append(
            f"| {concurrent:,} | ${compute:,.0f} | ${redis_cost:,.0f} | ${neon:,.0f} "
            f"| ${total:,.0f} |"
        )
    lines += ["", savings_markdown(result)]
    return "\n".join(lines)


def savings_markdown(result: dict) -> str:
    load = result["load"]
    lines = ["What the cache and the coalescing saved in this run:", ""]
    hits = misses = 0
    for sample in result.get("server_cache", []):
        for counts in sample.get("counts", {}).values():
            hits += counts.get("hits", 0)
            misses += counts.get("misses", 0)
    if hits + misses:
        lines.append(
            f"- Cache: {hits / (hits + misses):.1%} of lookups hit ({hits:,.0f} hits, "
            f"{misses:,.0f} misses, one server process per instance counted since its start): "
            "each hit is a database query set not run."
        )
    live = load["live_delivery"]
    points = load["me_delivery"]["received_by_type"].get("points.updated", 0)
    subscribers = load.get("live_users", 0)
    updates = live["received_by_type"].get("leaderboard.updated", 0)
    if subscribers and points:
        lines.append(
            f"- Coalescing: `leaderboard.updated` reached the live subscribers {updates:,} times; "
            f"without it each of the {points:,} point changes would have gone to each of the "
            f"{subscribers:,} subscribers, {points * subscribers:,} frames."
        )
    lines.append(
        "- The fast path (cached GETs answered before Django) is not switched off by the soak: "
        "its saving shows in the `make bench` scenarios above, not here."
    )
    return "\n".join(lines)


def soak_results(results_dir: Path = LATEST.parent) -> tuple[dict | None, list[dict]]:
    """The latest soak and the latest run at each user count, if any were run."""
    latest = results_dir / "soak-latest.json"
    soak = json.loads(latest.read_text()) if latest.exists() else None
    knee = [json.loads(path.read_text()) for path in sorted(results_dir.glob("soak-*u.json"))]
    return soak, knee


def performance_doc_write(
    *, result_path: Path = LATEST, doc_path: Path = DOC, soak_dir: Path | None = None
) -> Path:
    text = performance_markdown(json.loads(result_path.read_text()))
    soak, knee = soak_results(soak_dir or result_path.parent)
    if soak is not None:
        text += "\n" + soak_markdown(soak, knee) + "\n"
    doc_path.write_text(text)
    return doc_path


if __name__ == "__main__":
    written = performance_doc_write(result_path=Path(sys.argv[1]) if len(sys.argv) > 1 else LATEST)
    print(f"wrote {written}")
