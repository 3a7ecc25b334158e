"""Error and performance monitoring with Sentry: on when SENTRY_DSN is set, off otherwise."""

import os
import subprocess
from pathlib import Path

import sentry_sdk
from asgiref.typing import ASGIApplication
from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.redis import RedisIntegration

# Where deployment platforms publish the commit being run.
RELEASE_ENV_VARS = ("SENTRY_RELEASE", "SOURCE_VERSION", "REPLIT_GIT_COMMIT", "GIT_COMMIT")


def sentry_release(*, cwd: Path | None = None) -> str | None:
    """The commit this process runs, from the environment or `git rev-parse`; None if unknown."""
    for name in RELEASE_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=2,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def sentry_init(
    *, dsn: str, environment: str, traces_sample_rate: float, release: str | None = None
) -> bool:
    """Start the Sentry client when a DSN is given; True when it is on. The release defaults to
    the running commit."""
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or sentry_release(),
        traces_sample_rate=traces_sample_rate,
        # The successor of send_default_pii=False (deprecated in this SDK): no user identity,
        # and no request bodies, which carry e-mail addresses and login codes.
        # Frames' variables and queue data would carry task arguments (sign-in codes among them).
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "stack_frame_variables": False,
            "queues": False,
        },
        # Django covers HTTP through its ASGI handler (WebSockets: `sentry_asgi_app`, applied
        # in config/asgi.py); Redis covers the cache and channel-layer calls made through
        # redis-py; Celery reports the failures of background tasks, their arguments withheld.
        integrations=[DjangoIntegration(), RedisIntegration(), CeleryIntegration()],
    )
    return True


def sentry_asgi_app(app: ASGIApplication) -> ASGIApplication:
    """An ASGI app (the WebSocket router) with its exceptions reported to Sentry when it is on."""
    if not sentry_sdk.get_client().is_active():
        return app
    return SentryAsgiMiddleware(app)
