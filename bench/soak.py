"""`make bench BENCH_ARGS="--soak --users 5000"`: a community of users against two instances.

    python -m bench.run --soak [--users 5000] [--duration 600] [--ramp 120] [--instances 2]
                               [--generators 2] [--private-redis] [--smoke]

Steps: drop, migrate and seed the bench database (bench/seed.py, with a token for every soak
user), start `--instances` copies of the Procfile's `web` process on PostgreSQL and Redis with
the real per-IP rate limits (bench/soak_settings.py), warm the caches, then run the users in
`--generators` load-generator processes of their own (asyncio, httpx and websockets).

Each user arrives over the ramp from a loopback address of its own (127.x.y.z, which the server
takes as the client IP), signs in once (with the seeded token `bench-token-<id>` rather than
the e-mail flow, whose codes are limited to 10 per 15 minutes per IP), opens `/ws/me/` (every
third user also `/ws/live/`), then every 10 to 30 s browses the catalogue, a product, the
leaderboard or the home stats, or, one action in ten, submits a ranking; it pings each socket
every 25 s. One user in five leaves once for 5 to 90 s and comes back on the other instance
with `last_event_id`. At the end every user stops, events get a few seconds to arrive, and
the run checks what reached the sockets against what was sent:

- `/ws/live/`: every id of the live stream that any subscriber saw is "sent"; each subscriber
  must have seen every one between its first and last event, and every accepted submission of
  a user who did not opt out must have produced a `ranking.submitted` that someone saw;
- `/ws/me/`: a submission that awarded points must bring `points.updated`, one per unlocked
  achievement an `achievement.unlocked`, unless the socket was told to resync.

Meanwhile it samples each instance's CPU, memory and open sockets, the database's connections
and Redis's memory and commands. After the run it checks the ledger invariants, prints one
report and writes `bench/results/soak-latest.json` (and `soak-<users>u.json`, for the knee).
"""

import argparse
import asyncio
import bisect
import hashlib
import http.client
import itertools
import json
import math
import os
import random
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis

from bench import run, scenarios
from bench.report import performance_doc_write
from bench.scenarios import Catalog
from bench.seed import FULL, SMOKE, TOKEN_PREFIX, Scale, seed

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rankly_bench_soak"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"

THINK_SECONDS = (10.0, 30.0)
SUBMIT_SHARE = 0.1
PING_SECONDS = 25.0
LIVE_EVERY = 3
RETURNING_SHARE = 0.2
AWAY_SECONDS = (5.0, 90.0)
DRAIN_SECONDS = 5.0
# A user whose seeded account opted out of the leaderboard (bench/seed.py): its submissions
# are kept off the public feed.
OPTED_OUT_EVERY = 97

# Each HTTP group, and whether its answers come from a cache or from the database.
GROUPS = {
    "sign_in": "database",
    "catalogue": "cached",
    "search": "database",
    "product": "cached",
    "leaderboard": "cached",
    "home_stats": "cached",
    "submit": "write",
}
# What a browsing action picks (the rest of the time the user submits a ranking).
BROWSE_WEIGHTS = {"catalogue": 27, "search": 9, "product": 27, "leaderboard": 13, "home_stats": 14}

OBJECTIVES = {
    "cached_reads_p99_ms": ("<", 100),
    "database_reads_p99_ms": ("<", 500),
    "submissions_p99_ms": ("<", 500),
    "http_5xx_or_no_answer": ("==", 0),
    "socket_connect_failures": ("==", 0),
    "events_lost": ("==", 0),
    "event_delivery_p99_ms": ("<", 1000),
    "instance_rss_mb_max": ("<", 500),
    "points_equal_ledger_drift": ("==", 0),
    "counts_equal_rankings_drift": ("==", 0),
}


def echo(message: str) -> None:
    print(message, flush=True)


class Histogram:
    """Latencies in buckets 2 % wide: percentiles within 2 % at any scale, and mergeable across
    the generator processes, where millions of event latencies could not be kept one by one."""

    STEP = math.log(1.02)

    def __init__(self, buckets: dict | None = None) -> None:
        self.buckets: Counter = Counter({int(k): v for k, v in (buckets or {}).items()})

    def add(self, ms: float) -> None:
        self.buckets[round(math.log(max(ms, 0.1)) / self.STEP)] += 1

    def merge(self, other: "Histogram") -> None:
        self.buckets.update(other.buckets)

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def percentile(self, share: float) -> float:
        total = self.count
        if not total:
            return 0.0
        rank = max(1, math.ceil(share * total))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return round(math.exp(bucket * self.STEP), 1)
        return 0.0

    def summary(self) -> dict:
        return {
            "count": self.count,
            "p50_ms": self.percentile(0.50),
            "p95_ms": self.percentile(0.95),
            "p99_ms": self.percentile(0.99),
        }


# realtime.consumers.CLOSE_UNAUTHORIZED: the close code of a /ws/me/ whose sign-in is not valid.
CLOSE_UNAUTHORIZED = 4401


def source_address(index: int) -> str:
    """A loopback address of the user's own (Linux answers on all of 127.0.0.0/8)."""
    return f"127.{1 + index // 62_500}.{index // 250 % 250}.{index % 250 + 1}"


