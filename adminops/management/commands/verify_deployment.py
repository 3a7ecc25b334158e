"""The post-deployment checklist, checked against this process's real configuration."""

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddIndex
from django_redis import get_redis_connection

from config.database import is_neon_pooler_host
from config.indexes import DropPerformanceIndex, PerformanceIndex
from config.mail import REFUSED_IN_PRODUCTION
from config.redis import redis_is_configured

EXPECTED_INDEX_COUNT = 28


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    # False: worth a warning, but production may run without it.
    required: bool = True


def performance_indexes() -> list[tuple[str, str]]:
    """(index name, table) of every PerformanceIndex the migrations declare and none drops."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    found = []
    dropped = set()
    for (app_label, _), migration in loader.disk_migrations.items():
        for operation in migration.operations:
            if isinstance(operation, PerformanceIndex):
                add_index = operation.state_operations[0]
                assert isinstance(add_index, AddIndex)
                model = apps.get_model(app_label, add_index.model_name)
                found.append((add_index.index.name, model._meta.db_table))
            elif isinstance(operation, DropPerformanceIndex):
                dropped.add(operation.index_name)
    return sorted((name, table) for name, table in found if name not in dropped)


def _check_redis() -> CheckResult:
    if not redis_is_configured():
        backend = settings.CACHES["default"]["BACKEND"]
        return CheckResult("Redis connected", False, f"the cache is {backend}, not Redis")
    try:
        get_redis_connection("default").ping()
    except Exception as error:
        return CheckResult("Redis connected", False, f"PING failed: {type(error).__name__}")
    return CheckResult("Redis connected", True, "PING answered through the cache")


def pooler_check(default: dict[str, Any]) -> CheckResult:
    """PostgreSQL through Django's pool, and through the pooler endpoint on a Neon host."""
    name = "Database pool and pooler endpoint"
    if default["ENGINE"] != "django.db.backends.postgresql":
        return CheckResult(name, False, "SQLite: production needs DATABASE_URL")
    host = default.get("HOST") or "localhost"
    pool = default.get("OPTIONS", {}).get("pool")
    if not pool:
        return CheckResult(name, False, f"{host} without Django's connection pool")
    size = f"pool max {pool['max_size']}"
    if host.endswith(".neon.tech"):
        if is_neon_pooler_host(host):
            return CheckResult(name, True, f"{host} ({size})")
        return CheckResult(name, False, f"{host} is a Neon host but not its -pooler endpoint")
    return CheckResult(name, True, f"{host} is not a Neon host; no pooler to use ({size})")


def _check_channel_layer() -> CheckResult:
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    # Either of channels-redis's layers (core or pub/sub) reaches every instance.
    ok = backend.startswith("channels_redis.")
    detail = backend if ok else f"{backend}: events do not reach other instances"
    return CheckResult("Channel layer is Redis", ok, detail)


def _check_rate_limit_store() -> CheckResult:
    alias = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    backend = settings.CACHES[alias]["BACKEND"]
    ok = redis_is_configured(alias)
    detail = f"cache '{alias}' is {'Redis' if ok else backend}"
    if not ok:
        detail += ": each instance counts on its own"
    return CheckResult("Rate-limit store shared", ok, detail)


def _check_migrations() -> CheckResult:
    try:
        executor = MigrationExecutor(connections["default"])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:
        return CheckResult("Migrations applied", False, f"cannot read: {type(error).__name__}")
    if plan:
        pending = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        return CheckResult("Migrations applied", False, f"{len(plan)} pending: {pending}")
    return CheckResult("Migrations applied", True, "none pending")


def _check_indexes() -> CheckResult:
    expected = performance_indexes()
    name = "Performance indexes present"
    try:
        connection = connections["default"]
        with connection.cursor() as cursor:
            present = {
                index
                for table in {table for _, table in expected}
                for index in connection.introspection.get_constraints(cursor, table)
            }
    except Exception as error:
        return CheckResult(name, False, f"cannot read: {type(error).__name__}")
    missing = [index for index, _ in expected if index not in present]
    found = len(expected) - len(missing)
    detail = f"{found} of {len(expected)}"
    if missing:
        return CheckResult(name, False, f"{detail}; missing: {', '.join(missing)}")
    if len(expected) != EXPECTED_INDEX_COUNT:
        return CheckResult(name, False, f"{detail}, but the design has {EXPECTED_INDEX_COUNT}")
    return CheckResult(name, True, detail)


def _check_email() -> CheckResult:
    name = "E-mail sends for real"
    if settings.EMAIL_CHOICE.problem:
        return CheckResult(name, False, settings.EMAIL_CHOICE.problem)
    backend = settings.EMAIL_BACKEND
    if backend in REFUSED_IN_PRODUCTION:
        return CheckResult(name, False, f"{backend}: sign-in codes go to the log")
    if backend == "django.core.mail.backends.smtp.EmailBackend":
        return CheckResult(name, True, f"SMTP {settings.EMAIL_HOST}:{settings.EMAIL_PORT}")
    return CheckResult(name, True, backend)


def _check_sentry() -> CheckResult:
    import sentry_sdk

    client = sentry_sdk.get_client()
    if not client.is_active():
        return CheckResult("Sentry on", False, "SENTRY_DSN is not set", required=False)
    environment = client.options.get("environment")
    release = client.options.get("release") or "unknown release"
    return CheckResult("Sentry on", True, f"environment {environment}, {release}", required=False)


def deployment_checks() -> list[CheckResult]:
    return [
        _check_redis(),
        pooler_check(settings.DATABASES["default"]),
        _check_channel_layer(),
        _check_rate_limit_store(),
        _check_migrations(),
        _check_indexes(),
        _check_email(),
        _check_sentry(),
    ]


class Command(BaseCommand):
    help = "Check this deployment against the post-deployment checklist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--production",
            action="store_true",
            help="Fail on a production requirement even outside a deployment.",
        )

    def handle(self, *args, **options) -> None:
        production = options["production"] or settings.IS_PRODUCTION
        mode = "production" if production else "development"
        self.stdout.write(f"Post-deployment verification ({mode} requirements)")
        results = deployment_checks()
        width = max(len(result.name) for result in results)
        for result in results:
            mark = "✅" if result.ok else ("❌" if result.required else "⚠️ ")
            self.stdout.write(f"  {mark} {result.name.ljust(width)}  {result.detail}")
        failed = [result.name for result in results if result.required and not result.ok]
        if not failed:
            self.stdout.write(self.style.SUCCESS("Every production requirement is met."))
            return
        summary = f"{len(failed)} production requirement(s) not met: {', '.join(failed)}"
        if production:
            raise CommandError(summary)
        self.stdout.write(self.style.WARNING(f"{summary} (fine in development)"))
