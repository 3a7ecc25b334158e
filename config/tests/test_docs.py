"""The docs tell the truth: the README's first session works as pasted on freshly seeded data,
its way into the Django admin works, and docs/api.md documents exactly the schema's operations."""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from config.tests.private_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
API_DOC = (ROOT / "docs" / "api.md").read_text()
DEV_HOST = "localhost:8000"
SERVED = "config.asgi:application"
# Configuration that would point the server at shared services instead of make run's defaults.
SERVICE_VARIABLES = ("DATABASE_URL", "DATABASE_REPLICA_URL", "UPSTASH_REDIS_URL", "EMAIL_URL")


def readme_block(marker: str) -> str:
    """The shell block that follows `<!-- marker -->` in the README."""
    match = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)```", README, re.DOTALL)
    assert match, f"the README has no shell block marked {marker}"
    return match.group(1)


def _server_env(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env.update(
        DJANGO_SETTINGS_MODULE="config.tests.readme_settings",
        RANKLY_README_DATABASE=str(database),
        PYTHONUNBUFFERED="1",
    )
    env.pop("REPLIT_DEPLOYMENT", None)
    return env


def _manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


def _wait_until_up(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server never answered /healthz:\n{log.read_text()}")


@pytest.fixture
def seeded_server(tmp_path):
    """A freshly migrated and seeded database served as `make run` serves it."""
    env = _server_env(tmp_path / "db.sqlite3")
    _manage("migrate", "--noinput", env=env)
    _manage("seed_demo", "--users", "40", env=env)
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "config.server", "-b", "127.0.0.1", "-p", str(port), SERVED],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, server, log)
        yield base, log
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_first_session_works_as_pasted_on_seeded_data(seeded_server, tmp_path):
    base, log = seeded_server
    host = base.removeprefix("http://")
    session = readme_block("first-session")
    live_feed = readme_block("live-feed").strip()
    assert session.count("\nCODE=123456\n") == 1
    # The code the reader copies from make run's console, taken from the same console here.
    from_console = f"CODE=$(grep -o 'sign-in code is [0-9]*' {log} | tail -n 1 | grep -o '[0-9]*$')"
    script = session.replace("\nCODE=123456\n", f"\n{from_console}\n").replace(DEV_HOST, host)
    watcher_out = tmp_path / "live.txt"
    with watcher_out.open("w") as out:
        watcher = subprocess.Popen(
            live_feed.replace(DEV_HOST, host),
            shell=True,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(2)
        # Any answer of 4xx or 5xx fails the script; the README's commands are otherwise run
        # as they are written.
        prelude = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n'
        ran = subprocess.run(
            ["bash", "-c", prelude + script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        deadline = time.monotonic() + 10
        while "ranking.submitted" not in watcher_out.read_text():
            assert time.monotonic() < deadline, watcher_out.read_text()
            time.sleep(0.2)
    finally:
        watcher.kill()
        watcher.wait(timeout=10)

    points = [int(p) for p in re.findall(r'"points_awarded":\s*(\d+)', ran.stdout)]
    assert points and points[0] > 0, ran.stdout
    assert re.search(r'"points":\s*[1-9]\d*', ran.stdout), ran.stdout
    assert '"current_length":1' in ran.stdout.replace(" ", ""), ran.stdout
    assert '"rank":' in ran.stdout, ran.stdout


@pytest.mark.django_db
def test_the_readme_way_into_the_admin_works(client, monkeypatch):
    command = re.search(r"manage\.py (createsuperuser --email (\S+))", README)
    assert command, "the README does not say how to make an admin"
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long enough password 42")
    from django.core.management import call_command

    call_command("createsuperuser", "--email", command.group(2), "--noinput")

    signed_in = client.post(
        "/admin/login/?next=/admin/",
        {"username": command.group(2), "password": "a long enough password 42"},
    )
    assert signed_in.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert get_user_model().objects.get(email=command.group(2)).is_superuser


def _documented_operations() -> set[tuple[str, str]]:
    headings = re.findall(r"^#+ `(GET|POST|PUT|PATCH|DELETE) (/\S*)`$", API_DOC, re.MULTILINE)
    return {(method, path) for method, path in headings}


@pytest.mark.django_db
def test_docs_api_md_documents_exactly_the_schemas_operations(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    in_schema = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }

    documented = _documented_operations()

    assert documented - in_schema == set(), "documented but not in the schema"
    assert in_schema - documented == set(), "in the schema but not documented"
