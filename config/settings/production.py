from django.core.exceptions import ImproperlyConfigured

from .base import *

if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Production refuses to start without it: set the SECRET_KEY "
        "secret to a long random string, for example the output of "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )

DEBUG = False
