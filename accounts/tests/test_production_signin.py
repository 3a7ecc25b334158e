"""Production tested as production: the Procfile's release and web lines, real mail, no leaks."""

import os
import secrets
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings

from config.tests.faults.harness import database_url_named, web_command
from config.tests.private_redis import free_port
from config.tests.smtp import smtp_server
from config.tests.worker import worker_command

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def services_database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/postgres"


def production_env(*, database_url: str, email_url: str, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REPLIT_", "UPSTASH_", "DJANGO_", "DATABASE_", "EMAIL_", "SENTRY_"))
    }
    env.update(
        REPLIT_DEPLOYMENT="1",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=database_url,
        UPSTASH_REDIS_URL_PROD=os.environ["UPSTASH_REDIS_URL"],
        # This run's own keys: rate-limit counts of earlier runs do not carry over.
        CACHE_KEY_PREFIX=f"rankly-prodtest-{uuid.uuid4().hex[:8]}",
        EMAIL_URL=email_url,
        ALLOWED_HOSTS="127.0.0.1",
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    return env


def release_command() -> list[str]:
    line = (ROOT / "Procfile").read_text().split("release:", 1)[1].splitlines()[0]
    command = shlex.split(line)
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


@pytest.fixture
def production_database():
    admin_url = services_database_url()
    name = f"{settings.DATABASES['default']['NAME']}_production"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url_named(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_production_mails_the_sign_in_code_and_never_logs_it(production_database, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The platform's proxy terminates TLS and says so; production redirects plain HTTP.
    https = {"X-Forwarded-Proto": "https"}
    log_path = tmp_path / "web.log"
    worker_log_path = tmp_path / "worker.log"
    with smtp_server() as mailbox:
        env = production_env(database_url=production_database, email_url=mailbox.url, port=port)
        release = subprocess.run(
            release_command(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert release.returncode == 0, release.stderr[-3000:]
        with log_path.open("wb") as log, worker_log_path.open("wb") as worker_log:
            web = subprocess.Popen(
                web_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            # Production with Redis queues the e-mail: the Procfile's worker sends it.
            worker = subprocess.Popen(
                worker_command(), cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT
            )
            try:
                with httpx.Client(base_url=url, headers=https, timeout=10) as client:
                    for _ in range(200):
                        assert web.poll() is None, log_path.read_text()
                        try:
                            if client.get("/healthz").status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        time.sleep(0.1)
                    asked = client.post(
                        "/api/customer/email-login", json={"email": "ada@example.com"}
                    )
                    assert asked.status_code == 202, asked.text
                    code = mailbox.code_for("ada@example.com", timeout=60)
                    signed_in = client.post(
                        "/api/customer/email-login/verify",
                        json={"email": "ada@example.com", "code": code},
                    )
                    assert signed_in.status_code == 200, signed_in.text
                    token = signed_in.json()["token"]
                    me = client.get("/api/customer/me", headers={"Authorization": f"Token {token}"})
                    assert me.json()["email"] == "ada@example.com"
                    # The public schema holds the customer API only.
                    schema = client.get("/api/schema/?format=json").json()
                    assert "/api/customer/me" in schema["paths"]
                    assert not [p for p in schema["paths"] if p.startswith("/api/admin/")]
                    # A client's Daphne-Root-Path does not move the page's links.
                    moved = client.get("/admin/", headers={"Daphne-Root-Path": "/x"})
                    assert moved.headers["Location"].startswith("/admin/login/")
                    assert "script-src 'self'" in moved.headers["Content-Security-Policy"]
            finally:
                for process in (web, worker):
                    process.terminate()
                    try:
                        process.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        process.kill()
    output = release.stdout + release.stderr + log_path.read_text(errors="replace")
    output += worker_log_path.read_text(errors="replace")
    assert "/api/customer/email-login" in output, output
    assert "CRITICAL" not in output, output
    assert code not in output, output
