"""Settings of the benchmark's server: development with DEBUG off and the rate limits raised.

Everything else (PostgreSQL, Redis, middleware, caches) is what `config.settings.development`
builds from the environment, so the bench measures the code as it runs.
"""

from config.settings.development import *  # noqa: F403

DEBUG = False
# One load generator on one IP would be refused within a second at the real limits. Raised
# rather than switched off, so every request still pays for being counted in Redis.
RATELIMIT_RATES = {group: (10**9, 60) for group in RATELIMIT_RATES}  # noqa: F405
