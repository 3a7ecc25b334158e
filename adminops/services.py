"""Writes made by employees: catalogue and game edits, repairs and tools. Every one is audited."""

import csv
import io
import json
import logging
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from adminops.models import AuditAction, AuditLog
from adminops.selectors import delete_blocker
from config.caching import WARMERS, CacheType, cache_invalidate
from gamification.models import Achievement, ActivityKind, Streak
from gamification.services import achievements_reevaluate, points_award, points_rebuild
from products.models import Product, ProductMetadata
from rankings.services import ranking_stats_rebuild
from realtime.events import event_send, user_group

logger = logging.getLogger(__name__)

# What each kind of edit makes stale.
PRODUCT_CACHE_TYPES = (
    CacheType.PRODUCTS,
    CacheType.PRODUCT_METADATA,
    CacheType.RANKING_STATS,
    CacheType.HOME_STATS,
)
ACHIEVEMENT_CACHE_TYPES = (CacheType.ACHIEVEMENT_DEFINITIONS,)
LEADERBOARD_CACHE_TYPES = (CacheType.LEADERBOARD, CacheType.LEADERBOARD_POSITION)

PRODUCT_FIELDS = ("name", "slug", "brand", "category", "image_url", "is_active")
METADATA_FIELDS = ("description", "attributes", "tags")

Progress = Callable[[int, int], None]


class ActionRefused(Exception):
    """The action would break something that exists; the message says what to do instead."""


class CsvImportError(ValueError):
    """The CSV as a whole cannot be read (encoding, header, size); no row was looked at."""


def audit_record(
    *,
    actor: User | None,
    action: AuditAction,
    target_type: str = "",
    target_id: object = "",
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditLog:
    return AuditLog.objects.create(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        reason=reason,
        data=data or {},
    )


def cache_types_invalidate_on_commit(*, cache_types: Iterable[CacheType]) -> None:
    """Invalidate after commit, so no request refills a type from rows about to change."""
    for cache_type in cache_types:
        transaction.on_commit(lambda t=cache_type: cache_invalidate(t))


def _apply(instance: models.Model, fields: dict[str, Any]) -> dict[str, list[Any]]:
    """Set fields on an instance and return {field: [old, new]} for those that changed."""
    changes = {}
    for name, value in fields.items():
        old = getattr(instance, name)
        if old != value:
            changes[name] = [old, value]
            setattr(instance, name, value)
    return changes


# --- Products -------------------------------------------------------------------------------


def product_create(
    *, actor: User | None, fields: dict[str, Any], metadata: dict[str, Any] | None = None
) -> Product:
    with transaction.atomic():
        product = Product.objects.create(**fields)
        ProductMetadata.objects.create(product=product, **(metadata or {}))
        audit_record(
            actor=actor,
            action=AuditAction.PRODUCT_CREATE,
            target_type="product",
            target_id=product.pk,
            data={"fields": fields, "metadata": metadata or {}},
        )
        cache_types_invalidate_on_commit(cache_types=PRODUCT_CACHE_TYPES)
    return product


def product_update(
    *,
    actor: User | None,
    product: Product,
    fields: dict[str, Any],
    metadata: dict[str, Any] | None = None,
) -> Product:
    with transaction.atomic():
        changes = _apply(product, fields)
        product.save()
        meta, _ = ProductMetadata.objects.get_or_create(product=product)
        meta_changes = _apply(meta, metadata or {})
        if meta_changes:
            meta.save()
        audit_record(
            actor=actor,
            action=AuditAction.PRODUCT_UPDATE,
            target_type="product",
            target_id=product.pk,
            data={"changes": changes, "metadata_changes": meta_changes},
        )
        cache_types_invalidate_on_commit(cache_types=PRODUCT_CACHE_TYPES)
    return product


def _delete_audited(
    *,
    actor: User | None,
    instance: Product | Achievement,
    action: str,
    data: dict[str, Any],
    cache_types: Iterable[CacheType],
) -> None:
    """Delete a row nothing depends on, audited; one that history needs is refused."""
    blocker = delete_blocker(instance=instance)
    if blocker:
        raise ActionRefused(blocker)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=action,
            target_type=instance._meta.model_name,
            target_id=instance.pk,
            data=data,
        )
        instance.delete()
        cache_types_invalidate_on_commit(cache_types=cache_types)


