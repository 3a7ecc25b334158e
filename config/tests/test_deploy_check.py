import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run_in_production(args: list[str], **env_overrides: str) -> subprocess.CompletedProcess:
    """Python with production settings and a clean environment, in a fresh process."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UPSTASH_", "DATABASE_", "DJANGO_", "REPLIT_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        REPLIT_DEPLOYMENT="1",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="rankly.example.com",
        **env_overrides,
    )
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def check_deploy(**env_overrides: str) -> subprocess.CompletedProcess:
    return run_in_production(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env_overrides
    )


def test_production_with_redis_passes_every_deploy_check_silencing_only_the_backend_path():
    # The check only reads the settings; nothing listens on this port.
    result = check_deploy(
        UPSTASH_REDIS_URL_PROD="redis://127.0.0.1:1/0", EMAIL_URL="smtp+tls://mail.example.com:587"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Only django_ratelimit.W001: it names django-redis's class path, not its subclass.
    assert "System check identified no issues (1 silenced)." in output


@pytest.mark.parametrize(
    ("email_url", "problem"),
    [
        ("", "EMAIL_URL is not set in production"),
        ("consolemail://", "EMAIL_URL selects the console backend"),
        ("memorymail://", "EMAIL_URL selects the locmem backend"),
    ],
)
def test_production_without_a_real_mail_server_fails_the_deploy_check_and_logs_critical(
    email_url, problem
):
    env = {"EMAIL_URL": email_url} if email_url else {}
    result = check_deploy(UPSTASH_REDIS_URL_PROD="redis://127.0.0.1:1/0", **env)
    assert result.returncode != 0
    assert "rankly.email.E001" in result.stderr
    assert problem in result.stderr
    assert f"CRITICAL rankly ❌ CRITICAL: {problem}" in result.stderr


def test_production_without_redis_still_warns_that_limits_are_per_instance():
    result = check_deploy(EMAIL_URL="smtp://mail.example.com:25")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "django_ratelimit.W001" in output
    assert "LocMemCache" in output
    assert "security." not in output


PROXY_PROBE = """
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="rankly.example.com")
plain = client.get("/no-such-page", HTTP_X_FORWARDED_PROTO="http")
tls = client.get("/no-such-page", HTTP_X_FORWARDED_PROTO="https")
print(plain.status_code, plain.get("Location"))
print(tls.status_code, tls.get("Strict-Transport-Security"))
"""


def test_production_redirects_plain_http_seen_by_the_proxy_and_sends_hsts():
    result = run_in_production(["-c", PROXY_PROBE])
    assert result.returncode == 0, result.stderr
    plain, tls = result.stdout.strip().splitlines()[-2:]
    assert plain == "301 https://rankly.example.com/no-such-page"
    assert tls.startswith("404 max-age=31536000; includeSubDomains; preload")
