"""`make run`'s settings (development, nothing configured) on a database file of the test's own."""

import os

from config.settings.development import *  # noqa: F403

DATABASES["default"]["NAME"] = os.environ["RANKLY_README_DATABASE"]  # noqa: F405
