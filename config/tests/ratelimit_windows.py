"""Tests that count real sign-ins against the clock: a limit's window must not end among them."""

import time

from django.conf import settings
from django_ratelimit.core import _get_window


def wait_out_a_closing_window(client: str = "127.0.0.1", margin: int = 20) -> None:
    """The sign-in window of `client` ends at a second of its own every 15 minutes: when it
    ends within `margin` seconds, wait for the next one, so that the requests that follow are
    all counted in one window."""
    window_end = _get_window(client, settings.RATELIMIT_RATES["auth"][1])
    left = window_end - time.time()
    if left < margin:
        time.sleep(left + 1.5)
