import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.database import (
    POOLER_LOG_LINE,
    PoolSettings,
    database_config,
    database_startup_line,
    databases_config,
    neon_pooler_host,
    neon_pooler_url,
)

ROOT = Path(__file__).resolve().parents[2]
SQLITE = Path("/tmp/unused.sqlite3")


@pytest.mark.parametrize(
    ("host", "pooled"),
    [
        ("ep-x-123.us-east-2.aws.neon.tech", "ep-x-123-pooler.us-east-2.aws.neon.tech"),
        ("ep-x-123.c-2.us-east-2.aws.neon.tech", "ep-x-123-pooler.c-2.us-east-2.aws.neon.tech"),
        ("ep-x-123.eu-central-1.aws.neon.tech", "ep-x-123-pooler.eu-central-1.aws.neon.tech"),
        ("ep-x-123.us-east-1.aws.neon.tech", "ep-x-123-pooler.us-east-1.aws.neon.tech"),
        ("ep-x-123.us-west-2.aws.neon.tech", "ep-x-123-pooler.us-west-2.aws.neon.tech"),
        ("ep-x-123.ap-southeast-1.aws.neon.tech", "ep-x-123-pooler.ap-southeast-1.aws.neon.tech"),
        (
            "ep-x-123.c-3.eu-central-1.aws.neon.tech",
            "ep-x-123-pooler.c-3.eu-central-1.aws.neon.tech",
        ),
        ("ep-x-123.eastus2.azure.neon.tech", "ep-x-123-pooler.eastus2.azure.neon.tech"),
        (
            "ep-x-123.germanywestcentral.azure.neon.tech",
            "ep-x-123-pooler.germanywestcentral.azure.neon.tech",
        ),
        (
            "ep-cool-darkness-a1b2c3d4.us-east-2.aws.neon.tech",
            "ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech",
        ),
    ],
)
def test_neon_endpoint_host_moves_to_its_pooler_in_every_region_and_cell(host, pooled):
    assert neon_pooler_host(host) == pooled


@pytest.mark.parametrize(
    "host",
    [
        "ep-x-123-pooler.us-east-2.aws.neon.tech",
        "ep-x-123-pooler.c-2.us-east-2.aws.neon.tech",
        "ep-x-123-pooler.eastus2.azure.neon.tech",
        "127.0.0.1",
        "localhost",
        "db.example.com",
        "ep-x-123.example.com",
        "neon.tech.example.com",
    ],
)
def test_pooled_and_other_hosts_stay_as_they_are(host):
    assert neon_pooler_host(host) == host


def test_url_rewrite_keeps_credentials_port_database_and_parameters():
    url = (
        "postgresql://alex:p%40ss@ep-x-123.us-east-1.aws.neon.tech:5432/rankly"
        "?sslmode=require&channel_binding=require"
    )
    assert neon_pooler_url(url) == (
        "postgresql://alex:p%40ss@ep-x-123-pooler.us-east-1.aws.neon.tech:5432/rankly"
        "?sslmode=require&channel_binding=require"
    )


def test_non_neon_url_is_returned_unchanged():
    url = "postgres://postgres@127.0.0.1:5432/rankly"
    assert neon_pooler_url(url) == url


def test_neon_url_gets_the_pool_and_nothing_the_pooler_cannot_keep():
    config = database_config(
        "postgres://u:p@ep-x-123.c-2.us-east-2.aws.neon.tech/rankly?sslmode=require",
        sqlite_path=SQLITE,
        pool=PoolSettings(max_size=20, max_idle=30, timeout=5),
    )
    assert config["HOST"] == "ep-x-123-pooler.c-2.us-east-2.aws.neon.tech"
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["OPTIONS"]["pool"] == {
        "min_size": 2,
        "max_size": 20,
        "max_idle": 30,
        "timeout": 5,
    }
    assert config["OPTIONS"]["connect_timeout"] == 5
    assert config["OPTIONS"]["sslmode"] == "require"
    assert config["OPTIONS"]["prepare_threshold"] is None
    assert config["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert config["CONN_MAX_AGE"] == 0
    assert config["CONN_HEALTH_CHECKS"] is True


def test_direct_postgres_keeps_server_side_cursors():
    config = database_config(
        "postgres://postgres@127.0.0.1:5432/rankly", sqlite_path=SQLITE, pool=PoolSettings()
    )
    assert config["OPTIONS"]["pool"]["max_size"] == 20
    assert "DISABLE_SERVER_SIDE_CURSORS" not in config


def test_pool_never_starts_larger_than_its_maximum():
    config = database_config(
        "postgres://postgres@127.0.0.1/rankly", sqlite_path=SQLITE, pool=PoolSettings(max_size=1)
    )
    assert config["OPTIONS"]["pool"]["min_size"] == 1


def test_no_url_means_the_embedded_sqlite_file():
    config = database_config("", sqlite_path=SQLITE, pool=PoolSettings())
    assert config == {"ENGINE": "django.db.backends.sqlite3", "NAME": SQLITE}


def _startup(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps({'databases': settings.DATABASES, "
        "'routers': settings.DATABASE_ROUTERS}, default=str))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DB_POOL"))}
    clean.pop("REPLIT_DEPLOYMENT", None)
    clean["DJANGO_SETTINGS_MODULE"] = "config.settings.development"
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.mark.slow
def test_settings_read_pool_and_replica_from_the_environment_and_log_the_pooler_once():
    result = _startup(
        {
            "DATABASE_URL": "postgres://u:p@ep-x-123.eu-central-1.aws.neon.tech/rankly",
            "DATABASE_REPLICA_URL": "postgres://u:p@ep-y-456.eu-central-1.aws.neon.tech/rankly",
            "DB_POOL_MAX_SIZE": "7",
            "DB_POOL_MAX_IDLE": "11",
            "DB_POOL_TIMEOUT": "9",
        }
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    default, replica = loaded["databases"]["default"], loaded["databases"]["replica"]
    assert default["HOST"] == "ep-x-123-pooler.eu-central-1.aws.neon.tech"
    assert default["OPTIONS"]["pool"] == {
        "min_size": 2,
        "max_size": 7,
        "max_idle": 11,
        "timeout": 9,
    }
    assert replica["HOST"] == "ep-y-456-pooler.eu-central-1.aws.neon.tech"
    assert loaded["routers"] == ["config.db_router.ReplicaRouter"]
    assert result.stderr.count(POOLER_LOG_LINE) == 1


def test_without_a_replica_url_there_is_only_default():
    databases = databases_config(
        url="postgres://postgres@127.0.0.1:5432/rankly",
        replica_url="",
        sqlite_path=SQLITE,
        pool=PoolSettings(),
    )
    assert set(databases) == {"default"}
    assert POOLER_LOG_LINE not in database_startup_line(databases)


def test_the_replica_mirrors_default_in_tests_and_is_named_in_the_startup_line():
    databases = databases_config(
        url="postgres://u:p@ep-x-123.us-east-2.aws.neon.tech/rankly",
        replica_url="postgres://u:p@ep-y-456.us-east-2.aws.neon.tech/rankly",
        sqlite_path=SQLITE,
        pool=PoolSettings(),
    )
    assert databases["replica"]["TEST"] == {"MIRROR": "default"}
    assert database_startup_line(databases).startswith(POOLER_LOG_LINE)
    assert "read replica" in database_startup_line(databases)
