"""The Celery app: `celery -A config worker`. Tasks live in each app's tasks.py and are found by
autodiscovery, so config/ names no app."""

import os

from celery import Celery

from config.settings import default_settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", default_settings_module())

app = Celery("rankly", task_cls="config.tasks:RanklyTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