# --- the load generator (one process per slice of the users) -----------------------------------


@dataclass
class Segment:
    """What one subscription saw while it had no gap: a socket, and the sockets that resumed it
    with `last_event_id` without being told to resync."""

    started: float
    ids: list[str] = field(default_factory=list)
    submitted_ids: list[str] = field(default_factory=list)
    types: Counter = field(default_factory=Counter)
    resynced: bool = False


class Subscription:
    def __init__(self, user: "SoakUser", stream: str) -> None:
        self.user = user
        self.stream = stream
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.last_id: str | None = None
        self.opened_at = 0.0
        self.segments: list[Segment] = []
        self.pings: deque[float] = deque()

    @property
    def connected(self) -> bool:
        return self.ws is not None

    def url(self, base: str) -> str:
        ws_base = base.replace("http://", "ws://")
        query = f"?token={TOKEN_PREFIX}{self.user.user_id}" if self.stream == "me" else "?"
        if self.last_id:
            query += f"&last_event_id={self.last_id}"
        return f"{ws_base}/ws/{self.stream}/{query}"

    async def open(self, base: str) -> None:
        from websockets.asyncio.client import connect

        stats = self.user.stats
        while time.time() < self.user.config["end_at"]:
            started = time.perf_counter()
            try:
                self.ws = await connect(
                    self.url(base),
                    # The page's own origin: the scheme, host and port the socket opens on.
                    origin=base,
                    local_addr=(self.user.address, 0),
                    ping_interval=None,
                    open_timeout=30,
                    max_queue=None,
                    compression=None,
                )
            except Exception as error:
                # A refused handshake says with which status; the rest by their kind.
                response = getattr(error, "response", None)
                status = f" {response.status_code}" if response is not None else ""
                stats.socket_failures[f"{self.stream}: {type(error).__name__}{status}"] += 1
                await asyncio.sleep(1 + self.user.rng.random())
                continue
            stats.http["socket_connect"].add(1000 * (time.perf_counter() - started))
            stats.connects += 1
            self.opened_at = time.time()
            if self.last_id is None or not self.segments:
                self.segments.append(Segment(started=self.opened_at))
            self.reader = asyncio.create_task(self.read())
            return

    async def read(self) -> None:
        stats = self.user.stats
        ws = self.ws
        refused = False
        try:
            async for raw in ws:
                received = time.time()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "pong":
                    if self.pings:
                        stats.pong.add(1000 * (received - self.pings.popleft()))
                    continue
                if kind == "resync":
                    stats.resyncs += 1
                    self.segments[-1].resynced = True
                    self.segments.append(Segment(started=received))
                    continue
                segment = self.segments[-1]
                segment.types[kind] += 1
                event_id = frame.get("id")
                if event_id:
                    segment.ids.append(event_id)
                    if kind == "ranking.submitted":
                        segment.submitted_ids.append(event_id)
                    self.last_id = event_id
                sent = datetime.fromisoformat(frame["ts"]).timestamp()
                # A replayed event is as old as the gap: only live ones measure delivery.
                if sent >= self.opened_at:
                    stats.events.add(1000 * (received - sent))
        except Exception as error:
            close = getattr(error, "rcvd", None)
            if close is not None and close.code == CLOSE_UNAUTHORIZED:
                # Signed out by the server: a client signs in again rather than reconnecting
                # with the same token, and the soak has no other token to give it.
                refused = True
                stats.socket_failures[f"{self.stream}: closed {close.code}"] += 1
            elif not self.user.leaving:
                stats.socket_drops[f"{self.stream}: {type(error).__name__}"] += 1
        finally:
            if self.ws is ws:
                self.ws = None
            if not refused and not self.user.leaving and time.time() < self.user.config["end_at"]:
                # A dropped socket comes back with the last id, as the documented client does.
                await asyncio.sleep(1)
                await self.open(self.user.base)

    async def ping(self) -> None:
        if self.ws is None:
            return
        self.pings.append(time.time())
        try:
            await self.ws.send('{"type": "ping"}')
        except Exception:
            self.pings.pop()

    async def close(self) -> None:
        ws, reader = self.ws, self.reader
        self.ws = None
        if ws is not None:
            with suppress(Exception):
                await asyncio.wait_for(ws.close(), 10)
        if reader is not None:
            with suppress(Exception):
                await asyncio.wait_for(reader, 10)
        self.pings.clear()


class GeneratorStats:
    def __init__(self) -> None:
        self.http: dict[str, Histogram] = {
            name: Histogram() for name in [*GROUPS, "socket_connect"]
        }
        self.status: dict[str, Counter] = {name: Counter() for name in GROUPS}
        self.events = Histogram()
        self.pong = Histogram()
        self.loop_lag = Histogram()
        self.socket_failures: Counter = Counter()
        self.socket_drops: Counter = Counter()
        self.error_samples: list[str] = []
        self.connects = 0
        self.resyncs = 0
        self.returns = 0
        self.submissions: list[dict] = []


