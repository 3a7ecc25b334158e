from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings

from adminops.management.commands.verify_deployment import performance_indexes, pooler_check
from config.mail import email_choice

SINGLE_PROCESS = {
    "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    "CHANNEL_LAYERS": {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
}


def _verify(*args: str) -> str:
    out = StringIO()
    call_command("verify_deployment", *args, stdout=out)
    return out.getvalue()


def _line(output: str, name: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("  ") and name in line]
    return line


def test_the_28_indexes_are_read_from_the_migrations():
    indexes = performance_indexes()
    assert len(indexes) == 28
    assert len({name for name, _ in indexes}) == 28


@override_settings(**SINGLE_PROCESS)
def test_a_single_process_setup_fails_production_and_names_what_is_missing(db):
    out = StringIO()
    with pytest.raises(CommandError, match="Redis connected"):
        call_command("verify_deployment", "--production", stdout=out)
    output = out.getvalue()
    assert "❌ Redis connected" in output
    assert "❌ Channel layer is Redis" in output
    assert "❌ Rate-limit store shared" in output
    assert "✅ Migrations applied" in output
    assert "28 of 28" in _line(output, "Performance indexes present")


@override_settings(**SINGLE_PROCESS)
def test_development_reports_the_same_failures_without_failing(db):
    output = _verify()
    assert "❌ Redis connected" in output
    assert "fine in development" in output


@override_settings(EMAIL_CHOICE=email_choice(url="consolemail://", production=True))
def test_production_fails_on_a_mail_backend_that_keeps_codes_in_the_log(db):
    out = StringIO()
    with pytest.raises(CommandError, match="E-mail sends for real"):
        call_command("verify_deployment", "--production", stdout=out)
    line = _line(out.getvalue(), "E-mail sends for real")
    assert line.lstrip().startswith("❌")
    assert "console backend" in line


@override_settings(EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend")
def test_the_console_backend_fails_the_mail_check(db):
    line = _line(_verify(), "E-mail sends for real")
    assert line.lstrip().startswith("❌")
    assert "sign-in codes go to the log" in line


@override_settings(
    EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
    EMAIL_HOST="mail.example.com",
    EMAIL_PORT=587,
)
def test_an_smtp_server_passes_the_mail_check(db):
    line = _line(_verify(), "E-mail sends for real")
    assert line.lstrip().startswith("✅")
    assert "SMTP mail.example.com:587" in line


def test_a_missing_index_is_named(db):
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX usersession_user_seen")
    output = _verify()
    line = _line(output, "Performance indexes present")
    assert line.lstrip().startswith("❌")
    assert "27 of 28; missing: usersession_user_seen" in line


def test_an_unapplied_migration_is_reported(db):
    (app, name) = MigrationLoader(None).graph.leaf_nodes("accounts")[0]
    MigrationRecorder.Migration.objects.filter(app=app, name=name).delete()
    line = _line(_verify(), "Migrations applied")
    assert line.lstrip().startswith("❌")
    assert f"{app}.{name}" in line


def _postgres(host: str, pool: dict | None) -> dict:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": host,
        "OPTIONS": {"pool": pool} if pool else {},
    }


def test_a_neon_host_outside_the_pooler_fails():
    result = pooler_check(_postgres("ep-x-123.us-east-2.aws.neon.tech", {"max_size": 20}))
    assert not result.ok
    assert "not its -pooler endpoint" in result.detail


def test_the_neon_pooler_with_the_pool_passes():
    result = pooler_check(_postgres("ep-x-123-pooler.us-east-2.aws.neon.tech", {"max_size": 20}))
    assert result.ok
    assert result.detail == "ep-x-123-pooler.us-east-2.aws.neon.tech (pool max 20)"


def test_postgres_without_the_pool_fails():
    assert not pooler_check(_postgres("ep-x-123-pooler.us-east-2.aws.neon.tech", None)).ok


def test_sqlite_fails_the_database_requirement():
    config = {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}
    assert not pooler_check(config).ok


@pytest.mark.postgres
@pytest.mark.redis
@override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend")
def test_postgres_and_redis_meet_every_production_requirement(db):
    output = _verify("--production")
    for name in (
        "Redis connected",
        "Database pool and pooler endpoint",
        "Channel layer is Redis",
        "Rate-limit store shared",
        "Migrations applied",
        "Performance indexes present",
        "E-mail sends for real",
    ):
        assert _line(output, name).lstrip().startswith("✅"), output
    assert "Every production requirement is met." in output