def product_delete(*, actor: User | None, product: Product) -> None:
    """Delete a product nobody ranks; a ranked product is deactivated instead, keeping history."""
    _delete_audited(
        actor=actor,
        instance=product,
        action=AuditAction.PRODUCT_DELETE,
        data={"slug": product.slug, "name": product.name},
        cache_types=PRODUCT_CACHE_TYPES,
    )


# --- Achievements ---------------------------------------------------------------------------


def achievement_create(*, actor: User | None, fields: dict[str, Any]) -> Achievement:
    with transaction.atomic():
        achievement = Achievement.objects.create(**fields)
        audit_record(
            actor=actor,
            action=AuditAction.ACHIEVEMENT_CREATE,
            target_type="achievement",
            target_id=achievement.pk,
            data={"fields": fields},
        )
        cache_types_invalidate_on_commit(cache_types=ACHIEVEMENT_CACHE_TYPES)
    return achievement


def achievement_update(
    *, actor: User | None, achievement: Achievement, fields: dict[str, Any]
) -> Achievement:
    with transaction.atomic():
        changes = _apply(achievement, fields)
        achievement.save()
        audit_record(
            actor=actor,
            action=AuditAction.ACHIEVEMENT_UPDATE,
            target_type="achievement",
            target_id=achievement.pk,
            data={"changes": changes},
        )
        cache_types_invalidate_on_commit(cache_types=ACHIEVEMENT_CACHE_TYPES)
    return achievement


def achievement_delete(*, actor: User | None, achievement: Achievement) -> None:
    """Delete an achievement nobody unlocked; an unlocked one is deactivated instead."""
    _delete_audited(
        actor=actor,
        instance=achievement,
        action=AuditAction.ACHIEVEMENT_DELETE,
        data={"code": achievement.code, "name": achievement.name},
        cache_types=ACHIEVEMENT_CACHE_TYPES,
    )


# --- Edits made in the Django admin ---------------------------------------------------------


def admin_edit_record(
    *, actor: User, instance: Product | Achievement, created: bool, changed: list[str]
) -> AuditLog:
    """Audit a row the Django admin just saved, and invalidate the caches it feeds."""
    if isinstance(instance, Product):
        ProductMetadata.objects.get_or_create(product=instance)
        actions, target_type, cache_types = (
            (AuditAction.PRODUCT_CREATE, AuditAction.PRODUCT_UPDATE),
            "product",
            PRODUCT_CACHE_TYPES,
        )
    else:
        actions, target_type, cache_types = (
            (AuditAction.ACHIEVEMENT_CREATE, AuditAction.ACHIEVEMENT_UPDATE),
            "achievement",
            ACHIEVEMENT_CACHE_TYPES,
        )
    cache_types_invalidate_on_commit(cache_types=cache_types)
    return audit_record(
        actor=actor,
        action=actions[0] if created else actions[1],
        target_type=target_type,
        target_id=instance.pk,
        data={"changed": changed, "via": "django-admin"},
    )


def admin_delete(*, actor: User, instance: Product | Achievement) -> None:
    if isinstance(instance, Product):
        product_delete(actor=actor, product=instance)
    else:
        achievement_delete(actor=actor, achievement=instance)


# --- Users: points, leaderboard, streak -----------------------------------------------------


def user_local_date(*, user: User) -> date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(user.timezone)).date()