class SoakUser:
    def __init__(self, *, index: int, config: dict, catalog: Catalog, stats: GeneratorStats):
        self.index = index
        self.user_id = index + 1
        self.config = config
        self.catalog = catalog
        self.stats = stats
        self.rng = random.Random(f"{config['seed']}:{index}")
        self.address = source_address(index)
        bases = config["bases"]
        self.base = bases[index % len(bases)]
        self.other_base = bases[(index + 1) % len(bases)]
        self.leaving = False
        self.http = None
        self.me = Subscription(self, "me")
        self.live = Subscription(self, "live") if index % LIVE_EVERY == 0 else None
        self.submitted_while_connected: list[dict] = []

    @property
    def subscriptions(self) -> list[Subscription]:
        return [self.me] + ([self.live] if self.live else [])

    async def request(self, group: str, method: str, path: str, body: dict | None = None):
        import httpx

        started = time.perf_counter()
        try:
            response = await self.http.request(method, path, json=body)
            status = response.status_code
        except httpx.HTTPError as error:
            response, status = None, 0
            if len(self.stats.error_samples) < 20:
                self.stats.error_samples.append(f"{group}: {type(error).__name__} {error}")
        self.stats.http[group].add(1000 * (time.perf_counter() - started))
        self.stats.status[group][str(status)[0] + "xx" if status else "no answer"] += 1
        if status >= 500 and len(self.stats.error_samples) < 20:
            self.stats.error_samples.append(f"{group}: {status} {response.text[:200]}")
        return response

    async def browse(self) -> None:
        group = self.rng.choices(list(BROWSE_WEIGHTS), weights=list(BROWSE_WEIGHTS.values()))[0]
        catalog = self.catalog
        if group == "catalogue":
            index = self.rng.randrange(catalog.scale.categories)
            page = self.rng.randint(1, catalog.category_pages())
            path = catalog.product_list_path(index=index, page=page)
        elif group == "search":
            path = catalog.search_path(self.rng.choice(scenarios.SEARCH_TERMS))
        elif group == "product":
            path = f"{scenarios.PRODUCTS}{self.rng.choice(self.hot)}/"
        elif group == "leaderboard":
            path = f"{scenarios.LEADERBOARD}?window={self.rng.choice(['all', 'week'])}"
        else:
            path = scenarios.HOME_STATS
        await self.request(group, "GET", path)

    async def submit(self) -> None:
        payload = self.catalog.ranking_payload(self.rng)
        started = time.time()
        connected = self.me.connected
        response = await self.request("submit", "POST", scenarios.RANKINGS, payload)
        if response is None or response.status_code != 201:
            return
        body = response.json()
        submission = {
            "user_id": self.user_id,
            "started": started,
            "answered": time.time(),
            "public": self.user_id % OPTED_OUT_EVERY != 0,
            "points_awarded": body["points_awarded"],
            "achievements": len(body["new_achievements"]),
        }
        self.stats.submissions.append(submission)
        if connected:
            self.submitted_while_connected.append(submission)

    async def connect(self, base: str) -> None:
        await asyncio.gather(*(sub.open(base) for sub in self.subscriptions))

    async def pinger(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, PING_SECONDS))
        while True:
            for sub in self.subscriptions:
                await sub.ping()
            await asyncio.sleep(PING_SECONDS)

    async def leave_and_return(self) -> None:
        self.leaving = True
        await asyncio.gather(*(sub.close() for sub in self.subscriptions))
        await asyncio.sleep(min(self.away, max(0.0, self.config["end_at"] - time.time())))
        self.leaving = False
        if time.time() >= self.config["end_at"]:
            return
        self.stats.returns += 1
        # Back through the load balancer, which may pick the other instance this time.
        self.base = self.other_base
        await self.connect(self.base)

    async def run(self) -> None:
        import httpx

        config = self.config
        self.hot = self.catalog.hot_products()
        arrival = config["start_at"] + config["ramp_s"] * self.index / config["total_users"]
        await asyncio.sleep(max(0.0, arrival - time.time()))
        self.http = httpx.AsyncClient(
            base_url=self.base,
            transport=httpx.AsyncHTTPTransport(local_address=self.address, verify=False),
            headers=scenarios.token_header(self.user_id),
            timeout=30,
        )
        pinger = None
        try:
            await self.request("sign_in", "GET", "/api/customer/me")
            await self.connect(self.base)
            pinger = asyncio.create_task(self.pinger())
            stay = config["end_at"] - time.time()
            leave_at = None
            if self.rng.random() < RETURNING_SHARE:
                leave_at = time.time() + self.rng.uniform(0.2, 0.6) * stay
                # A short run shortens the breaks, so that its users still come back.
                self.away = min(self.rng.uniform(*AWAY_SECONDS), max(1.0, 0.25 * stay))
            while True:
                think = self.rng.uniform(*THINK_SECONDS)
                if time.time() + think >= config["end_at"]:
                    break
                await asyncio.sleep(think)
                if leave_at is not None and time.time() >= leave_at:
                    leave_at = None
                    await self.leave_and_return()
                    continue
                if self.rng.random() < SUBMIT_SHARE:
                    await self.submit()
                else:
                    await self.browse()
        finally:
            if pinger is not None:
                pinger.cancel()
            await self.http.aclose()

    def me_delivery(self) -> dict:
        """Events the user's own submissions must have brought to its /ws/me/."""
        received = Counter()
        for segment in self.me.segments:
            received.update(segment.types)
        expected = Counter(
            {
                "points.updated": sum(
                    1 for s in self.submitted_while_connected if s["points_awarded"]
                ),
                "achievement.unlocked": sum(
                    s["achievements"] for s in self.submitted_while_connected
                ),
            }
        )
        resynced = (
            any(segment.resynced for segment in self.me.segments) or len(self.me.segments) > 1
        )
        missing = sum(max(0, expected[k] - received[k]) for k in expected)
        ids = [i for segment in self.me.segments for i in segment.ids]
        return {
            "expected": sum(expected.values()),
            "received": sum(received[k] for k in expected),
            "missing": 0 if resynced else missing,
            "missing_after_gap": missing if resynced else 0,
            "duplicates": len(ids) - len(set(ids)),
            "received_by_type": dict(received),
        }


