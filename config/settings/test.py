from uuid import uuid4

from .base import *

# Each run owns its keys on the shared Redis, and the suite clears only those. Servers a test
# starts inherit the run's prefix through RANKLY_TEST_KEY_PREFIX, to share its keys.
TEST_RUN_PREFIX = env.str("RANKLY_TEST_KEY_PREFIX", default=f"rankly-test-{uuid4().hex[:8]}")
if REDIS_URL:
    CACHES["default"]["KEY_PREFIX"] = TEST_RUN_PREFIX
# Its broker queues too: two runs, or a run and a developer's worker, on one Redis never take
# each other's tasks. The workers a test starts are given the same prefix.
BROKER_KEY_PREFIX = f"{TEST_RUN_PREFIX}:"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "global_keyprefix": BROKER_KEY_PREFIX,
}

SECRET_KEY = "rankly-test-key"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True

# One test process counts exactly on locmem; see development.py.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
# Other tests make many requests; the rate-limit tests switch limits on for themselves.
RATELIMIT_ENABLE = False
# Tests never report to Sentry, whatever the shell exports.
SENTRY_DSN = ""
# Coalesced events go at once: no trailing send outlives the test that raised it (the
# coalescing test sets its own interval).
REALTIME_COALESCE_SECONDS = 0
# Tasks run in process after commit, with Redis or without; the worker tests start a real
# worker (config/tests/test_worker.py).
CELERY_TASK_ALWAYS_EAGER = True
# Each readiness test sees the dependencies as it set them up (the reuse test sets its own).
READYZ_MAX_AGE_SECONDS = 0
