"""Plumbing every app's services share: refusing an action, applying edits, audited deletes,
one run at a time."""

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db import models, transaction
from django.utils import timezone

from config.audit import AuditAction, audit_record
from config.caching import CacheType, cache_types_invalidate_on_commit

Progress = Callable[[int, int], None]

TOOL_LOCK_SECONDS = 15 * 60

# Who holds the tool locks taken in this context: a background job names itself, so that the
# job, run again after its worker died, takes back the locks its first run left behind.
_lock_owner: ContextVar[str] = ContextVar("tool_lock_owner", default="")


class ActionRefused(Exception):
    """The action would break something that exists; the message says what to do instead."""


def audited_delete(
    *,
    actor: AbstractBaseUser | None,
    instance: models.Model,
    blocker: str | None,
    action: AuditAction,
    data: dict[str, Any],
    cache_types: Iterable[CacheType],
) -> None:
    """Delete `instance` and audit it in one transaction; refuse with `blocker` when it says why
    not. The caches of `cache_types` are invalidated once the delete commits."""
    if blocker:
        raise ActionRefused(blocker)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=action,
            target_type=instance._meta.model_name or "",
            target_id=instance.pk,
            data=data,
        )
        instance.delete()
        cache_types_invalidate_on_commit(cache_types=cache_types)


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
