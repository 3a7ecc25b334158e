"""Plumbing every app's services share: refusing an action, applying edits, audited deletes,
one run at a time."""

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db import connection, models, transaction
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


def rows_insert(
    *,
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    unique_fields: Sequence[str] = (),
    update_fields: Sequence[str] = (),
) -> None:
    """Insert rows given as value tuples in `fields` order (attnames: `user_id`), in one
    statement; with `update_fields`, a row whose `unique_fields` exist updates those instead.

    On PostgreSQL the values go in as one array per column (`INSERT ... SELECT FROM unnest`),
    skipping the model instances and per-value preparation that cost `bulk_create` seconds
    for tens of thousands of rows; elsewhere it is `bulk_create`.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(
            [model(**dict(zip(fields, row, strict=True))) for row in rows],
            update_conflicts=bool(update_fields),
            unique_fields=unique_fields or None,
            update_fields=update_fields or None,
        )
        return
    quote = connection.ops.quote_name

    def column(name: str) -> "tuple[str, models.Field[Any, Any]]":
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field) and field.column
        return quote(field.column), field

    columns, arrays, params = [], [], []
    for index, name in enumerate(fields):
        name_sql, field = column(name)
        values = [row[index] for row in rows]
        if isinstance(field, models.JSONField):
            values = [None if v is None else json.dumps(v, cls=field.encoder) for v in values]
        columns.append(name_sql)
        arrays.append(f"%s::{field.db_type(connection)}[]")
        params.append(values)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT * FROM unnest({', '.join(arrays)})"
    )
    if update_fields:
        conflict = ", ".join(column(name)[0] for name in unique_fields)
        updated = (column(name)[0] for name in update_fields)
        sql += f" ON CONFLICT ({conflict}) DO UPDATE SET " + ", ".join(
            f"{name} = EXCLUDED.{name}" for name in updated
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
