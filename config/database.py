"""Turn DATABASE_URL (and DATABASE_REPLICA_URL) into Django's database settings.

PostgreSQL goes through Django's psycopg 3 connection pool. A Neon host is rewritten to its
pooler endpoint, behind which server-side cursors and prepared statements cannot work.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import environ

POOLER_LOG_LINE = "💾 Database connection pool configured with pooler endpoint"

# The endpoint id is a Neon host's first label: ep-<words>-<id>[-pooler].<region...>.neon.tech
_NEON_HOST = re.compile(
    r"^(?P<endpoint>ep-[a-z0-9-]+?)(?P<pooler>-pooler)?(?P<rest>\.[a-z0-9.-]+\.neon\.tech)$"
)


@dataclass(frozen=True)
class PoolSettings:
    min_size: int = 2
    max_size: int = 20
    max_idle: float = 30
    timeout: float = 5


def neon_pooler_host(host: str) -> str:
    """The pooler host of a Neon endpoint host; any other host comes back unchanged."""
    match = _NEON_HOST.match(host.lower())
    if match is None or match["pooler"]:
        return host
    return f"{match['endpoint']}-pooler{match['rest']}"


def is_neon_pooler_host(host: str) -> bool:
    match = _NEON_HOST.match(host.lower())
    return bool(match and match["pooler"])


def neon_pooler_url(url: str) -> str:
    """DATABASE_URL with a Neon host moved to its pooler endpoint; credentials, port and
    query parameters (sslmode, options, ...) are kept as they were."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    pooled = neon_pooler_host(host)
    if pooled == host:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    # hostname is lower-cased by urlsplit; replace the host as written, whatever its case.
    start = hostport.lower().index(host)
    hostport = hostport[:start] + pooled + hostport[start + len(host) :]
    netloc = f"{userinfo}@{hostport}" if userinfo else hostport
    return urlunsplit(parts._replace(netloc=netloc))


def database_config(url: str, *, sqlite_path: Path, pool: PoolSettings) -> dict[str, Any]:
    """PostgreSQL through the pool when a URL is given, else the embedded SQLite file."""
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path}
    config: dict[str, Any] = environ.Env.db_url_config(neon_pooler_url(url))
    options = config.setdefault("OPTIONS", {})
    options["pool"] = {
        "min_size": min(pool.min_size, pool.max_size),
        "max_size": pool.max_size,
        "max_idle": pool.max_idle,
        "timeout": pool.timeout,
    }
    options.setdefault("connect_timeout", 5)
    # The pool holds the connections; Django refuses persistent connections on top of it.
    config["CONN_MAX_AGE"] = 0
    config["CONN_HEALTH_CHECKS"] = True
    if is_neon_pooler_host(config.get("HOST", "")):
        # PgBouncer in transaction mode: a cursor or a prepared statement may not survive
        # to the next statement, which may run on another server connection.
        config["DISABLE_SERVER_SIDE_CURSORS"] = True
        options["prepare_threshold"] = None
    return config


def databases_config(
    *, url: str, replica_url: str, sqlite_path: Path, pool: PoolSettings
) -> dict[str, dict[str, Any]]:
    """`default`, plus `replica` when a read replica URL is given (PostgreSQL only)."""
    databases = {"default": database_config(url, sqlite_path=sqlite_path, pool=pool)}
    if replica_url:
        replica = database_config(replica_url, sqlite_path=sqlite_path, pool=pool)
        # Tests run against one database: the replica is the test database itself.
        replica["TEST"] = {"MIRROR": "default"}
        databases["replica"] = replica
    return databases


def database_startup_line(databases: dict[str, dict[str, Any]]) -> str:
    """What the process logs once at startup about its database."""
    default = databases["default"]
    if default["ENGINE"] != "django.db.backends.postgresql":
        return "💾 Database: SQLite file (embedded default, no connection pool)"
    max_size = default["OPTIONS"]["pool"]["max_size"]
    replica = " and a read replica" if "replica" in databases else ""
    if is_neon_pooler_host(default.get("HOST", "")):
        return f"{POOLER_LOG_LINE} (max {max_size} connections{replica})"
    return (
        f"💾 Database connection pool configured for {default.get('HOST') or 'localhost'} "
        f"(max {max_size} connections{replica})"
    )
