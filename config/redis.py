"""Which Redis this process uses: the development or the production database, or none."""

import os
from urllib.parse import urlparse


def redis_url(*, production: bool) -> str:
    """UPSTASH_REDIS_URL_PROD in production, UPSTASH_REDIS_URL elsewhere; "" when unset."""
    name = "UPSTASH_REDIS_URL_PROD" if production else "UPSTASH_REDIS_URL"
    return os.environ.get(name, "").strip()


def redis_db(url: str) -> int:
    """The database number of a redis:// URL (path /N or ?db=N), 0 when absent."""
    parsed = urlparse(url)
    for part in parsed.query.split("&"):
        if part.startswith("db="):
            return int(part[3:])
    path = parsed.path.strip("/")
    return int(path) if path.isdigit() else 0
