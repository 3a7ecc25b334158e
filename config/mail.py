"""E-mail settings from `EMAIL_URL`, and the backends production refuses."""

from dataclasses import dataclass
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend

CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
# Both keep every message, sign-in codes included, inside the process or its log.
REFUSED_IN_PRODUCTION = {
    CONSOLE_BACKEND: "console",
    "django.core.mail.backends.locmem.EmailBackend": "locmem",
}
UNCONFIGURED_BACKEND = "config.mail.UnconfiguredEmailBackend"


@dataclass(frozen=True)
class EmailChoice:
    backend: str
    host: str = "localhost"
    port: int = 25
    user: str = ""
    password: str = ""
    use_tls: bool = False
    use_ssl: bool = False
    # Why production cannot send with this configuration; empty when it can.
    problem: str = ""


def email_choice(*, url: str, production: bool) -> EmailChoice:
    """The mail backend for EMAIL_URL. Development defaults to the console; production never."""
    if not url:
        if not production:
            return EmailChoice(backend=CONSOLE_BACKEND)
        return EmailChoice(
            backend=UNCONFIGURED_BACKEND, problem="EMAIL_URL is not set in production"
        )
    config: dict[str, Any] = environ.Env.email_url_config(url)
    backend = config["EMAIL_BACKEND"]
    if production and backend in REFUSED_IN_PRODUCTION:
        return EmailChoice(
            backend=UNCONFIGURED_BACKEND,
            problem=f"EMAIL_URL selects the {REFUSED_IN_PRODUCTION[backend]} backend in "
            "production, which would keep sign-in codes in the process or its log",
        )
    return EmailChoice(
        backend=backend,
        host=config.get("EMAIL_HOST") or "localhost",
        port=config.get("EMAIL_PORT") or 25,
        user=config.get("EMAIL_HOST_USER") or "",
        password=config.get("EMAIL_HOST_PASSWORD") or "",
        use_tls=bool(config.get("EMAIL_USE_TLS")),
        use_ssl=bool(config.get("EMAIL_USE_SSL")),
    )


class UnconfiguredEmailBackend(BaseEmailBackend):
    """Production without a real mail backend: refuse to send rather than print the message."""

    def send_messages(self, email_messages: Any) -> int:
        raise ImproperlyConfigured("No mail backend is configured: set EMAIL_URL.")
