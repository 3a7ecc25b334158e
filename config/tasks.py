"""Plumbing every app's tasks share: the base task, enqueueing after commit, periodic cache
refresh. A task holds no rule: it calls its app's service, which is safe to run twice."""

import logging
import smtplib
from typing import Any

from celery import Task, current_app, shared_task
from django.db import InterfaceError, OperationalError, transaction

from config.caching import CacheType, caches_refresh

logger = logging.getLogger("rankly.tasks")

# Failures that pass on their own: the mail server or the database restarting, a broken socket.
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    smtplib.SMTPException,
    ConnectionError,
    TimeoutError,
)


class RanklyTask(Task):
    """Retried with exponential backoff on a transient failure; acknowledged only once done."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 20


def tasks_run_in_process() -> bool:
    """True without a broker: every task runs in the process that sends it, after commit."""
    return bool(current_app.conf.task_always_eager)


def task_enqueue_on_commit(
    name: str, *, kwargs: dict[str, Any], kwargsrepr: str | None = None
) -> None:
    """Send the task `name` once the current transaction commits: a rolled-back request sends
    nothing. `kwargsrepr` stands in for the arguments wherever Celery logs or shows them."""
    transaction.on_commit(lambda: task_send(name, kwargs=kwargs, kwargsrepr=kwargsrepr))


def task_send(name: str, *, kwargs: dict[str, Any], kwargsrepr: str | None = None) -> None:
    """Queue the task `name`; when the broker cannot take it, run it here rather than lose it."""
    task = current_app.tasks[name]
    try:
        task.apply_async(kwargs=kwargs, kwargsrepr=kwargsrepr)
    except Exception as error:
        logger.warning(
            "Broker refused %s (%s); running it in this process", name, type(error).__name__
        )
        task.apply(kwargs=kwargs)


# Celery's decorator carries no types.
@shared_task(name="config.tasks.caches_refresh_ahead")  # type: ignore[untyped-decorator]
def caches_refresh_ahead(*, cache_types: list[str]) -> int:
    return caches_refresh(cache_types=[CacheType(t) for t in cache_types])
