"""Turn DATABASE_URL into Django's database settings."""

from pathlib import Path
from typing import Any

import environ


def database_config(url: str, *, sqlite_path: Path) -> dict[str, Any]:
    """PostgreSQL when a URL is given, else the embedded SQLite file."""
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path}
    config = environ.Env.db_url_config(url)
    config["CONN_MAX_AGE"] = 0
    return config
