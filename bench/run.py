"""`make bench`: a fresh database, seeded; Rankly's server; Locust per scenario; one table.

    python -m bench.run [--smoke] [--duration 30] [--users 32] [--web-concurrency 1] [--profile]
    python -m bench.run --soak [--users 5000] ...   (bench/soak.py: many users, two instances)

Steps: drop and create the bench database, migrate, seed it set-based (bench/seed.py), give
the run a cache key prefix of its own (a cold cache, no flush of a shared Redis), start Rankly
with the Procfile's web command and WEB_CONCURRENCY processes (bench/settings.py: development
with DEBUG off and the rate limits raised; bench/asgi.py: plus the bare-ASGI floor) and its
worker and beat, build the leaderboards and warm the caches, then run Locust headless in its
own process for each scenario while sampling the server's memory and its database
connections; the run's keys are deleted after.
Prints one table and writes it as JSON under bench/results/.
"""

import argparse
import csv
import json
import os
import platform
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

from bench import scenarios
from bench.profile import render as render_profile
from bench.profile import summarise as summarise_profile
from bench.report import performance_doc_write
from bench.scenarios import Catalog
from bench.seed import FULL, SMOKE, STAFF_TOKEN, Scale, seed

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rankly_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"


@dataclass(frozen=True)
class Scenario:
    name: str
    user_class: str
    description: str


SCENARIOS = [
    Scenario("floor", "Floor", "GET /bench/floor: answered before Django, the server's own cost"),
    Scenario(
        "floor_redis",
        "FloorRedis",
        "GET /bench/floor-redis: the floor after one Redis GET on the event loop's connections, "
        "the least an answer read from Redis costs",
    ),
    Scenario("healthz", "Healthz", "GET /healthz: a Django view through every middleware"),
    Scenario(
        "anonymous_reads",
        "AnonymousReads",
        "signed out: home stats, leaderboards, achievements, categories, product list and "
        "detail, ranking stats (warm caches)",
    ),
    Scenario(
        "cached_reads",
        "CachedReads",
        "home stats, leaderboards, position, achievements, "
        "product list and detail, ranking stats (warm caches)",
    ),
    Scenario("mix", "Mix", "70% browse, 20% search, 10% signed-in ranking submissions"),
    Scenario("writes", "Writes", "POST /api/rankings/ by signed-in users, each its own token"),
    Scenario(
        "writes_paced",
        "WritesPaced",
        "the same users, each submitting once every users/16 s: a steady 16/s offered",
    ),
    Scenario(
        "writes_80",
        "WritesPaced",
        "the same users, paced to offer 80 % of the write capacity measured by `writes`",
    ),
]

PACED_RATE = 16.0
CAPACITY_SHARE = 0.8

TARGETS = {
    "cached_reads_ratio": 1.0,
    "anonymous_reads_ratio": 2.0,
    "anonymous_reads_floor_ratio": 0.8,
    "anonymous_reads_cpu_ms": 0.4,
    "writes_paced_p99_ms": 100,
    "writes_80_p99_ms": 300,
    "mix_cache_hit_rate": 0.95,
    "peak_memory_mb": 250,
}


@dataclass
class Samples:
    rss_mb: list[float] = field(default_factory=list)
    db_connections: list[int] = field(default_factory=list)
    db_active: list[int] = field(default_factory=list)