async def loop_lag(stats: GeneratorStats, end_at: float) -> None:
    """How late this process's event loop wakes up: the client's own share of any latency."""
    while time.time() < end_at:
        started = time.perf_counter()
        await asyncio.sleep(0.1)
        stats.loop_lag.add(1000 * (time.perf_counter() - started - 0.1))


async def generate(config: dict) -> dict:
    catalog = Catalog(Scale(**config["scale"]))
    stats = GeneratorStats()
    users = [
        SoakUser(index=index, config=config, catalog=catalog, stats=stats)
        for index in config["indexes"]
    ]
    lag = asyncio.create_task(loop_lag(stats, config["end_at"]))
    results = await asyncio.gather(*(user.run() for user in users), return_exceptions=True)
    crashed = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    await asyncio.sleep(DRAIN_SECONDS)
    for user in users:
        user.leaving = True
    await asyncio.gather(*(sub.close() for user in users for sub in user.subscriptions))
    lag.cancel()
    me = [user.me_delivery() for user in users]
    live = [segment for user in users if user.live for segment in user.live.segments]
    return {
        "users": len(users),
        "live_users": sum(1 for user in users if user.live),
        "http": {name: hist.buckets for name, hist in stats.http.items()},
        "status": {name: dict(counts) for name, counts in stats.status.items()},
        "events": stats.events.buckets,
        "pong": stats.pong.buckets,
        "loop_lag": stats.loop_lag.buckets,
        "socket_failures": dict(stats.socket_failures),
        "socket_drops": dict(stats.socket_drops),
        "error_samples": stats.error_samples + crashed[:5],
        "crashed_users": len(crashed),
        "connects": stats.connects,
        "resyncs": stats.resyncs,
        "returns": stats.returns,
        "submissions": stats.submissions,
        "me": me,
        "live": live_digest(live),
    }


def live_digest(segments: list[Segment]) -> dict:
    """The live segments reduced to what the parent needs: every id seen, the ids of
    `ranking.submitted` seen, and per segment its first and last id and its distinct ids."""
    seen: set[str] = set()
    submitted: set[str] = set()
    digest = []
    for segment in segments:
        distinct = set(segment.ids)
        seen |= distinct
        submitted.update(segment.submitted_ids)
        digest.append(
            {
                "first": min(distinct, key=event_order) if distinct else None,
                "last": max(distinct, key=event_order) if distinct else None,
                "distinct": len(distinct),
                "duplicates": len(segment.ids) - len(distinct),
                "types": dict(segment.types),
            }
        )
    return {"seen": sorted(seen), "submitted": sorted(submitted), "segments": digest}


def event_order(event_id: str) -> tuple[int, int]:
    first, _, second = event_id.partition("-")
    return int(first), int(second or 0)


def generator_main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    result = asyncio.run(generate(config))
    result["cpu_seconds"] = run.cpu_seconds(os.getpid())
    result["peak_memory_mb"] = run.proc_status_mb(os.getpid(), "VmHWM")
    Path(config["output"]).write_text(json.dumps(result))


# --- the run (the parent process) --------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """The instance's process and its descendants (a supervisor and its server workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def tree_usage(pid: int) -> tuple[float, float]:
    """CPU seconds and resident MB of a process tree."""
    cpu = rss = 0.0
    for member in process_tree(pid):
        try:
            cpu += run.cpu_seconds(member)
            rss += run.proc_status_mb(member, "VmRSS")
        except OSError:
            continue
    return cpu, rss


def open_connections(ports: list[int]) -> dict[int, int]:
    """Established TCP connections on each server port (HTTP keep-alive and WebSockets)."""
    counts = dict.fromkeys(ports, 0)
    wanted = {f"{port:04X}": port for port in ports}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = fields[1].rpartition(":")[2]
            if fields[3] == "01" and local_port in wanted:
                counts[wanted[local_port]] += 1
    return counts


