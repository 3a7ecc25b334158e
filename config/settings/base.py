"""Settings shared by every environment. The environment is read once, through `env`."""

import hashlib
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from config.database import PoolSettings, databases_config
from config.mail import email_choice
from config.redis import redis_cache_options, redis_choice, redis_db

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# --- Core -----------------------------------------------------------------------------------
DEBUG = False
IS_PRODUCTION = env.str("REPLIT_DEPLOYMENT", default="") == "1"
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Apps -----------------------------------------------------------------------------------
DJANGO_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "django_ratelimit",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
]
LOCAL_APPS = [
    "config.apps.RanklyConfig",
    "accounts",
    "products",
    "rankings",
    "gamification",
    "adminops",
    "realtime",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # Outermost, so that the latency it records covers every other middleware.
    "config.metrics.MetricsMiddleware",
    # Before anything reads the body, so an oversized one is refused in the API's shape.
    "config.api.ApiErrorsAsJsonMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the path or the query: a NUL would reach the database as a 500.
    "config.request_guard.ControlCharacterMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    # After authentication: the admin API's employee rule needs the session user. The chain
    # runs in sync mode, as one call on the request's worker thread (config.handlers).
    "config.ratelimit.RateLimitMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# PostgreSQL through Django's psycopg pool (a Neon host via its -pooler endpoint); SQLite else.
DATABASE_URL = env.str("DATABASE_URL", default="")
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
DB_POOL = PoolSettings(
    min_size=env.int("DB_POOL_MIN_SIZE", default=2),
    max_size=env.int("DB_POOL_MAX_SIZE", default=20),
    max_idle=env.float("DB_POOL_MAX_IDLE", default=30),
    timeout=env.float("DB_POOL_TIMEOUT", default=5),
)
DATABASES = databases_config(
    url=DATABASE_URL,
    replica_url=DATABASE_REPLICA_URL,
    sqlite_path=BASE_DIR / "db.sqlite3",
    pool=DB_POOL,
)
# Only reads inside config.db_router.replica_reads() go to the replica.
DATABASE_ROUTERS = ["config.db_router.ReplicaRouter"] if "replica" in DATABASES else []

# --- Requests -------------------------------------------------------------------------------
# At most this many requests run Django's middleware and view at once per process
# (config.handlers); the rest wait on the event loop without a thread. 0: no limit. Fewer
# threads contend less for the GIL: measured in docs/operations.md#deployment.
REQUEST_THREADS = env.int("REQUEST_THREADS", default=4)
if REQUEST_THREADS < 0:
    raise ImproperlyConfigured(
        f"REQUEST_THREADS must be 0 (no limit) or more, not {REQUEST_THREADS}"
    )

# --- Users and sessions ---------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/admin/login/"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 30
LOGIN_CODE_TTL_SECONDS = 10 * 60
LOGIN_CODE_MAX_ATTEMPTS = 5
# Codes per address that work at once: the newest ones, so a stranger cannot cancel yours.
LOGIN_CODE_LIVE_MAX = 3
# Wrong codes per address, from every client together, in a sliding window.
LOGIN_FAILURES_PER_ADDRESS = (10, timedelta(minutes=15))

# --- E-mail ---------------------------------------------------------------------------------
# EMAIL_URL in django-environ's form (smtp+tls://user:password@host:587). Development without
# it prints mail on the console; production refuses the console and locmem (config.mail).
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Rankly <no-reply@rankly.local>")
EMAIL_URL = env.str("EMAIL_URL", default="")
EMAIL_CHOICE = email_choice(url=EMAIL_URL, production=IS_PRODUCTION)
EMAIL_BACKEND = EMAIL_CHOICE.backend
EMAIL_HOST = EMAIL_CHOICE.host
EMAIL_PORT = EMAIL_CHOICE.port
EMAIL_HOST_USER = EMAIL_CHOICE.user
EMAIL_HOST_PASSWORD = EMAIL_CHOICE.password
EMAIL_USE_TLS = EMAIL_CHOICE.use_tls
EMAIL_USE_SSL = EMAIL_CHOICE.use_ssl
# A mail server that hangs fails the sign-in request instead of holding its worker.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# --- Redis: cache, sessions and channel layer ----------------------------------------------
REDIS_CHOICE = redis_choice(production=IS_PRODUCTION)
REDIS_URL = REDIS_CHOICE.url
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)
REDIS_POOL_MAX_SIZE = env.int("REDIS_POOL_MAX_SIZE", default=32)
REDIS_BREAKER_COOLDOWN = env.float("REDIS_BREAKER_COOLDOWN", default=5.0)
SILENCED_SYSTEM_CHECKS: list[str] = []
CACHES: dict[str, dict[str, Any]]
CHANNEL_LAYERS: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache_backend.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="rankly"),
            "OPTIONS": {
                **redis_cache_options(
                    url=REDIS_URL,
                    socket_timeout=REDIS_SOCKET_TIMEOUT,
                    max_connections=REDIS_POOL_MAX_SIZE,
                ),
                "BREAKER_COOLDOWN": REDIS_BREAKER_COOLDOWN,
            },
        }
    }
    # django-ratelimit knows django-redis only by its class path; ResilientRedisCache is a
    # subclass, with django-redis's atomic incr (its E003 check still runs).
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
    # Pub/sub, not the core layer: measured in the README (Realtime). Each process holds one
    # layer channel (realtime.hub), so the core layer's capacity and expiry have nothing to
    # protect here: pub/sub delivers at once or drops, and a dropped event is one a client
    # would not have wanted late anyway.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # Pub/sub channels are shared by every database of a Redis server: the prefix
            # carries the database number so environments sharing a server stay apart.
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"rankly.{redis_db(REDIS_URL)}"},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "rankly",
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# SCAN batch of delete_pattern and key counts (django-redis defaults to 10 keys a round trip).
DJANGO_REDIS_SCAN_ITERSIZE = 500
# A session read is a cache hit; the database keeps sessions through a Redis flush or outage.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "default"
# The admin's flash messages live in the session. The default (cookie first) builds a signer
# for every request, API calls included: a few per cent of a cached read's CPU for nothing.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# Public cached GETs: how long browsers and CDNs may reuse a response before revalidating.
HTTP_CACHE_MAX_AGE = 60

