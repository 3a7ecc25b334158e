from django.apps import AppConfig


class RanklyConfig(AppConfig):
    """The project's plumbing: startup log lines and system checks of the shared services."""

    name = "config"
    verbose_name = "Rankly"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from config import checks  # noqa: F401  (registers the checks)
        from config.redis import redis_log_startup

        # Apps register their cache warmers in caching.py or selectors.py (see WARMERS).
        autodiscover_modules("caching", "selectors")
        redis_log_startup()