@dataclass
class Sampler:
    pids: list[int]
    ports: list[int]
    database_url: str
    redis_url: str
    every: float = 2.0
    rows: list[dict] = field(default_factory=list)

    @contextmanager
    def running(self) -> Iterator["Sampler"]:
        stop = threading.Event()
        name = run.database_name(self.database_url)
        client = redis.Redis.from_url(self.redis_url)

        def sample() -> None:
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                while not stop.is_set():
                    at = time.time()
                    total, active = conn.execute(
                        "SELECT count(*), count(*) FILTER (WHERE state = 'active') "
                        "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (name,),
                    ).fetchone()
                    info = client.info()
                    usage = [tree_usage(pid) for pid in self.pids]
                    sockets = open_connections(self.ports)
                    self.rows.append(
                        {
                            "at": at,
                            "cpu_s": [cpu for cpu, _ in usage],
                            "rss_mb": [round(rss, 1) for _, rss in usage],
                            "connections": [sockets[port] for port in self.ports],
                            "db_connections": total,
                            "db_active": active,
                            "redis_memory_mb": round(info["used_memory"] / 2**20, 1),
                            "redis_commands": info["total_commands_processed"],
                        }
                    )
                    stop.wait(self.every)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=10)

    def summary(self, *, window: tuple[float, float]) -> dict:
        rows = [row for row in self.rows if window[0] <= row["at"] <= window[1]] or self.rows
        if len(rows) < 2:
            return {}
        seconds = rows[-1]["at"] - rows[0]["at"]
        instances = []
        for i in range(len(self.pids)):
            cpu = [
                (b["cpu_s"][i] - a["cpu_s"][i]) / (b["at"] - a["at"])
                for a, b in itertools.pairwise(rows)
            ]
            instances.append(
                {
                    "cpu_cores_mean": round(
                        (rows[-1]["cpu_s"][i] - rows[0]["cpu_s"][i]) / seconds, 2
                    ),
                    "cpu_cores_max": round(max(cpu), 2),
                    "rss_mb_max": max(row["rss_mb"][i] for row in rows),
                    "rss_mb_end": rows[-1]["rss_mb"][i],
                    "open_connections_max": max(row["connections"][i] for row in rows),
                }
            )
        commands = rows[-1]["redis_commands"] - rows[0]["redis_commands"]
        return {
            "seconds": round(seconds, 1),
            "instances": instances,
            "db_connections_max": max(row["db_connections"] for row in rows),
            "db_connections_median": statistics.median(row["db_connections"] for row in rows),
            "db_active_max": max(row["db_active"] for row in rows),
            "redis_memory_mb_start": rows[0]["redis_memory_mb"],
            "redis_memory_mb_max": max(row["redis_memory_mb"] for row in rows),
            "redis_commands": commands,
            "redis_commands_per_s": round(commands / seconds, 1),
        }


def warm(*, base: str, catalog: Catalog, env: dict[str, str]) -> dict:
    """The Redis leaderboards built, `manage.py warm_cache`, then every read path once, each
    from a loopback address of its own: from one address the real rate limits would refuse
    most of them."""
    started = time.perf_counter()
    leaderboards = run.leaderboards_build(env=env)
    command = run.manage("warm_cache", env=env)
    netloc = base.removeprefix("http://")
    host, _, port = netloc.rpartition(":")

    def fetch(item: tuple[int, str]) -> int:
        index, path = item
        address = f"127.254.{index // 250 % 250}.{index % 250 + 1}"
        conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(address, 0))
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        except OSError:
            return 0
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(fetch, enumerate(catalog.read_paths())))
    failed = sum(1 for status in statuses if not 200 <= status < 400)
    seconds = round(time.perf_counter() - started, 1)
    echo(f"  warmed {len(statuses)} paths in {seconds} s ({failed} failed)")
    return {
        "leaderboards": leaderboards,
        "warm_cache_command": "ran" if command.returncode == 0 else "failed",
        "paths": len(statuses),
        "failed": failed,
        "seconds": seconds,
    }


def invariants(database_url: str) -> dict:
    with psycopg.connect(database_url) as conn:
        points = conn.execute(
            "SELECT count(*) FROM accounts_user AS u WHERE u.points <> COALESCE("
            "(SELECT sum(points) FROM gamification_activitylog AS a WHERE a.user_id = u.id), 0)"
        ).fetchone()[0]
        counts = conn.execute(
            "SELECT count(*) FROM products_productmetadata AS m WHERE m.ranking_count <> "
            "(SELECT count(*) FROM rankings_productranking AS r WHERE r.product_id = m.product_id)"
        ).fetchone()[0]
    return {"points_equal_ledger_drift": points, "counts_equal_rankings_drift": counts}


def tokens_missing(database_url: str, users: int) -> bool:
    """True when the database holds no seeded token for the soak's last user: a reused database
    seeded for fewer users, whose extra users would only be refused."""
    token_hash = hashlib.sha256(f"{TOKEN_PREFIX}{users}".encode()).hexdigest()
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT 1 FROM accounts_usersession WHERE token_hash = %s", [token_hash]
        ).fetchone()
    return found is None


def database_size_mb(database_url: str) -> float:
    with psycopg.connect(database_url) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return round(size / 2**20, 1)


