import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from config.checks import check_production_redis
from config.redis import RedisChoice, redis_cache_options, redis_choice, redis_log_startup


def test_development_uses_upstash_redis_url(monkeypatch):
    monkeypatch.setenv("UPSTASH_REDIS_URL", "redis://dev:6379/0")
    monkeypatch.setenv("UPSTASH_REDIS_URL_PROD", "rediss://prod:6379/0")
    assert redis_choice(production=False) == RedisChoice("redis://dev:6379/0", "development")
    assert redis_choice(production=True) == RedisChoice("rediss://prod:6379/0", "production")


def test_production_refuses_the_development_redis(monkeypatch):
    monkeypatch.setenv("UPSTASH_REDIS_URL", "rediss://default:pw@dev.upstash.io:6379")
    monkeypatch.setenv("UPSTASH_REDIS_URL_PROD", "rediss://default:pw@dev.upstash.io:6379")
    choice = redis_choice(production=True)
    assert choice.refused and choice.url == ""
    with override_settings(REDIS_CHOICE=choice):
        errors = check_production_redis(None)
    assert [e.id for e in errors] == ["rankly.redis.E001"]


def test_the_check_passes_when_production_has_its_own_redis():
    choice = RedisChoice("rediss://prod.upstash.io:6379", "production")
    with override_settings(REDIS_CHOICE=choice):
        assert check_production_redis(None) == []


def test_rediss_urls_verify_the_server_certificate_and_redis_urls_use_no_tls():
    tls = redis_cache_options(url="rediss://h:6379", socket_timeout=1.0, max_connections=8)
    plain = redis_cache_options(url="redis://h:6379", socket_timeout=1.0, max_connections=8)
    assert tls["CONNECTION_POOL_KWARGS"]["ssl_cert_reqs"] == "required"
    assert "ssl_cert_reqs" not in plain["CONNECTION_POOL_KWARGS"]
    assert plain["SOCKET_TIMEOUT"] == plain["SOCKET_CONNECT_TIMEOUT"] == 1.0


@pytest.mark.parametrize(
    ("choice", "line", "level"),
    [
        (RedisChoice("", "development"), "⚠️ UPSTASH_REDIS_URL not found", logging.WARNING),
        (
            RedisChoice("", "production"),
            "❌ CRITICAL: UPSTASH_REDIS_URL_PROD not found in production!",
            logging.CRITICAL,
        ),
        (
            RedisChoice("", "production", refused=True),
            "❌ CRITICAL: UPSTASH_REDIS_URL_PROD is the development Redis",
            logging.CRITICAL,
        ),
    ],
)
def test_startup_says_which_cache_is_used(caplog, choice, line, level):
    with override_settings(REDIS_CHOICE=choice), caplog.at_level(logging.INFO, "rankly.redis"):
        redis_log_startup()
    assert [(r.levelno, r.getMessage()[: len(line)]) for r in caplog.records] == [(level, line)]


@pytest.mark.redis
def test_startup_connects_to_redis_and_says_so(caplog):
    with caplog.at_level(logging.INFO, "rankly.redis"):
        redis_log_startup()
    assert [r.getMessage() for r in caplog.records] == [
        "🔌 Establishing Redis connection pool for development...",
        "✅ Redis connected successfully",
    ]


@pytest.mark.slow
def test_a_production_process_given_the_development_redis_fails_its_checks(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTASH", "DATABASE_URL"))}
    env.update(
        REPLIT_DEPLOYMENT="1",
        SECRET_KEY="production-secret-for-this-test",
        UPSTASH_REDIS_URL="redis://127.0.0.1:1/0",
        UPSTASH_REDIS_URL_PROD="redis://127.0.0.1:1/0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "rankly.redis.E001" in result.stderr
    assert "CRITICAL rankly.redis ❌ CRITICAL: UPSTASH_REDIS_URL_PROD is the development" in (
        result.stderr
    )


@pytest.mark.django_db
def test_a_session_read_is_a_cache_hit_and_survives_a_cache_flush():
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"
    session = SessionStore()
    session["cart"] = "headphones"
    session.create()

    with CaptureQueriesContext(connection) as queries:
        assert SessionStore(session.session_key)["cart"] == "headphones"
    assert len(queries) == 0

    cache.clear()
    assert SessionStore(session.session_key)["cart"] == "headphones"
