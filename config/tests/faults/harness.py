"""Two daphne instances on a private Redis and their own PostgreSQL database, a load, and checks.

Every process here runs on a free port and is stopped by the context manager that started it.
"""

import collections
import contextlib
import itertools
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as websocket_connect

from config.tests.private_redis import PrivateRedis, free_port

BASE_DIR = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT = 40
REQUEST_TIMEOUT = 10


def database_url_named(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def web_command(port: int) -> list[str]:
    """The Procfile's `web` line, on `port`, with the virtualenv's daphne."""
    line = (BASE_DIR / "Procfile").read_text().split("web:", 1)[1].splitlines()[0]
    command = shlex.split(line.replace("$PORT", str(port)).replace("0.0.0.0", "127.0.0.1"))
    command[0] = str(Path(sys.executable).with_name(command[0]))
    return command


@contextlib.contextmanager
def fault_database(services_url: str) -> Iterator[dict]:
    """A migrated, seeded database of the suite's own, dropped afterwards."""
    name = f"{urlsplit(services_url).path.lstrip('/')}_faults"
    admin_url = database_url_named(services_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url_named(services_url, name)
    env = server_env(database_url=url, redis_url="")
    try:
        for command in (
            [sys.executable, "manage.py", "migrate", "--noinput"],
            [sys.executable, "-m", "config.tests.faults.seed"],
        ):
            done = subprocess.run(
                command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=180
            )
            assert done.returncode == 0, done.stderr[-3000:]
        seeded = json.loads(done.stdout.strip().splitlines()[-1])
        yield {"url": url, "name": name, **seeded}
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(*, database_url: str, redis_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REPLIT_", "UPSTASH_", "DJANGO_", "SENTRY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.tests.faults.server_settings",
        DJANGO_DEBUG="0",
        DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
        # One process per instance: the checks read each instance's own memory and logs.
        WEB_CONCURRENCY="1",
    )
    if redis_url:
        env["UPSTASH_REDIS_URL"] = redis_url
    return env


class Instance:
    def __init__(self, *, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Closed by stop(): the log outlives this method, for log_tail() on a failure.
        self.log = tempfile.NamedTemporaryFile(prefix=f"rankly-{name}-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            web_command(self.port),
            cwd=BASE_DIR,
            env={**env, "INSTANCE_ID": name},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.log_tail()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not start:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def readyz(self) -> dict:
        return httpx.get(f"{self.url}/readyz", timeout=5).json()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


@dataclass
class Cluster:
    database: dict
    redis: PrivateRedis
    instances: list[Instance] = field(default_factory=list)


@contextlib.contextmanager
def cluster(database: dict) -> Iterator[Cluster]:
    """A private redis-server and two daphne instances sharing it and the suite's database."""
    redis = PrivateRedis(free_port())
    redis.start()
    env = server_env(database_url=database["url"], redis_url=redis.url)
    running = Cluster(database=database, redis=redis)
    try:
        running.instances = [Instance(name=name, env=env) for name in ("web-1", "web-2")]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for instance in running.instances:
            instance.wait_ready(deadline)
        yield running
    finally:
        for instance in running.instances:
            instance.stop()
        redis.kill()


@dataclass
class Outcome:
    at: float
    kind: str
    instance: str
    status: int | None
    seconds: float
    error: str = ""
    body: str = ""


@dataclass
class Submission:
    user_id: int
    product_ids: list[int]
    status: int | None


class Load:
    """A steady mix of reads and ranking submissions from a thread pool, round-robin over the
    instances; a refused connection is retried on the next instance, as a load balancer does."""

    def __init__(
        self, running: Cluster, *, users: list[list], workers: int = 6, max_requests: int = 20_000
    ) -> None:
        self.cluster = running
        self.users = users
        self.workers = workers
        self.max_requests = max_requests
        self.outcomes: list[Outcome] = []
        self.submissions: dict[int, list[Submission]] = collections.defaultdict(list)
        self.failovers = 0
        self._stop = threading.Event()
        self._sent = itertools.count()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.started = 0.0

    def __enter__(self) -> "Load":
        self.started = time.monotonic()
        for number in range(self.workers):
            thread = threading.Thread(
                target=self._run, args=(number, self.users[number :: self.workers])
            )
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT * 3)

    def _run(self, number: int, users: list[list]) -> None:
        rng = random.Random(number)
        database = self.cluster.database
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            for step in itertools.count():
                if self._stop.is_set() or next(self._sent) >= self.max_requests:
                    return
                instance = step + number
                if step % 4 == 0:
                    user_id, token = users[(step // 4) % len(users)]
                    product_ids = rng.sample(database["products"], rng.randint(1, 10))
                    status = self._request(
                        client,
                        instance,
                        "submit",
                        "POST",
                        "/api/rankings/",
                        headers={"Authorization": f"Token {token}"},
                        json={"category": database["category"], "product_ids": product_ids},
                    )
                    with self._lock:
                        self.submissions[user_id].append(Submission(user_id, product_ids, status))
                else:
                    kind, path = rng.choice(
                        [
                            ("products", "/api/products/"),
                            ("product", f"/api/products/{rng.choice(database['products'])}/"),
                            ("leaderboard", "/api/gamification/leaderboard/"),
                            ("home", "/api/gamification/home-stats/"),
                            ("stats", f"/api/rankings/stats/?category={database['category']}"),
                        ]
                    )
                    self._request(client, instance, kind, "GET", path)

    def _request(
        self, client: httpx.Client, index: int, kind: str, method: str, path: str, **kwargs
    ) -> int | None:
        instances = self.cluster.instances
        for attempt in range(len(instances)):
            instance = instances[(index + attempt) % len(instances)]
            started = time.monotonic()
            try:
                response = client.request(method, f"{instance.url}{path}", **kwargs)
            except httpx.ConnectError:
                # Nothing reached the instance: safe to send elsewhere, writes included.
                with self._lock:
                    self.failovers += 1
                continue
            except httpx.HTTPError as error:
                seconds = time.monotonic() - started
                self._record(
                    Outcome(started, kind, instance.name, None, seconds, type(error).__name__)
                )
                return None
            seconds = time.monotonic() - started
            body = response.text[:300] if response.status_code >= 500 else ""
            self._record(
                Outcome(started, kind, instance.name, response.status_code, seconds, "", body)
            )
            return response.status_code
        self._record(Outcome(time.monotonic(), kind, "-", None, 0, "ConnectError"))
        return None

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def run_for(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # --- figures ---------------------------------------------------------------------------

    def errors(self, since: float = 0.0) -> collections.Counter:
        """Failed requests by kind: HTTP status or exception name."""
        return collections.Counter(
            str(o.status) if o.status is not None else o.error
            for o in self.outcomes
            if o.at >= since and (o.status is None or o.status >= 500)
        )

    def server_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is not None and o.status >= 500]

    def latencies_ms(self, start: float, end: float) -> dict[str, float]:
        values = sorted(
            o.seconds * 1000 for o in self.outcomes if start <= o.at < end and o.status is not None
        )
        if not values:
            return {"n": 0}
        return {
            "n": len(values),
            "p50": round(statistics.median(values), 1),
            "p95": round(values[int(len(values) * 0.95) - 1 if len(values) > 1 else 0], 1),
            "max": round(values[-1], 1),
        }

    def slowest(self, start: float, end: float, count: int = 5) -> list[str]:
        window = [o for o in self.outcomes if start <= o.at < end and o.status is not None]
        window.sort(key=lambda o: o.seconds, reverse=True)
        return [f"{o.kind}@{o.instance}:{o.seconds * 1000:.0f}ms" for o in window[:count]]

    def recovery_seconds(self, fault_at: float) -> float:
        """From the fault to the first success answered after the last failure."""
        ends = [(o.at + o.seconds, _ok(o)) for o in self.outcomes]
        failures = [end for end, ok in ends if end >= fault_at and not ok]
        if not failures:
            return 0.0
        later = [end for end, ok in ends if end > max(failures) and ok]
        return round((min(later) if later else float("inf")) - fault_at, 2)

    def figures(self, **extra) -> dict:
        statuses = collections.Counter(str(o.status) for o in self.outcomes if o.status)
        accepted = sum(s.status == 201 for subs in self.submissions.values() for s in subs)
        return {
            "requests": len(self.outcomes),
            "seconds": round(time.monotonic() - self.started, 1),
            "statuses": dict(sorted(statuses.items())),
            "errors": dict(self.errors()),
            "failovers": self.failovers,
            "submissions_sent": sum(len(subs) for subs in self.submissions.values()),
            "submissions_accepted": accepted,
            **extra,
        }


def _ok(outcome: Outcome) -> bool:
    return outcome.status is not None and outcome.status < 500


def report(name: str, figures: dict) -> None:
    print(f"\n[faults] {name}: {json.dumps(figures, sort_keys=False)}")


# --- consistency ---------------------------------------------------------------------------


def consistency_problems(database: dict, load: Load | None = None) -> list[str]:
    """Points against the ledger, ranking counts against the rankings, and every accepted
    submission stored (or replaced by a later attempt) and paid at most once."""
    problems = []
    with psycopg.connect(database["url"]) as connection:
        for user_id, points, ledger in connection.execute(
            """SELECT u.id, u.points, COALESCE(SUM(a.points), 0)
                 FROM accounts_user u LEFT JOIN gamification_activitylog a ON a.user_id = u.id
                GROUP BY u.id HAVING u.points <> COALESCE(SUM(a.points), 0)"""
        ):
            problems.append(f"user {user_id}: points {points} but ledger sum {ledger}")
        for product_id, counted, rankings in connection.execute(
            """SELECT m.product_id, m.ranking_count,
                      (SELECT COUNT(*) FROM rankings_productranking r
                        WHERE r.product_id = m.product_id)
                 FROM products_productmetadata m
                WHERE m.ranking_count <> (SELECT COUNT(*) FROM rankings_productranking r
                                           WHERE r.product_id = m.product_id)"""
        ):
            problems.append(f"product {product_id}: ranking_count {counted}, rankings {rankings}")
        if load is None:
            return problems
        stored = collections.defaultdict(list)
        for user_id, product_id in connection.execute(
            """SELECT user_id, product_id FROM rankings_productranking
                WHERE category = %s ORDER BY user_id, position""",
            [database["category"]],
        ):
            stored[user_id].append(product_id)
        paid = dict(
            connection.execute(
                """SELECT user_id, COUNT(*) FROM gamification_activitylog
                    WHERE kind = 'ranking_submitted' AND points > 0 GROUP BY user_id"""
            ).fetchall()
        )
    for user_id, submissions in load.submissions.items():
        accepted = [n for n, s in enumerate(submissions) if s.status == 201]
        if accepted:
            # A request that failed after the last accepted one may still have committed.
            candidates = [s.product_ids for s in submissions[accepted[-1] :] if s.status != 400]
            if stored[user_id] not in candidates:
                problems.append(
                    f"user {user_id}: stored {stored[user_id]}, accepted {candidates[0]}"
                )
        unknown = sum(s.status is None or s.status >= 500 for s in submissions)
        if not min(len(accepted), 5) <= paid.get(user_id, 0) <= min(len(accepted) + unknown, 5):
            problems.append(
                f"user {user_id}: paid {paid.get(user_id, 0)} times for {len(accepted)} accepted"
            )
    return problems


class LiveSocket:
    """A /ws/live/ client of one instance, collecting its frames in a thread."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.frames: list[dict] = []
        self.close_code: int | None = None
        self.closed = threading.Event()
        self._stack = contextlib.ExitStack()
        self.connection = self._stack.enter_context(
            websocket_connect(
                f"ws://127.0.0.1:{instance.port}/ws/live/",
                origin=f"http://127.0.0.1:{instance.port}",
                open_timeout=10,
                max_size=None,
            )
        )
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        try:
            while True:
                self.frames.append(json.loads(self.connection.recv()))
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
        except OSError:
            pass
        finally:
            self.closed.set()

    def wait_for_submission(self, product_ids: list[int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(
                frame.get("type") == "ranking.submitted"
                and frame["data"].get("product_ids") == product_ids
                for frame in list(self.frames)
            ):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()
        self._thread.join(timeout=5)


def submit(instance: Instance, *, token: str, category: str, product_ids: list[int]) -> int:
    return httpx.post(
        f"{instance.url}/api/rankings/",
        json={"category": category, "product_ids": product_ids},
        headers={"Authorization": f"Token {token}"},
        timeout=REQUEST_TIMEOUT,
    ).status_code


def sign_in_request(
    instance: Instance, *, email: str, headers: dict | None = None, source: str | None = None
) -> httpx.Response:
    """`source`: the loopback address to send from (its own per-IP budget), else 127.0.0.1."""
    transport = httpx.HTTPTransport(local_address=source) if source else None
    with httpx.Client(transport=transport, timeout=REQUEST_TIMEOUT) as client:
        return client.post(
            f"{instance.url}/api/customer/email-login", json={"email": email}, headers=headers or {}
        )