def live_delivery(generators: list[dict], submissions: list[dict]) -> dict:
    """Per live subscriber: the ids of the live stream between its first and last event, as seen
    by anyone, against the ones it saw; and a `ranking.submitted` seen for every public
    submission."""
    seen = sorted({i for g in generators for i in g["live"]["seen"]}, key=event_order)
    orders = [event_order(event_id) for event_id in seen]
    expected = received = duplicates = 0
    by_type: Counter = Counter()
    for g in generators:
        for segment in g["live"]["segments"]:
            by_type.update(segment["types"])
            duplicates += segment["duplicates"]
            if segment["first"] is None:
                continue
            low = bisect.bisect_left(orders, event_order(segment["first"]))
            high = bisect.bisect_right(orders, event_order(segment["last"]))
            expected += high - low
            received += segment["distinct"]
    public = sum(1 for s in submissions if s["public"])
    submitted_seen = len({i for g in generators for i in g["live"]["submitted"]})
    return {
        "subscriber_expected": expected,
        "subscriber_received": received,
        "subscriber_missing": expected - received,
        "duplicates": duplicates,
        "public_submissions": public,
        "public_submissions_seen": submitted_seen,
        "public_submissions_unseen": max(0, public - submitted_seen),
        "received_by_type": dict(by_type),
    }


def merge(generators: list[dict], *, seconds: float) -> dict:
    http = {}
    status_total: Counter = Counter()
    for group, kind in [*GROUPS.items(), ("socket_connect", "socket")]:
        hist = Histogram()
        status: Counter = Counter()
        for g in generators:
            hist.merge(Histogram(g["http"][group]))
            status.update(g["status"].get(group, {}))
        status_total.update(status)
        http[group] = {
            "kind": kind,
            **hist.summary(),
            "per_s": round(hist.count / seconds, 2),
            "status": dict(status),
        }
    combined = {}
    for kind in ("cached", "database", "write"):
        hist = Histogram()
        for g in generators:
            for group, group_kind in GROUPS.items():
                if group_kind == kind:
                    hist.merge(Histogram(g["http"][group]))
        combined[kind] = hist.summary()

    def merged(key: str) -> Histogram:
        hist = Histogram()
        for g in generators:
            hist.merge(Histogram(g[key]))
        return hist

    submissions = [s for g in generators for s in g["submissions"]]
    me = {
        key: sum(user[key] for g in generators for user in g["me"])
        for key in ("expected", "received", "missing", "missing_after_gap", "duplicates")
    }
    me_types: Counter = Counter()
    for g in generators:
        for user in g["me"]:
            me_types.update(user["received_by_type"])
    me["received_by_type"] = dict(me_types)
    failures: Counter = Counter()
    drops: Counter = Counter()
    for g in generators:
        failures.update(g["socket_failures"])
        drops.update(g["socket_drops"])
    return {
        "http": http,
        "combined": combined,
        "status": dict(status_total),
        "events": merged("events").summary(),
        "pong": merged("pong").summary(),
        "generator_loop_lag": merged("loop_lag").summary(),
        "sockets": {
            "connects": sum(g["connects"] for g in generators),
            "connect_failures": dict(failures),
            "drops": dict(drops),
            "resyncs": sum(g["resyncs"] for g in generators),
            "returns": sum(g["returns"] for g in generators),
        },
        "me_delivery": me,
        "live_delivery": live_delivery(generators, submissions),
        "submissions_accepted": len(submissions),
        "live_users": sum(g["live_users"] for g in generators),
        "error_samples": [e for g in generators for e in g["error_samples"]][:20],
        "crashed_users": sum(g["crashed_users"] for g in generators),
        "generators": [
            {
                "users": g["users"],
                "cpu_seconds": round(g["cpu_seconds"], 1),
                "peak_memory_mb": round(g["peak_memory_mb"], 1),
            }
            for g in generators
        ],
    }


def evaluate(result: dict) -> dict:
    load, resources = result["load"], result["resources"]
    http = load["http"]
    failed_connects = sum(load["sockets"]["connect_failures"].values())
    no_answer = sum(
        count
        for group in GROUPS
        for status, count in http[group]["status"].items()
        if status in ("5xx", "no answer")
    )
    live = load["live_delivery"]
    lost = (
        load["me_delivery"]["missing"]
        + max(0, live["subscriber_missing"])
        + live["public_submissions_unseen"]
    )

    def p99(summary: dict) -> float | None:
        # No answer at all is no evidence of speed: the objective is missed, not met.
        return summary["p99_ms"] if summary.get("count", 1) else None

    values = {
        "cached_reads_p99_ms": p99(load["combined"]["cached"]),
        "database_reads_p99_ms": p99(load["combined"]["database"]),
        "submissions_p99_ms": p99(load["combined"]["write"]),
        "http_5xx_or_no_answer": no_answer,
        "socket_connect_failures": failed_connects,
        "events_lost": lost,
        "event_delivery_p99_ms": p99(load["events"]),
        "instance_rss_mb_max": max(
            (i["rss_mb_max"] for i in resources.get("instances", [])), default=None
        ),
        **result["invariants"],
    }
    targets = {}
    for name, (op, target) in OBJECTIVES.items():
        value = values[name]
        met = value is not None and {
            "<": lambda v, t: v < t,
            "==": lambda v, t: v == t,
        }[op](value, target)
        targets[name] = {"value": value, "target": f"{op} {target}", "met": met}
    return targets