# --- Game -----------------------------------------------------------------------------------
# The leaderboards kept in Redis and offered by the API: any of all, day, week, month.
LEADERBOARD_WINDOWS = env.list("LEADERBOARD_WINDOWS", default=["all", "day", "week", "month"])
# The day, week and month totals (PeriodPoints) of this many closed periods of each window are
# kept beside the current one (at least 1); the housekeeping deletes older ones.
PERIOD_POINTS_KEEP_PAST = env.int("PERIOD_POINTS_KEEP_PAST", default=1)

# --- Realtime -------------------------------------------------------------------------------
# leaderboard.updated is sent at most once per this many seconds per instance.
REALTIME_COALESCE_SECONDS = 1.0
# Events are kept this long for clients that reconnect with ?last_event_id= (0 = off).
REALTIME_REPLAY_SECONDS = 120
# Per socket: frames a client may send in a second (a ping every 25 s needs one), frames it
# may have waiting for the application, and bytes waiting for a client that does not read,
# beyond the transport's own 64 KB; past any of them the socket is closed (1008, 1008, 1013).
REALTIME_MAX_FRAMES_PER_SECOND = 20
REALTIME_RECEIVE_QUEUE = 32
REALTIME_SEND_BUFFER_BYTES = 256 * 1024
# Error frames answered per socket per second; the rest of the bad frames get none.
REALTIME_ERROR_FRAMES_PER_SECOND = 2

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    # Token first so that an anonymous request gets 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.SessionTokenAuthentication",
        "accounts.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rankly API",
    "DESCRIPTION": "Search products, rank them, earn points and climb the leaderboards.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served by this process, so the docs work offline and without a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_error_responses",
        "config.openapi.hide_employee_operations",
        "realtime.openapi.add_realtime_events",
    ],
}
# Development shows every operation to anyone; production describes /api/admin/ and /api/tools/
# to employees only.
API_SCHEMA_EMPLOYEE_OPERATIONS_PUBLIC = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --- Rate limiting (config/ratelimit.py) -----------------------------------------------------
RATELIMIT_ENABLE = True
# The shared cache: Redis when configured, so every instance counts against one limit.
RATELIMIT_USE_CACHE = "default"
# A store failure makes get_usage answer None; the middleware then counts in process.
RATELIMIT_FAIL_OPEN = True
# (requests, seconds) per client IP (IPv6: per /64).
RATELIMIT_RATES = {
    "auth": (10, 15 * 60),
    "api": (120, 60),
    "rankings": (30, 60),
    "admin": (20, 60),
}
# django-ratelimit's own defaults for its key names, set: an unset setting is looked up (and its
# AttributeError raised and caught) on every counted request.
RATELIMIT_CACHE_PREFIX = "rl:"
RATELIMIT_HASH_ALGORITHM = hashlib.sha256
# After a store failure, count in process this long before trying the store again.
RATELIMIT_STORE_RETRY_SECONDS = 5
# Distinct (group, client, window) counts an instance keeps while the store is down.
RATELIMIT_LOCAL_MAX_KEYS = 10_000

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Observability --------------------------------------------------------------------------
# /readyz answers from a result at most this old: a flood of probes costs one check a second.
READYZ_MAX_AGE_SECONDS = 1.0
INSTANCE_ID = env.str("INSTANCE_ID", default="") or f"{socket.gethostname()}-{os.getpid()}"
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
SLOW_QUERY_SECONDS = env.float("SLOW_QUERY_SECONDS", default=1.0)
# The operations dashboard: how often each instance samples its counters into the hour of
# history, and where its alert bands start (a 60 s window crossing one raises the alert).
OPS_SAMPLE_SECONDS = env.float("OPS_SAMPLE_SECONDS", default=5.0)
OPS_ALERT_P99_MS = env.float("OPS_ALERT_P99_MS", default=500.0)
OPS_ALERT_5XX_PERCENT = env.float("OPS_ALERT_5XX_PERCENT", default=1.0)
OPS_ALERT_4XX_PERCENT = env.float("OPS_ALERT_4XX_PERCENT", default=25.0)
OPS_ALERT_CACHE_HIT_PERCENT = env.float("OPS_ALERT_CACHE_HIT_PERCENT", default=80.0)
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = "production" if IS_PRODUCTION else "development"
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Background jobs (Celery, config/celery.py) ---------------------------------------------
# Redis is the broker when configured; without it every task runs in this process, after the
# transaction that queued it commits (config.tasks.task_enqueue_on_commit).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL) or "memory://"
CELERY_TASK_ALWAYS_EAGER = not env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
# The Job table keeps the employee tools' outcomes; nothing else reads task results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# Acknowledged when done, and handed back when the worker dies under it: a job runs again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every broker key (queues, unacknowledged messages) starts with this prefix, kombu's
# global_keyprefix: deployments sharing one Redis each set their own, so that neither takes the
# other's tasks. The workers and the processes that send to them must agree on it.
BROKER_KEY_PREFIX = env.str("BROKER_KEY_PREFIX", default="")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis redelivers an unacknowledged message after this long: longer than the longest job.
    "visibility_timeout": 4 * 60 * 60,
    "global_keyprefix": BROKER_KEY_PREFIX,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Mail goes through its own queue, so a long tool never holds up a sign-in code.
