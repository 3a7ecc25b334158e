"""The fault suite's servers: development settings with DEBUG off and the load's limits raised.

Only the `auth` group keeps its real limit, so the suite can watch rate limiting work while the
load (one client address) runs unthrottled through the other groups.
"""

from config.settings.development import *  # noqa: F403

DEBUG = False
RATELIMIT_RATES = {
    group: rate if group == "auth" else (10**9, 60)
    for group, rate in RATELIMIT_RATES.items()  # noqa: F405
}
