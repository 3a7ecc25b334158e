"""Two daphne processes sharing Redis and PostgreSQL enforce one combined limit."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from email.message import Message
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from config.tests.private_redis import free_port
from config.tests.ratelimit_windows import wait_out_a_closing_window
from config.tests.workers import connections_per_worker, stop_server
from config.tests.workers import start_server as start_worker_server

BASE_DIR = Path(__file__).resolve().parents[2]
DAPHNE = BASE_DIR / ".venv" / "bin" / "daphne"
STARTUP_TIMEOUT = 40

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def migrated_database_url() -> str:
    """The database pytest-django created and migrated, as a URL the servers can use."""
    db = settings.DATABASES["default"]
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def server_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("REPLIT_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.development",
        DATABASE_URL=migrated_database_url(),
        UPSTASH_REDIS_URL=os.environ["UPSTASH_REDIS_URL"],
        # Both servers share this run's counters and nothing left by an earlier run.
        CACHE_KEY_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
    )
    return env


def start_server(stack: ExitStack, env: dict[str, str]) -> str:
    port = free_port()
    process = subprocess.Popen(
        [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(stop_server, process)
    return f"http://127.0.0.1:{port}"


def wait_until_ready(base_url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base_url}/readiness-probe", timeout=2)
        except urllib.error.HTTPError:
            return  # any HTTP answer, here a 404, means Django is serving
        except OSError:
            time.sleep(0.2)
        else:
            return
    pytest.fail(f"{base_url} did not start within {STARTUP_TIMEOUT} s")


def sign_in_request(base_url: str) -> tuple[int, Message, dict]:
    """Status, headers (case-insensitive) and JSON body of one sign-in request."""
    request = urllib.request.Request(
        f"{base_url}/api/customer/email-login",
        data=json.dumps({"email": "shared@example.com"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_two_instances_share_one_sign_in_limit():
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    limit = settings.RATELIMIT_RATES["auth"][0]
    with ExitStack() as stack:
        first = start_server(stack, server_env())
        second = start_server(stack, server_env())
        deadline = time.monotonic() + STARTUP_TIMEOUT
        wait_until_ready(first, deadline)
        wait_until_ready(second, deadline)
        wait_out_a_closing_window()

        remaining = []
        for sent in range(limit):
            status, headers, _ = sign_in_request(first if sent % 2 == 0 else second)
            assert status == 202
            remaining.append(int(headers["X-RateLimit-Remaining"]))
        assert remaining == list(range(limit - 1, -1, -1))

        for server in (first, second):
            status, headers, body = sign_in_request(server)
            assert status == 429
            assert body["code"] == "rate_limited"
            assert int(headers["Retry-After"]) >= 1


def test_two_workers_on_one_port_share_one_sign_in_limit():
    """WEB_CONCURRENCY=2: requests alternate between the two workers on one port, pinned by
    their connections, and count against one limit."""
    limit = settings.RATELIMIT_RATES["auth"][0]
    port = free_port()
    process = start_worker_server(port=port, env=server_env(), processes=2)
    try:
        pinned = list(connections_per_worker(process, port=port, count=2).values())
        wait_out_a_closing_window()

        def sign_in(connection) -> tuple[int, Message]:
            connection.request(
                "POST",
                "/api/customer/email-login",
                body=json.dumps({"email": "shared@example.com"}),
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            return response.status, response.headers

        remaining = []
        for sent in range(limit):
            status, headers = sign_in(pinned[sent % 2])
            assert status == 202
            remaining.append(int(headers["X-RateLimit-Remaining"]))
        assert remaining == list(range(limit - 1, -1, -1))
        for connection in pinned:
            status, headers = sign_in(connection)
            assert status == 429
            assert int(headers["Retry-After"]) >= 1
    finally:
        stop_server(process)