def echo(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")


def maintenance(database_url: str, *statements: str) -> None:
    """Run statements on the server's maintenance database (outside any transaction)."""
    url = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def recreate_database(database_url: str) -> None:
    """Drop and create the bench database, through the server's maintenance database."""
    name = database_name(database_url)
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise SystemExit(f"refusing an unusual database name: {name!r}")
    maintenance(
        database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )


def server_env(
    *, database_url: str, redis_url: str, metrics_token: str, cache_prefix: str
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REPLIT_DEPLOYMENT", "UPSTASH_REDIS_URL_PROD", "SENTRY_DSN"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_DEBUG="0",
        DATABASE_URL=database_url,
        UPSTASH_REDIS_URL=redis_url,
        METRICS_TOKEN=metrics_token,
        # A key prefix of the run's own: a cold cache without flushing a shared Redis database.
        CACHE_KEY_PREFIX=cache_prefix,
        # The run's job queues under the same prefix, dropped with its keys.
        BROKER_KEY_PREFIX=f"{cache_prefix}:broker:",
    )
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def http_get(
    url: str, *, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def procfile_command(name: str) -> list[str]:
    """The Procfile's `name` process as words, run with this Python."""
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith(f"{name}:")
    )
    words = line.removeprefix(f"{name}:").split()
    if words[0] in {"daphne", "celery"}:
        return [sys.executable, "-m", *words]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    raise SystemExit(f"the Procfile's {name} process is not daphne, celery or python: {line}")


def web_command(port: int) -> list[str]:
    """The Procfile's web process on loopback, so the bench serves the way production does;
    with the bench's floor in front of the application."""
    replaced = {
        "$PORT": str(port),
        "0.0.0.0": "127.0.0.1",
        "config.asgi:application": "bench.asgi:application",
    }
    return [replaced.get(word, word) for word in procfile_command("web")]


@contextmanager
def background_jobs(*, env: dict[str, str], workdir: Path) -> Iterator[dict[str, subprocess.Popen]]:
    """The Procfile's `worker` and `beat` beside the server, as production runs them: the jobs
    the server queues (a leaderboard rebuild, e-mail) run, and the periodic housekeeping with
    them. They start in `workdir`, where beat keeps its schedule file."""
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name in ("worker", "beat"):
            with open(workdir / f"{name}.log", "w") as log:
                processes[name] = subprocess.Popen(
                    procfile_command(name),
                    cwd=workdir,
                    env={**env, "PYTHONPATH": str(ROOT)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        yield processes
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def daphne(*, env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen]:
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            web_command(port),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"daphne exited with {process.returncode}; see {log_path}")
            try:
                http_get(f"http://127.0.0.1:{port}{scenarios.HEALTHZ}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"daphne did not answer within 60 s; see {log_path}") from None
                time.sleep(0.2)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def cache_keys_dropped(*, redis_url: str, prefix: str) -> Iterator[None]:
    """Delete the run's cache keys afterwards, leaving every other key of the database alone."""
    try:
        yield
    finally:
        client = redis.Redis.from_url(redis_url)
        batch = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)


def jobs_queued(*, redis_url: str, prefix: str) -> int:
    """Jobs waiting in the run's Celery queues (the Procfile worker's `--queues`)."""
    worker = procfile_command("worker")
    queues = worker[worker.index("--queues") + 1].split(",")
    client = redis.Redis.from_url(redis_url)
    return sum(int(client.llen(f"{prefix}{queue}")) for queue in queues)


def proc_status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def server_pids(pid: int) -> list[int]:
    """The processes that serve: the server itself, or the workers its supervisor started."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children] or [pid]


def cpu_seconds(pid: int) -> float:
    """CPU time the server's processes have used (user + system): a cost per request that,
    unlike throughput, barely moves when other programs share the cores."""
    total = 0.0
    for process in {pid, *server_pids(pid)}:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent on anything but idling, since boot."""
    fields = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def redis_cpu_seconds(redis_url: str) -> float | None:
    """CPU time the Redis server has used, as it reports it (every client's, on a shared one)."""
    try:
        info = redis.Redis.from_url(redis_url, socket_timeout=2).info("cpu")
    except redis.RedisError:
        return None
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def process_memory_mb(pid: int, key: str) -> float:
    """The largest figure among the serving processes (memory is a per-process target)."""
    return max(proc_status_mb(process, key) for process in server_pids(pid))


@contextmanager
def sampling(*, pid: int, database_url: str, every: float = 0.25) -> Iterator[Samples]:
    """Sample the server's resident memory and the bench database's connections meanwhile."""
    samples = Samples()
    stop = threading.Event()
    name = database_name(database_url)

    def sample() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not stop.is_set():
                total, active = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE state = 'active') "
                    "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                ).fetchone()
                samples.db_connections.append(total)
                samples.db_active.append(active)
                samples.rss_mb.append(process_memory_mb(pid, "VmRSS"))
                stop.wait(every)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=5)