def report(result: dict) -> str:
    load, resources = result["load"], result["resources"]
    settings = result["settings"]
    lines = [
        f"soak: {settings['users']} users on {settings['instances']} instances, "
        f"{settings['duration_s']} s ({settings['ramp_s']} s ramp)",
        "",
        f"{'group':<15} {'kind':<9} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'count':>7}  statuses",
    ]
    for group, row in load["http"].items():
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(row["status"].items()))
        lines.append(
            f"{group:<15} {row['kind']:<9} {row['per_s']:>7.1f} {row['p50_ms']:>7.0f} "
            f"{row['p95_ms']:>7.0f} {row['p99_ms']:>7.0f} {row['count']:>7}  {statuses}"
        )
    events, pong, lag = load["events"], load["pong"], load["generator_loop_lag"]
    lines += [
        "",
        f"events delivered live: {events['count']}, p50 {events['p50_ms']} ms, "
        f"p95 {events['p95_ms']} ms, p99 {events['p99_ms']} ms",
        f"socket ping -> pong: {pong['count']}, p50 {pong['p50_ms']} ms, p99 {pong['p99_ms']} ms",
        f"load generator event-loop lag: p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms",
    ]
    me, live, sockets = load["me_delivery"], load["live_delivery"], load["sockets"]
    lines += [
        f"/ws/me/: {me['received']} arrived (replays included) of {me['expected']} events "
        "the submissions sent while their socket was open "
        f"({me['missing']} missing, {me['missing_after_gap']} after a gap with no id to resume, "
        f"{me['duplicates']} duplicates); by type {me['received_by_type']}",
        f"/ws/live/: {live['subscriber_received']} of {live['subscriber_expected']} events "
        f"in the subscribers' windows ({live['duplicates']} duplicates); "
        f"{live['public_submissions_seen']} of {live['public_submissions']} public submissions "
        f"seen; by type {live['received_by_type']}",
        f"sockets: {sockets['connects']} connects, failures {sockets['connect_failures'] or 0}, "
        f"drops {sockets['drops'] or 0}, {sockets['returns']} returns, "
        f"{sockets['resyncs']} resyncs",
        "",
    ]
    for i, instance in enumerate(resources.get("instances", [])):
        lines.append(
            f"instance {i + 1}: CPU {instance['cpu_cores_mean']} cores mean, "
            f"{instance['cpu_cores_max']} max; RSS max {instance['rss_mb_max']:.0f} MB; "
            f"{instance['open_connections_max']} open connections max"
        )
    if resources:
        lines.append(
            f"PostgreSQL: {resources['db_connections_max']} connections max "
            f"({resources['db_active_max']} active max); Redis ({result['settings']['redis']}): "
            f"{resources['redis_memory_mb_max']} MB max, {resources['redis_commands_per_s']} "
            "commands/s"
        )
    gens = load["generators"]
    lines.append(
        "load generators: "
        + ", ".join(f"{g['users']} users {g['cpu_seconds']} CPU s" for g in gens)
    )
    lines += ["", "objectives:"]
    for name, target in result["targets"].items():
        mark = "met" if target["met"] else "MISSED"
        lines.append(f"  {name:<28} {target['value']!s:>10} (target {target['target']}): {mark}")
    for sample in load["error_samples"][:5]:
        lines.append(f"  error: {sample}")
    return "\n".join(lines)