def user_points_adjust(*, actor: User, user: User, points: int, reason: str) -> User:
    """Add (or take away) points through the ledger, naming the employee and the reason."""

    with transaction.atomic():
        points_award(
            user=user,
            kind=ActivityKind.ADJUSTMENT,
            points=points,
            local_date=user_local_date(user=user),
            data={"employee_id": actor.pk},
            actor=actor,
            reason=reason,
        )
        user.refresh_from_db(fields=["points"])
        audit_record(
            actor=actor,
            action=AuditAction.POINTS_ADJUST,
            target_type="user",
            target_id=user.pk,
            reason=reason,
            data={"points": points, "total": user.points},
        )
        cache_types_invalidate_on_commit(cache_types=LEADERBOARD_CACHE_TYPES)
    return user


def user_leaderboard_exclusion_set(
    *, actor: User, user: User, excluded: bool, reason: str = ""
) -> User:
    with transaction.atomic():
        was = user.leaderboard_excluded
        user.leaderboard_excluded = excluded
        user.save(update_fields=["leaderboard_excluded"])
        audit_record(
            actor=actor,
            action=AuditAction.LEADERBOARD_EXCLUSION,
            target_type="user",
            target_id=user.pk,
            reason=reason,
            data={"excluded": excluded, "was": was},
        )
        cache_types_invalidate_on_commit(cache_types=LEADERBOARD_CACHE_TYPES)
    return user


def streak_repair(
    *, actor: User, user: User, current_length: int, longest_length: int, reason: str
) -> Streak:
    """Set a user's streak by hand; a live repaired streak counts yesterday as active."""
    if longest_length < current_length:
        raise ActionRefused("longest_length cannot be shorter than current_length.")
    today = user_local_date(user=user)
    with transaction.atomic():
        streak, _ = Streak.objects.select_for_update().get_or_create(user=user)
        before = {
            "current_length": streak.current_length,
            "longest_length": streak.longest_length,
            "last_active_date": streak.last_active_date,
        }
        streak.current_length = current_length
        streak.longest_length = longest_length
        # Without this the next submission would restart the repaired streak at 1.
        yesterday = today - timedelta(days=1)
        if current_length and (
            streak.last_active_date is None or streak.last_active_date < yesterday
        ):
            streak.last_active_date = yesterday
        streak.updated_at = timezone.now()
        streak.save()
        audit_record(
            actor=actor,
            action=AuditAction.STREAK_REPAIR,
            target_type="user",
            target_id=user.pk,
            reason=reason,
            data={
                "before": before,
                "after": {
                    "current_length": current_length,
                    "longest_length": longest_length,
                    "last_active_date": streak.last_active_date,
                },
            },
        )
        event_send(
            group=user_group(user.pk),
            event_type="streak.updated",
            data={
                "current_length": streak.current_length,
                "longest_length": streak.longest_length,
                "freezes_left": streak.freezes_left,
                "last_active_date": streak.last_active_date.isoformat()
                if streak.last_active_date
                else None,
            },
        )
    return streak


# --- Caches ---------------------------------------------------------------------------------


def cache_flush(*, actor: User, cache_type: CacheType) -> None:
    cache_invalidate(cache_type)
    audit_record(
        actor=actor, action=AuditAction.CACHE_FLUSH, target_type="cache", target_id=cache_type
    )


def cache_warm_all() -> tuple[dict[str, int], list[str]]:
    """Run every registered warmer: keys written per cache type, and the warmers that failed."""
    keys: dict[str, int] = dict.fromkeys((t.value for t in CacheType), 0)
    failed = []
    for cache_type in CacheType:
        for warm in WARMERS[cache_type]:
            try:
                keys[cache_type.value] += warm()
            except Exception:
                # One broken warmer must not stop the others; the report names it.
                logger.exception("Cache warmer %s failed", warm.__name__)
                failed.append(f"{cache_type.value}: {warm.__name__}")
    return keys, failed


# --- Tools ----------------------------------------------------------------------------------

TOOL_LOCK_SECONDS = 15 * 60


@contextmanager
def tool_running(*, name: str) -> Iterator[None]:
    """One run of a tool at a time, across instances: the lock lives in the shared cache."""
    key = f"tool-running:{name}"
    if not cache.add(key, timezone.now().isoformat(), timeout=TOOL_LOCK_SECONDS):
        raise ActionRefused(f"{name} is already running; try again when it has finished.")
    try:
        yield
    finally:
        cache.delete(key)


