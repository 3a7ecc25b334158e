"""Which Redis this process uses: the development or the production database, or none."""

import os


def redis_url(*, production: bool) -> str:
    """UPSTASH_REDIS_URL_PROD in production, UPSTASH_REDIS_URL elsewhere; "" when unset."""
    name = "UPSTASH_REDIS_URL_PROD" if production else "UPSTASH_REDIS_URL"
    return os.environ.get(name, "").strip()