@contextmanager
def redis_for_run(*, url: str, private: bool) -> Iterator[tuple[str, str]]:
    if not private:
        yield url, "the shared server; its figures include every other client"
        return
    from config.tests.private_redis import private_redis

    with private_redis() as server:
        yield server.url, "a private redis-server for this run"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="The soak: a community of users, two instances.")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=600, help="seconds, ramp included")
    parser.add_argument("--ramp", type=int, help="seconds over which users arrive (duration/5)")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--generators", type=int, default=2, help="load-generator processes")
    parser.add_argument("--smoke", action="store_true", help="the toy data set")
    parser.add_argument("--seed", default="soak")
    parser.add_argument(
        "--db-pool-max",
        type=int,
        default=10,
        help="DB_POOL_MAX_SIZE per server process (the machine's PostgreSQL allows 100 in all)",
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--private-redis", action="store_true", help="a redis-server of its own")
    parser.add_argument("--results-dir", type=Path, default=run.RESULTS_DIR)
    parser.add_argument("--reuse-database", action="store_true")
    args = parser.parse_args(argv)
    data = SMOKE if args.smoke else FULL
    scale = replace(data, users=max(data.users, args.users), token_users=args.users)
    ramp = args.ramp if args.ramp is not None else args.duration // 5
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = args.results_dir / f"soak-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_token = secrets.token_urlsafe(16)
    cache_prefix = f"rankly-soak-{stamp}"
    result: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": run.git_commit(),
        "machine": run.machine(),
        "scale": asdict(scale),
    }
    echo(
        f"soak: {args.users} users, {args.duration} s, {args.instances} instances, {asdict(scale)}"
    )

    with ExitStack() as stack:
        redis_url, redis_note = stack.enter_context(
            redis_for_run(url=args.redis_url, private=args.private_redis)
        )
        env = run.server_env(
            database_url=args.database_url,
            redis_url=redis_url,
            metrics_token=metrics_token,
            cache_prefix=cache_prefix,
        )
        env.update(
            DJANGO_SETTINGS_MODULE="bench.soak_settings", DB_POOL_MAX_SIZE=str(args.db_pool_max)
        )
        result["settings"] = {
            "users": args.users,
            "duration_s": args.duration,
            "ramp_s": ramp,
            "instances": args.instances,
            "generators": args.generators,
            "smoke": args.smoke,
            "web_concurrency": os.environ.get("WEB_CONCURRENCY", "the server's default"),
            "db_pool_max": args.db_pool_max,
            "redis": redis_note,
            "server": "the Procfile's web command per instance, bench.soak_settings "
            "(development, DEBUG off, the real per-IP rate limits), PostgreSQL + Redis; "
            "one Procfile worker and beat",
        }
        if not args.reuse_database:
            run.recreate_database(args.database_url)
        # A reused database may predate a migration of the code under test.
        migrated = run.manage("migrate", "--noinput", "-v0", env=env)
        if migrated.returncode:
            raise SystemExit(f"migrate failed:\n{migrated.stderr}")
        if not args.reuse_database:
            result["seed"] = seed(database_url=args.database_url, scale=scale, echo=echo)
        elif tokens_missing(args.database_url, args.users):
            raise SystemExit(
                f"the reused database has no token for {args.users} users: "
                "run once without --reuse-database to seed them"
            )
        stack.enter_context(run.cache_keys_dropped(redis_url=redis_url, prefix=cache_prefix))
        ports, servers = [], []
        for i in range(args.instances):
            port = run.free_port()
            server = stack.enter_context(
                run.daphne(
                    env={**env, "INSTANCE_ID": f"soak-{i + 1}"},
                    port=port,
                    log_path=workdir / f"instance-{i + 1}.log",
                )
            )
            ports.append(port)
            servers.append(server)
            echo(f"  instance {i + 1}: pid {server.pid} on 127.0.0.1:{port}")
        # One worker and one beat for the instances, as a deployment runs them.
        stack.enter_context(run.background_jobs(env=env, workdir=workdir))
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        catalog = Catalog(scale)
        result["warm"] = warm(base=bases[0], catalog=catalog, env=env)
        size_before = database_size_mb(args.database_url)
        start_at = time.time() + 3
        end_at = start_at + args.duration
        sampler = Sampler(
            pids=[s.pid for s in servers],
            ports=ports,
            database_url=args.database_url,
            redis_url=redis_url,
        )
        generators = []
        with sampler.running():
            for g in range(args.generators):
                config = {
                    "bases": bases,
                    "indexes": list(range(g, args.users, args.generators)),
                    "total_users": args.users,
                    "start_at": start_at,
                    "end_at": end_at,
                    "ramp_s": ramp,
                    "seed": args.seed,
                    "scale": asdict(scale),
                    "output": str(workdir / f"generator-{g}.json"),
                }
                config_path = workdir / f"generator-{g}-config.json"
                config_path.write_text(json.dumps(config))
                log = stack.enter_context(open(workdir / f"generator-{g}.log", "w"))
                generators.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.soak", "--generator", str(config_path)],
                        cwd=run.ROOT,
                        env={**os.environ, "PYTHONPATH": str(run.ROOT)},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            echo(f"  {args.generators} load generators started; the run ends in {args.duration} s")
            for process in generators:
                try:
                    process.wait(timeout=args.duration + 180)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        outputs = []
        for g, process in enumerate(generators):
            output = workdir / f"generator-{g}.json"
            if process.returncode or not output.exists():
                log_tail = (workdir / f"generator-{g}.log").read_text()[-3000:]
                raise SystemExit(f"load generator {g} failed ({process.returncode}):\n{log_tail}")
            outputs.append(json.loads(output.read_text()))
        result["load"] = merge(outputs, seconds=args.duration)
        # Resources while every user is present: after the ramp, before the end.
        steady = (start_at + ramp, end_at)
        result["resources"] = sampler.summary(window=steady)
        result["resources"]["window"] = "after the ramp until the end"
        result["resources"]["database_growth_mb"] = round(
            database_size_mb(args.database_url) - size_before, 1
        )
        result["server_cache"] = [
            dict(
                zip(
                    ("source", "counts"),
                    run.cache_counts(base=base, metrics_token=metrics_token),
                    strict=True,
                )
            )
            for base in bases
        ]
    result["invariants"] = invariants(args.database_url)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["targets"] = evaluate(result)
    table = report(result)
    result["table"] = table.splitlines()
    echo("")
    echo(table)
    path = args.results_dir / f"soak-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    if not args.smoke:
        for name in ("soak-latest.json", f"soak-{args.users}u.json"):
            (args.results_dir / name).write_text(json.dumps(result, indent=2) + "\n")
        if args.results_dir == run.RESULTS_DIR:
            echo(f"wrote {performance_doc_write()}")
    echo(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--generator"]:
        generator_main(sys.argv[2])
    else:
        main()