def tool_caches_warm(*, actor: User | None) -> dict[str, Any]:
    keys, failed = cache_warm_all()
    report = {"keys": keys, "total": sum(keys.values()), "failed": failed}
    audit_record(actor=actor, action=AuditAction.CACHE_WARM, data=report)
    return report


def tool_points_rebuild(*, actor: User | None, on_progress: Progress | None = None) -> dict:
    """Make every user's points the sum of their ledger; report how many were wrong.

    With a progress callback it goes user by user so that a long run shows where it is;
    otherwise it is one call for all users.
    """

    with tool_running(name="rebuild_points"):
        if on_progress is None:
            users, fixed = User.objects.count(), points_rebuild()
        else:
            users, fixed = User.objects.count(), 0
            for done, user in enumerate(User.objects.order_by("pk").iterator(), start=1):
                fixed += points_rebuild(user=user)
                on_progress(done, users)
    report = {"users": users, "mismatches_fixed": fixed}
    audit_record(actor=actor, action=AuditAction.POINTS_REBUILD, data=report)
    if fixed:
        cache_types_invalidate_on_commit(cache_types=LEADERBOARD_CACHE_TYPES)
    return report


def tool_ranking_stats_rebuild(*, actor: User | None) -> dict:
    with tool_running(name="rebuild_ranking_stats"):
        report = {"result": ranking_stats_rebuild()}
    audit_record(actor=actor, action=AuditAction.RANKING_STATS_REBUILD, data=report)
    cache_types_invalidate_on_commit(
        cache_types=(CacheType.RANKING_STATS, CacheType.PRODUCT_METADATA, CacheType.HOME_STATS)
    )
    return report


def tool_achievements_reevaluate(*, actor: User | None) -> dict:
    """Award what the history earns and was never awarded; no notification is sent."""
    with tool_running(name="reevaluate_achievements"):
        report = {"result": achievements_reevaluate(notify=False)}
    audit_record(actor=actor, action=AuditAction.ACHIEVEMENTS_REEVALUATE, data=report)
    return report


# --- CSV import -----------------------------------------------------------------------------

MAX_IMPORT_ROWS = 5000
IMPORT_COLUMNS = (*PRODUCT_FIELDS, *METADATA_FIELDS)
REQUIRED_COLUMNS = ("name", "category")
TRUE_WORDS = {"1", "true", "yes", "y", "on"}
FALSE_WORDS = {"0", "false", "no", "n", "off"}


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    applied: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "applied": self.applied,
        }


@dataclass
class _Row:
    line: int
    fields: dict[str, Any]
    metadata: dict[str, Any]
    product: Product | None


def _csv_rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    if not header:
        raise CsvImportError("The CSV is empty: the first line must name the columns.")
    unknown = sorted(set(header) - set(IMPORT_COLUMNS))
    if unknown:
        raise CsvImportError(
            f"Unknown columns: {', '.join(unknown)}. Known: {', '.join(IMPORT_COLUMNS)}."
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CsvImportError(f"Missing required columns: {', '.join(missing)}.")
    reader.fieldnames = header
    rows = []
    try:
        for record in reader:
            if len(rows) == MAX_IMPORT_ROWS:
                raise CsvImportError(f"Too many rows: at most {MAX_IMPORT_ROWS} per import.")
            if None in record:
                rows.append((reader.line_num, {None: "too many values"}))
                continue
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in record.items()}))
    except csv.Error as exc:
        raise CsvImportError(f"Line {reader.line_num}: {exc}.") from exc
    return header, rows