def leaderboards_build(*, env: dict[str, str]) -> dict[str, int]:
    """`manage.py rebuild_leaderboards`: every kept board in Redis; the players per window."""
    rebuilt = manage("rebuild_leaderboards", env=env)
    if rebuilt.returncode != 0:
        raise SystemExit(f"rebuild_leaderboards failed:\n{rebuilt.stderr}")
    # "all: 98473 players in 2.4 s", a line per window.
    leaderboards = {
        line.split(":")[0]: int(line.split()[1])
        for line in rebuilt.stdout.splitlines()
        if re.match(r"\w+: \d+ players", line)
    }
    echo(f"  rebuilt the leaderboards: {leaderboards}")
    return leaderboards


def warm(*, base: str, catalog: Catalog, users: int, env: dict[str, str]) -> dict:
    """Build the Redis leaderboards (`manage.py rebuild_leaderboards`, as after a deploy to an
    empty Redis), fill the caches (`manage.py warm_cache`), then read every path once."""
    started = time.perf_counter()
    leaderboards = leaderboards_build(env=env)
    command = manage("warm_cache", env=env)
    warm_cache = "ran" if command.returncode == 0 else "unavailable or failed"
    if command.returncode != 0:
        echo(f"  manage.py warm_cache: {command.stderr.strip().splitlines()[-1:]}")
    requests = [(path, None) for path in catalog.read_paths()]
    requests += [
        (scenarios.POSITION, user_id)
        for user_id in range(1, min(users, catalog.scale.token_users) + 1)
    ]

    def fetch(item: tuple[str, int | None]) -> int:
        path, user_id = item
        headers = scenarios.token_header(user_id) if user_id else None
        return http_get(base + path, headers=headers, timeout=30)[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(fetch, requests))
    failed = sum(1 for status in statuses if status >= 400)
    seconds = round(time.perf_counter() - started, 1)
    echo(f"  warmed {len(requests)} paths in {seconds} s ({failed} answered >= 400)")
    return {
        "leaderboards": leaderboards,
        "warm_cache_command": warm_cache,
        "paths": len(requests),
        "failed": failed,
        "seconds": seconds,
    }


PROM_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
PROM_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def prometheus_cache_counts(text: str) -> dict[str, dict[str, float]]:
    """Hits and misses per cache type from Prometheus text, whatever the counters are named:
    a sample about a cache with a type label and either a result label or hit/miss in its name.
    """
    counts: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = PROM_LINE.match(line)
        if not match or "cache" not in match.group(1) or match.group(1).endswith("_created"):
            continue
        name, value = match.group(1), float(match.group(3))
        labels = dict(PROM_LABEL.findall(match.group(2) or ""))
        cache_type = labels.get("type") or labels.get("cache_type") or labels.get("cache")
        result = labels.get("result", "")
        if not result:
            result = "hit" if "hit" in name else "miss" if "miss" in name else ""
        if cache_type and result.startswith(("hit", "miss")):
            kind = "hits" if result.startswith("hit") else "misses"
            counts.setdefault(cache_type, {"hits": 0, "misses": 0})[kind] += value
    return counts


