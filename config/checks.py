"""System checks of the shared services (run by `manage.py check`, `migrate`, `runserver`)."""

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.caches)
def check_production_redis(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Production must not share the development Redis: it would pollute and leak both."""
    if not settings.REDIS_CHOICE.refused:
        return []
    return [
        checks.Error(
            "UPSTASH_REDIS_URL_PROD is the development Redis (it equals UPSTASH_REDIS_URL); "
            "production refuses it and runs on the in-memory cache.",
            hint="Create a separate Redis database for production and set its URL as "
            "UPSTASH_REDIS_URL_PROD.",
            id="rankly.redis.E001",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def check_production_email(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Production must send sign-in codes by real mail, never print or keep them."""
    problem = settings.EMAIL_CHOICE.problem
    if not problem:
        return []
    return [
        checks.Error(
            f"{problem}: no sign-in code can be sent.",
            hint="Set EMAIL_URL to your mail server, e.g. smtp+tls://user:password@host:587, "
            "and DEFAULT_FROM_EMAIL to an address it may send from.",
            id="rankly.email.E001",
        )
    ]