def _parse_row(record: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, list]]:
    """The product fields and metadata of one CSV record, and what is wrong with it."""
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {}
    for name in ("name", "slug", "brand", "category", "image_url"):
        if name in record:
            fields[name] = record[name]
    if not fields.get("slug"):
        fields["slug"] = slugify(fields.get("name", ""))[:220]
    if "is_active" in record:
        word = record["is_active"].lower()
        if word in TRUE_WORDS or word == "":
            fields["is_active"] = True
        elif word in FALSE_WORDS:
            fields["is_active"] = False
        else:
            errors["is_active"] = [f"{record['is_active']!r} is not true or false."]
    metadata: dict[str, Any] = {}
    if "description" in record:
        metadata["description"] = record["description"]
    if "tags" in record:
        tags = [tag.strip() for tag in record["tags"].split("|") if tag.strip()]
        if any(len(tag) > 50 for tag in tags):
            errors["tags"] = ["Each tag has at most 50 characters."]
        metadata["tags"] = tags
    if "attributes" in record:
        try:
            attributes = json.loads(record["attributes"]) if record["attributes"] else {}
        except (ValueError, RecursionError):
            attributes = None
        if not isinstance(attributes, dict):
            errors["attributes"] = ["Must be a JSON object."]
        else:
            metadata["attributes"] = attributes
    return fields, metadata, errors


def _validate(rows: list[tuple[int, dict[str, str]]], report: ImportReport) -> list[_Row]:
    slugs = set()
    for _, record in rows:
        slugs.add(record.get("slug") or slugify(record.get("name", ""))[:220])
    existing = {
        p.slug: p for p in Product.objects.filter(slug__in=slugs).select_related("metadata")
    }
    first_line: dict[str, int] = {}
    valid = []
    for line, record in rows:
        if None in record:
            report.rejected.append(
                {"line": line, "slug": "", "errors": {"row": ["Too many values."]}}
            )
            continue
        fields, metadata, errors = _parse_row(record)
        slug = fields["slug"]
        product = existing.get(slug)
        candidate = Product(**{**_current_fields(product), **fields})
        try:
            candidate.full_clean(validate_unique=False)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if slug in first_line:
            errors["slug"] = [f"Already used on line {first_line[slug]} of this file."]
        else:
            first_line[slug] = line
        if errors:
            report.rejected.append({"line": line, "slug": slug, "errors": errors})
            continue
        valid.append(_Row(line=line, fields=fields, metadata=metadata, product=product))
    return valid


def _current_fields(product: Product | None) -> dict[str, Any]:
    if product is None:
        return {}
    return {name: getattr(product, name) for name in PRODUCT_FIELDS}


def _write(row: _Row, report: ImportReport) -> None:
    if row.product is None:
        product = Product.objects.create(**row.fields)
        ProductMetadata.objects.create(product=product, **row.metadata)
        report.created += 1
        return
    product = row.product
    changed = _apply(product, row.fields)
    if changed:
        product.save()
    meta = getattr(product, "metadata", None) or ProductMetadata(product=product)
    meta_changed = _apply(meta, row.metadata)
    if meta_changed or meta.pk is None:
        meta.save()
    if changed or meta_changed:
        report.updated += 1
    else:
        report.unchanged += 1


def products_import_csv(
    *,
    actor: User | None,
    text: str,
    all_or_nothing: bool = False,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Create or update (by slug) products from CSV, row by row, reporting every rejected row.

    Columns: name, category (required), slug (default: from the name), brand, image_url,
    is_active, description, tags (separated by |), attributes (a JSON object).
    With all_or_nothing, one rejected row means nothing is written.
    """
    _, rows = _csv_rows(text)
    report = ImportReport(rows=len(rows))
    # Two imports at once could both decide to create the same slug.
    with tool_running(name="import_products"):
        valid = _validate(rows, report)
        if all_or_nothing and report.rejected:
            report.applied = False
        else:
            with transaction.atomic():
                for done, row in enumerate(valid, start=1):
                    _write(row, report)
                    if on_progress is not None:
                        on_progress(done, len(valid))
                if report.created or report.updated:
                    cache_types_invalidate_on_commit(cache_types=PRODUCT_CACHE_TYPES)
    audit_record(
        actor=actor,
        action=AuditAction.PRODUCTS_IMPORT,
        data={**report.as_dict(), "all_or_nothing": all_or_nothing},
    )
    return report
