from .base import *

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "rankly-development-only-key-never-use-in-production"
ALLOWED_HOSTS = ALLOWED_HOSTS or ["*"]

# django-ratelimit rejects locmem (E003, W001) because its counts are per process; one development
# process counts exactly. Production keeps them, bar E003 in its no-Redis mode (production.py).
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