CELERY_TASK_ROUTES = {
    "accounts.tasks.login_code_email_send": {"queue": "mail"},
    "adminops.tasks.job_run": {"queue": "tools"},
}
# The queues a worker consumes (`-Q`), and that /metrics measures.
JOB_QUEUES = ("default", "mail", "tools")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# A running job proves it is alive this often; a job silent for a lease is taken over.
JOBS_LEASE_SECONDS = env.int("JOBS_LEASE_SECONDS", default=60)
# Page views counted in the buffer reach ProductMetadata.view_count this often.
PAGE_VIEW_FLUSH_SECONDS = env.float("PAGE_VIEW_FLUSH_SECONDS", default=5.0)
# Page views and searches older than this many days are deleted by the housekeeping.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=90)
# Periodic work, sent by `celery -A config beat`. A run that waited past its period is dropped:
# the next one does the same work.
REFRESH_AHEAD_SHORT = ["home_stats", "leaderboard", "leaderboard_position"]
REFRESH_AHEAD_LONG = ["achievement_definitions", "product_metadata", "ranking_stats", "products"]
CELERY_BEAT_SCHEDULE = {
    "page-views-flush": {
        "task": "gamification.tasks.page_views_flush",
        "schedule": PAGE_VIEW_FLUSH_SECONDS,
        "options": {"expires": PAGE_VIEW_FLUSH_SECONDS},
    },
    "jobs-recover": {
        "task": "adminops.tasks.jobs_recover",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    # Before the 5-minute and the 30-minute TTLs end.
    "caches-refresh-ahead-short": {
        "task": "config.tasks.caches_refresh_ahead",
        "schedule": 4 * 60.0,
        "kwargs": {"cache_types": REFRESH_AHEAD_SHORT},
        "options": {"expires": 60},
    },
    "caches-refresh-ahead-long": {
        "task": "config.tasks.caches_refresh_ahead",
        "schedule": 25 * 60.0,
        "kwargs": {"cache_types": REFRESH_AHEAD_LONG},
        "options": {"expires": 5 * 60},
    },
    # The SQL fallback's ladders, so that no read while Redis is away walks a whole board.
    "leaderboard-ladders-store": {
        "task": "gamification.tasks.leaderboard_ladders_store",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "sign-in-housekeeping": {
        "task": "accounts.tasks.sign_in_housekeeping",
        "schedule": 60 * 60.0,
        "options": {"expires": 30 * 60},
    },
    "page-views-prune": {
        "task": "gamification.tasks.page_views_prune",
        "schedule": 6 * 60 * 60.0,
        "options": {"expires": 60 * 60},
    },
    "period-points-prune": {
        "task": "gamification.tasks.period_points_prune",
        "schedule": 6 * 60 * 60.0,
        "options": {"expires": 60 * 60},
    },
    "searches-prune": {
        "task": "products.tasks.searches_prune",
        "schedule": 6 * 60 * 60.0,
        "options": {"expires": 60 * 60},
    },
    # Analytics roll-ups: each run rolls yesterday again and any closed day missed, so a day is
    # rolled within the hour after midnight UTC; until then the raw rows answer for it.
    "page-views-rollup": {
        "task": "gamification.tasks.page_views_rollup",
        "schedule": 60 * 60.0,
        "options": {"expires": 30 * 60},
    },
    "searches-rollup": {
        "task": "products.tasks.searches_rollup",
        "schedule": 60 * 60.0,
        "options": {"expires": 30 * 60},
    },
}
