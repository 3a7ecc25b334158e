from .base import *

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "rankly-development-only-key-never-use-in-production"
ALLOWED_HOSTS = ALLOWED_HOSTS or ["*"]
