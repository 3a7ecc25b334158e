"""A real Celery worker (the Procfile's `worker` line) on the test database and a given Redis,
and the test process sending to that Redis instead of running tasks in process."""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings

from config.celery import app

BASE_DIR = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 40


def test_database_url() -> str:
    database = settings.DATABASES["default"]
    host = database.get("HOST") or "127.0.0.1"
    return (
        f"postgres://{database['USER']}:{database.get('PASSWORD') or ''}@{host}:"
        f"{database.get('PORT') or 5432}/{database['NAME']}"
    )


def worker_command() -> list[str]:
    line = (BASE_DIR / "Procfile").read_text().split("worker:", 1)[1].splitlines()[0]
    command = shlex.split(line)
    command[0] = str(Path(sys.executable).with_name(command[0]))
    # One pool process: the one a test kills is the one running the job.
    command[command.index("--concurrency") + 1] = "1"
    return command


class Worker:
    def __init__(self, *, redis_url: str, lease_seconds: int, extra_env: dict[str, str]) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("REPLIT_", "UPSTASH_", "DJANGO_", "SENTRY_", "CELERY_"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.development",
            DJANGO_DEBUG="0",
            DATABASE_URL=test_database_url(),
            UPSTASH_REDIS_URL=redis_url,
            CACHE_KEY_PREFIX=settings.CACHES["default"].get("KEY_PREFIX", "rankly"),
            BROKER_KEY_PREFIX=settings.BROKER_KEY_PREFIX,
            JOBS_LEASE_SECONDS=str(lease_seconds),
            # Codes are hashed with it: the worker must agree with the test process.
            SECRET_KEY=settings.SECRET_KEY,
            PYTHONUNBUFFERED="1",
            **extra_env,
        )
        self.log = tempfile.NamedTemporaryFile(prefix="rankly-worker-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            worker_command(), cwd=BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self) -> None:
        wait_for(lambda: "ready." in self.log_text(), what="the worker to start", log=self)

    def log_text(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def pool_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def kill_pool_process(self) -> None:
        for pid in self.pool_pids():
            os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole worker: nothing acknowledges or hands back its message."""
        with contextlib.suppress(FileNotFoundError):
            pids = self.pool_pids()
        self.process.kill()
        self.process.wait(timeout=10)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def wait_for(
    condition: Callable[[], bool], *, what: str, timeout: float = 60, log: Worker | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tail = "\n".join(log.log_text().splitlines()[-40:]) if log else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


@contextlib.contextmanager
def sending_to(redis_url: str) -> Iterator[None]:
    """Tasks sent from this process go to `redis_url` rather than running in process."""
    saved = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager, app.conf.broker_url = False, redis_url
    _connections_drop()
    try:
        yield
    finally:
        _connections_drop()
        app.conf.task_always_eager, app.conf.broker_url = saved


def _connections_drop() -> None:
    """Forget the broker connections made so far, so the next send connects to the new URL."""
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def running_worker(
    *, redis_url: str, lease_seconds: int = 3, extra_env: dict[str, str] | None = None
) -> Iterator[Worker]:
    worker = Worker(redis_url=redis_url, lease_seconds=lease_seconds, extra_env=extra_env or {})
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