def cache_counts(*, base: str, metrics_token: str) -> tuple[str, dict[str, dict[str, float]]]:
    """Hits and misses per cache type from /metrics, else from the admin cache stats API."""
    status, body = http_get(f"{base}/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    if status == 200:
        counts = prometheus_cache_counts(body.decode())
        if counts:
            return "/metrics", counts
    status, body = http_get(
        f"{base}/api/admin/cache/stats/", headers={"Authorization": f"Token {STAFF_TOKEN}"}
    )
    if status == 200:
        data = json.loads(body)
        data = data.get("types", data) if isinstance(data, dict) else {}
        counts = {
            cache_type: {"hits": value["hits"], "misses": value["misses"]}
            for cache_type, value in data.items()
            if isinstance(value, dict) and {"hits", "misses"} <= value.keys()
        }
        if counts:
            return "/api/admin/cache/stats/", counts
    return "unavailable", {}


def hit_rates(before: dict, after: dict) -> dict[str, dict]:
    rates = {}
    for cache_type in sorted(set(before) | set(after)):
        hits = after.get(cache_type, {}).get("hits", 0) - before.get(cache_type, {}).get("hits", 0)
        misses = after.get(cache_type, {}).get("misses", 0) - before.get(cache_type, {}).get(
            "misses", 0
        )
        if hits + misses:
            rates[cache_type] = {
                "hits": int(hits),
                "misses": int(misses),
                "hit_rate": round(hits / (hits + misses), 4),
            }
    total_hits = sum(rate["hits"] for rate in rates.values())
    total = total_hits + sum(rate["misses"] for rate in rates.values())
    if total:
        rates["all"] = {
            "hits": total_hits,
            "misses": total - total_hits,
            "hit_rate": round(total_hits / total, 4),
        }
    return rates


def run_locust(
    *,
    scenario: Scenario,
    base: str,
    users: int,
    duration: int,
    scale: Scale,
    workdir: Path,
    pacing_seconds: float | None = None,
) -> dict:
    prefix = workdir / scenario.name
    env = {**os.environ, "BENCH_SCALE": json.dumps(asdict(scale)), "PYTHONPATH": str(ROOT)}
    if pacing_seconds is not None:
        env["BENCH_PACING_SECONDS"] = str(pacing_seconds)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--host",
        base,
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{duration}s",
        "--reset-stats",
        "--only-summary",
        "--stop-timeout",
        "10",
        "--csv",
        str(prefix),
        "--loglevel",
        "WARNING",
        scenario.user_class,
    ]
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=duration + 120
    )
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_generator_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    stats_path = Path(f"{prefix}_stats.csv")
    if not stats_path.exists():
        raise SystemExit(f"locust wrote no stats for {scenario.name}:\n{completed.stderr[-3000:]}")
    with open(stats_path) as handle:
        rows = list(csv.DictReader(handle))
    with open(f"{prefix}_failures.csv") as handle:
        failures = [
            {
                "name": f"{row['Method']} {row['Name']}",
                "error": row["Error"][:300],
                "count": int(row["Occurrences"]),
            }
            for row in csv.DictReader(handle)
        ]

    def ms(value: str) -> float:
        # Locust writes N/A for percentiles of an endpoint that saw no request.
        return 0.0 if value == "N/A" else float(value)

    def figures(row: dict) -> dict:
        return {
            "requests": int(row["Request Count"]),
            "errors": int(row["Failure Count"]),
            "rps": round(float(row["Requests/s"]), 1),
            "p50_ms": ms(row["50%"]),
            "p95_ms": ms(row["95%"]),
            "p99_ms": ms(row["99%"]),
            "avg_ms": round(float(row["Average Response Time"]), 1),
        }

    total = next(row for row in rows if row["Name"] == "Aggregated")
    requests = max(int(total["Request Count"]), 1)
    return {
        **figures(total),
        # Locust is one process on the same cores: near 1 core, it, not the server, sets the pace.
        "load_generator_cores": round(load_generator_cpu / duration, 2),
        "load_generator_cpu_ms_per_request": round(1000 * load_generator_cpu / requests, 2),
        "endpoints": {
            f"{row['Type']} {row['Name']}": figures(row)
            for row in rows
            if row["Name"] != "Aggregated"
        },
        "failures": failures,
    }


def pacing_seconds(scenario: Scenario, *, users: int, results: dict, duration: int) -> float | None:
    """Each paced user's period: 16 a second in all, or 80 % of the capacity `writes` found;
    at most half the scenario, so that every user submits (the offered rate says so)."""
    if scenario.name == "writes_paced":
        period = users / PACED_RATE
    elif scenario.name == "writes_80":
        capacity = results["writes"]["rps"]
        if not capacity:
            raise SystemExit("writes measured no capacity to pace writes_80 by")
        period = users / (CAPACITY_SHARE * capacity)
    else:
        return None
    return min(period, duration / 2)


