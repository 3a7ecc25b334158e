"""Plumbing every app's services share: refusing an action, applying edits, one run at a time."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.cache import cache
from django.db import models
from django.utils import timezone

Progress = Callable[[int, int], None]

TOOL_LOCK_SECONDS = 15 * 60

# Who holds the tool locks taken in this context: a background job names itself, so that the
# job, run again after its worker died, takes back the locks its first run left behind.
_lock_owner: ContextVar[str] = ContextVar("tool_lock_owner", default="")


class ActionRefused(Exception):
    """The action would break something that exists; the message says what to do instead."""


def fields_apply(instance: models.Model, fields: dict[str, Any]) -> dict[str, list[Any]]:
    """Set fields on an instance and return {field: [old, new]} for those that changed."""
    changes = {}
    for name, value in fields.items():
        old = getattr(instance, name)
        if old != value:
            changes[name] = [old, value]
            setattr(instance, name, value)
    return changes


@contextmanager
def tool_running(*, name: str) -> Iterator[None]:
    """One run of a tool at a time, across instances: the lock lives in the shared cache."""
    key = f"tool-running:{name}"
    owner = _lock_owner.get() or f"run:{timezone.now().isoformat()}"
    if not cache.add(key, owner, timeout=TOOL_LOCK_SECONDS) and (
        not _lock_owner.get() or cache.get(key) != owner
    ):
        raise ActionRefused(f"{name} is already running; try again when it has finished.")
    try:
        yield
    finally:
        cache.delete(key)


@contextmanager
def tool_lock_owner(owner: str) -> Iterator[None]:
    """Take the tool locks inside this block as `owner`; the same owner may take them again."""
    token = _lock_owner.set(owner)
    try:
        yield
    finally:
        _lock_owner.reset(token)


DELETE_BATCH = 5000


def rows_delete_in_batches(rows: models.QuerySet[Any]) -> int:
    """Delete a queryset's rows a batch at a time (short locks, bounded memory); returns how
    many were deleted."""
    deleted = 0
    while True:
        batch = list(rows.order_by("pk").values_list("pk", flat=True)[:DELETE_BATCH])
        if not batch:
            return deleted
        deleted += rows.model.objects.filter(pk__in=batch).delete()[0]
