"""Process start-up for the plumbing in config/: checks, warmers, monitoring, start-up log lines."""

import logging

from django.apps import AppConfig
from django.conf import settings
from django.core.signals import setting_changed
from django.db.backends.signals import connection_created

logger = logging.getLogger("rankly")


class RanklyConfig(AppConfig):
    name = "config"
    verbose_name = "Rankly"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from config import checks  # noqa: F401  (registers the checks)
        from config.database import database_startup_line
        from config.fastpath import request_settings_forget
        from config.metrics import slow_query_log_install
        from config.redis import loop_clients_forget, redis_log_startup
        from config.sentry import sentry_init

        # Apps register their cache warmers in caching.py or selectors.py (see WARMERS), and
        # their Celery tasks in tasks.py: a web process sends them by name.
        autodiscover_modules("caching", "selectors", "tasks")
        redis_log_startup()
        if settings.EMAIL_CHOICE.problem:
            logger.critical(
                "❌ CRITICAL: %s: no sign-in code can be sent", settings.EMAIL_CHOICE.problem
            )
        connection_created.connect(slow_query_log_install, dispatch_uid="rankly-slow-query-log")
        setting_changed.connect(loop_clients_forget, dispatch_uid="rankly-loop-clients")
        setting_changed.connect(request_settings_forget, dispatch_uid="rankly-fast-path-settings")
        logger.info(database_startup_line(settings.DATABASES))
        if sentry_init(
            dsn=settings.SENTRY_DSN,
            environment=settings.SENTRY_ENVIRONMENT,
            traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        ):
            logger.info("🛰️ Sentry monitoring on (environment %s)", settings.SENTRY_ENVIRONMENT)
        else:
            logger.info("Sentry monitoring off: SENTRY_DSN is not set")