@contextmanager
def profiling(*, pid: int, path: Path | None, duration: int) -> Iterator[None]:
    """py-spy samples the server for the scenario's duration, as collapsed stacks; only the
    thread holding the GIL, so the profile shows where the process's one core of Python goes."""
    if path is None:
        yield
        return
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--duration",
            str(duration),
            "--format",
            "raw",
            "--output",
            str(path),
            "--nonblocking",
            "--gil",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        try:
            spy.wait(timeout=duration + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_commit() -> str:
    completed = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return completed.stdout.strip() or "unknown"


def summarise(result: dict) -> str:
    lines = []
    header = (
        f"{'scenario':<15} {'users':>5} {'offered/s':>9} {'req/s':>8} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'x healthz':>9} {'x floor':>7} "
        f"{'cpu ms/req':>10} {'db conns':>8} {'rss MB':>7} {'gen cores':>9} "
        f"{'srv cores':>9} {'busy cores':>10} {'redis ms/req':>12}"
    )
    lines += [header, "-" * len(header)]
    for name, row in result["scenarios"].items():
        offered = f"{row['offered_rps']:.1f}" if row.get("offered_rps") else "max"
        lines.append(
            f"{name:<15} {row['users']:>5} {offered:>9} {row['rps']:>8.1f} "
            f"{row['p50_ms']:>7.0f} {row['p95_ms']:>7.0f} {row['p99_ms']:>7.0f} "
            f"{row['errors']:>6} {row['ratio_to_healthz']:>9.2f} {row['ratio_to_floor']:>7.2f} "
            f"{row['server_cpu_ms_per_request']:>10.2f} {row['db_connections_max']:>8} "
            f"{row['rss_mb_max']:>7.0f} {row.get('load_generator_cores', 0):>9.2f} "
            f"{row.get('server_cores', 0):>9.2f} {row.get('machine_busy_cores', 0):>10.2f} "
            f"{row.get('redis_cpu_ms_per_request') or 0:>12.3f}"
        )
    lines.append("")
    lines.append(
        "gen cores: CPU the load generator (one Locust process) used over the scenario; near "
        "1.0 it, not the server, limits req/s, and the ratios understate the server"
    )
    lines.append(
        "srv cores: the server's CPU over the same time; busy cores: every program's on the "
        f"machine ({os.cpu_count()} cores), near which the cores, not the server, set the pace; "
        "redis ms/req: the Redis server's CPU per request (every client's, if it is shared)"
    )
    server = result["server"]
    lines.append(f"server: {server['processes']} process(es) (WEB_CONCURRENCY)")
    if server.get("write_capacity_per_core"):
        lines.append(
            f"write capacity: {server['write_capacity_per_core']} submissions/s per core used"
        )
    cache = result["cache_during_mix"]
    lines.append(f"cache hit rate during the mix (source: {cache['source']}):")
    for cache_type, rate in cache["rates"].items():
        lines.append(
            f"  {cache_type:<26} {rate['hit_rate']:>7.1%}  "
            f"({rate['hits']} hits, {rate['misses']} misses)"
        )
    if not cache["rates"]:
        lines.append("  no cache counters available from the server")
    lines.append(f"server peak memory (VmHWM): {result['server']['peak_memory_mb']:.0f} MB")
    machine = result["machine"]
    start, end = machine["load_average_at_start"][0], machine["load_average_at_end"][0]
    lines.append(
        f"machine: {machine['cpu']}, {machine['cores']} cores, "
        f"load average {start} at start, {end} at end"
    )
    lines.append("")
    lines.append("targets:")
    for name, target in result["targets"].items():
        mark = "met" if target["met"] else "MISSED"
        lines.append(f"  {name:<22} {target['value']!s:>10} (target {target['target']}): {mark}")
    return "\n".join(lines)


def evaluate(result: dict) -> dict:
    scenarios_ = result["scenarios"]
    rates = result["cache_during_mix"]["rates"]
    checks = {}
    if "cached_reads" in scenarios_:
        checks["cached_reads_ratio"] = (scenarios_["cached_reads"]["ratio_to_healthz"], ">=")
    if "anonymous_reads" in scenarios_:
        anonymous = scenarios_["anonymous_reads"]
        checks["anonymous_reads_ratio"] = (anonymous["ratio_to_healthz"], ">=")
        if anonymous.get("ratio_to_floor"):
            checks["anonymous_reads_floor_ratio"] = (anonymous["ratio_to_floor"], ">=")
        checks["anonymous_reads_cpu_ms"] = (anonymous["server_cpu_ms_per_request"], "<=")
    for name in ("writes_paced", "writes_80"):
        if name in scenarios_:
            writes = scenarios_[name]
            checks[f"{name}_p99_ms"] = (writes["p99_ms"] if not writes["errors"] else None, "<")
    if "all" in rates:
        checks["mix_cache_hit_rate"] = (rates["all"]["hit_rate"], ">=")
    checks["peak_memory_mb"] = (round(result["server"]["peak_memory_mb"], 1), "<")
    compare = {">=": float.__ge__, "<=": float.__le__, "<": float.__lt__}
    out = {}
    for name, (value, op) in checks.items():
        target = TARGETS[name]
        met = value is not None and compare[op](float(value), float(target))
        out[name] = {"value": value, "target": f"{op} {target}", "met": met}
    return out


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if "--soak" in argv:
        from bench import soak

        return soak.main([arg for arg in argv if arg != "--soak"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, 3 s per scenario")
    parser.add_argument("--duration", type=int, help="seconds per scenario (30; smoke 3)")
    parser.add_argument("--users", type=int, default=32, help="concurrent Locust users")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--reuse-database",
        action="store_true",
        help="skip recreate, migrate and seed (the database must hold a seed)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server during each scenario run"
    )
    parser.add_argument("--only", nargs="*", choices=[s.name for s in SCENARIOS])
    parser.add_argument(
        "--web-concurrency",
        type=int,
        default=1,
        help="server processes behind the port (WEB_CONCURRENCY); 1 by default, so that a "
        "figure is one process's",
    )
    parser.add_argument(
        "--request-threads",
        type=int,
        default=None,
        help="REQUEST_THREADS of the server: requests running Django at once per process "
        "(0: no limit); the settings' default when not given",
    )
    args = parser.parse_args(argv)
    scale = SMOKE if args.smoke else FULL
    duration = args.duration or (3 if args.smoke else 30)
    selected = [s for s in SCENARIOS if not args.only or s.name in args.only]
    if "writes_80" in {s.name for s in selected} and "writes" not in {s.name for s in selected}:
        parser.error("writes_80 paces to the capacity that writes measures: select both")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = args.results_dir / f"run-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_token = secrets.token_urlsafe(16)
    cache_prefix = f"rankly-bench-{stamp}"
    env = server_env(
        database_url=args.database_url,
        redis_url=args.redis_url,
        metrics_token=metrics_token,
        cache_prefix=cache_prefix,
    )
    env["WEB_CONCURRENCY"] = str(args.web_concurrency)
    if args.request_threads is not None:
        env["REQUEST_THREADS"] = str(args.request_threads)
    result: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(),
        "settings": {
            "profiled": args.profile,
            "users": args.users,
            "duration_s": duration,
            "smoke": args.smoke,
            "web_concurrency": args.web_concurrency,
            "request_threads": env.get("REQUEST_THREADS", "the settings' default"),
            "server": f"{args.web_concurrency} daphne process(es), bench.settings (development, "
            "DEBUG off, rate limits raised to 10^9/min but still counted in Redis), "
            "PostgreSQL + Redis",
        },
        "scale": asdict(scale),
    }
    echo(
        f"bench: {'smoke' if args.smoke else 'full'} scale {asdict(scale)}, "
        f"{args.users} users x {duration} s per scenario"
    )

    if not args.reuse_database:
        started = time.perf_counter()
        recreate_database(args.database_url)
        migrated = manage("migrate", "--noinput", "-v0", env=env)
        if migrated.returncode:
            raise SystemExit(f"migrate failed:\n{migrated.stderr}")
        result["migrate_seconds"] = round(time.perf_counter() - started, 1)
        echo(
            f"  created and migrated {database_name(args.database_url)} in "
            f"{result['migrate_seconds']} s"
        )
        result["seed"] = seed(database_url=args.database_url, scale=scale, echo=echo)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    catalog = Catalog(scale)
    result["scenarios"] = {}
    with (
        cache_keys_dropped(redis_url=args.redis_url, prefix=cache_prefix),
        daphne(env=env, port=port, log_path=workdir / "daphne.log") as server,
        background_jobs(env=env, workdir=workdir) as jobs,
    ):
        echo(f"  server pid {server.pid} on {base}, {args.web_concurrency} process(es)")
        result["warm"] = warm(base=base, catalog=catalog, users=args.users, env=env)
        cache_before: dict = {}
        cache_source, cache_after = "not measured", {}
        for scenario in selected:
            if scenario.name == "mix":
                cache_source, cache_before = cache_counts(base=base, metrics_token=metrics_token)
            spy = workdir / f"profile-{scenario.name}.txt" if args.profile else None
            pacing = pacing_seconds(
                scenario, users=args.users, results=result["scenarios"], duration=duration
            )
            cpu_before = cpu_seconds(server.pid)
            busy_before, redis_before = machine_busy_seconds(), redis_cpu_seconds(args.redis_url)
            started = time.monotonic()
            with (
                sampling(pid=server.pid, database_url=args.database_url) as samples,
                profiling(pid=server_pids(server.pid)[0], path=spy, duration=duration),
            ):
                stats = run_locust(
                    scenario=scenario,
                    base=base,
                    users=args.users,
                    duration=duration,
                    scale=scale,
                    workdir=workdir,
                    pacing_seconds=pacing,
                )
            if scenario.name == "mix":
                cache_source, cache_after = cache_counts(base=base, metrics_token=metrics_token)
            if spy is not None and spy.exists():
                result.setdefault("profiles", {})[scenario.name] = summarise_profile(spy)
            cpu_used = cpu_seconds(server.pid) - cpu_before
            elapsed = time.monotonic() - started
            busy = machine_busy_seconds() - busy_before
            redis_after = redis_cpu_seconds(args.redis_url)
            redis_used = (
                redis_after - redis_before
                if redis_after is not None and redis_before is not None
                else None
            )
            requests = max(stats["requests"], 1)
            stats.update(
                description=scenario.description,
                offered_rps=round(args.users / pacing, 1) if pacing else None,
                server_cpu_ms_per_request=round(1000 * cpu_used / requests, 2),
                # Cores in use while Locust ran (its start and stop included): the server's, and
                # the whole machine's (near its core count, the cores, not the server, were short).
                server_cores=round(cpu_used / elapsed, 2),
                machine_busy_cores=round(busy / elapsed, 2),
                redis_cpu_ms_per_request=(
                    round(1000 * redis_used / requests, 3) if redis_used is not None else None
                ),
                users=args.users,
                db_connections_max=max(samples.db_connections, default=0),
                db_connections_median=statistics.median(samples.db_connections or [0]),
                db_active_max=max(samples.db_active, default=0),
                rss_mb_max=round(max(samples.rss_mb, default=0), 1),
            )
            result["scenarios"][scenario.name] = stats
            echo(
                f"  {scenario.name}: {stats['rps']} req/s, p99 {stats['p99_ms']} ms, "
                f"{stats['errors']} errors of {stats['requests']}"
            )
            for failure in stats["failures"][:5]:
                echo(f"    {failure['count']} x {failure['name']}: {failure['error']}")
        # Jobs queued and not taken by the worker: 0 unless it fell behind or died.
        result["background_jobs_running"] = [
            name for name, process in jobs.items() if process.poll() is None
        ]
        result["jobs_left_queued"] = jobs_queued(
            redis_url=args.redis_url, prefix=env["BROKER_KEY_PREFIX"]
        )
        result["server"] = {
            "processes": args.web_concurrency,
            "peak_memory_mb": round(process_memory_mb(server.pid, "VmHWM"), 1),
        }
    if "writes" in result["scenarios"]:
        cores = min(args.web_concurrency, os.cpu_count() or 1)
        result["server"]["write_capacity_per_core"] = round(
            result["scenarios"]["writes"]["rps"] / cores, 1
        )
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    for baseline_name in ("healthz", "floor"):
        baseline = result["scenarios"].get(baseline_name, {}).get("rps") or None
        for stats in result["scenarios"].values():
            stats[f"ratio_to_{baseline_name}"] = (
                round(stats["rps"] / baseline, 2) if baseline else 0.0
            )
    result["cache_during_mix"] = {
        "source": cache_source,
        "rates": hit_rates(cache_before, cache_after),
    }
    result["targets"] = evaluate(result)
    table = summarise(result)
    result["table"] = table.splitlines()
    echo("")
    echo(table)
    for name, profile in result.get("profiles", {}).items():
        echo(f"\nwhere the server's Python time went during {name}:")
        echo(render_profile(profile))
    path = args.results_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    if not args.smoke and len(selected) == len(SCENARIOS):
        # A profiled run is slowed by the profiler: its figures are kept apart from the latest.
        latest = "profile-latest.json" if args.profile else "latest.json"
        (args.results_dir / latest).write_text(json.dumps(result, indent=2) + "\n")
        if not args.profile and args.results_dir == RESULTS_DIR:
            echo(f"wrote {performance_doc_write(result_path=RESULTS_DIR / latest)}")
    echo(f"\nwrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return result


if __name__ == "__main__":
    main()
