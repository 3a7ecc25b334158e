"""Writes of the catalogue."""

from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, F, PositiveIntegerField, When
from django.utils import timezone

from accounts.models import User
from config.audit import AuditAction, audit_record
from config.caching import CacheType, cache_types_invalidate_on_commit
from config.rollups import DAY, month_next, month_of, rollup_day_check, rollup_days_due, today_utc
from config.services import audited_delete, fields_apply, rows_delete_in_batches
from products.models import (
    Product,
    ProductMetadata,
    SearchDay,
    SearchMonth,
    SearchQueryDay,
    SearchQueryMonth,
    UserProductSearch,
)
from products.selectors import (
    normalize_query,
    product_delete_blocker,
    searches_of_day,
    searches_of_days,
    searches_rolled_days_in,
    searches_rolled_last,
)
from products.signals import product_searched


def product_search_record(*, user_id: int | None, query: str, result_count: int) -> None:
    """Remember who searched what, for stats and the searches-made achievement."""
    UserProductSearch.objects.create(
        user_id=user_id, query=normalize_query(query)[:200], result_count=result_count
    )
    if user_id is not None:
        product_searched.send(sender=UserProductSearch, user_id=user_id)


def searches_prune(*, older_than: timedelta) -> int:
    """Delete searches older than the retention period, a batch at a time; returns how many."""
    return rows_delete_in_batches(
        UserProductSearch.objects.filter(created_at__lt=timezone.now() - older_than)
    )


def searches_rollup_day(*, day: date) -> int:
    """Recompute a closed UTC day's SearchQueryDay rows from its raw searches, replacing what
    was there (a rerun or late rows are safe); returns the queries rolled up. Refuses an open
    day and a day older than the retention period (its raw rows may be gone)."""
    rollup_day_check(day)
    with transaction.atomic():
        # The day's SearchDay row, locked first, keeps two runs of one day from interleaving.
        marker, _ = SearchDay.objects.select_for_update().get_or_create(
            day=day,
            defaults={"searches": 0, "without_results": 0, "rolled_at": timezone.now()},
        )
        rows = searches_of_day(day=day)
        SearchQueryDay.objects.filter(day=day).delete()
        SearchQueryDay.objects.bulk_create(
            [SearchQueryDay(day=day, **row) for row in rows], batch_size=2000
        )
        marker.searches = sum(row["searches"] for row in rows)
        marker.without_results = sum(row["without_results"] for row in rows)
        marker.rolled_at = timezone.now()
        marker.save()
        _searches_rollup_month(month_of(day))
    return len(rows)


def _searches_rollup_month(month: date) -> None:
    """Sum a closed month's day roll-ups into SearchQueryMonth, once all its days are in."""
    end = month_next(month)
    days = (end - month).days
    if end > today_utc() or searches_rolled_days_in(first=month, last=end - DAY) < days:
        return
    SearchMonth.objects.update_or_create(month=month, defaults={"rolled_at": timezone.now()})
    SearchQueryMonth.objects.filter(month=month).delete()
    SearchQueryMonth.objects.bulk_create(
        [SearchQueryMonth(month=month, **row) for row in searches_of_days(first=month, before=end)],
        batch_size=2000,
    )


def searches_rollup() -> int:
    """Roll up the closed days due (yesterday again, and any day missed); returns days rolled."""
    days = rollup_days_due(last_rolled=searches_rolled_last())
    for day in days:
        searches_rollup_day(day=day)
    return len(days)


def product_view_counts_add(*, counts: dict[int, int]) -> int:
    """Add buffered page views to products' view counts in one statement; returns rows moved."""
    if not counts:
        return 0
    return ProductMetadata.objects.filter(product_id__in=counts).update(
        view_count=F("view_count")
        + Case(
            *(When(product_id=pid, then=amount) for pid, amount in counts.items()),
            default=0,
            output_field=PositiveIntegerField(),
        )
    )


def product_ranking_counts_update(*, added: Iterable[int], removed: Iterable[int]) -> None:
    """Keep how many users rank each product right as rankings come and go, in one statement
    that adds to the stored counts (no lost counts).

    The rows are locked in one order before they are written, so two submissions sharing
    products cannot deadlock. Every submission runs this: on PostgreSQL it is written out,
    the moves as arrays, as the ORM spent several times longer building it than it runs.
    """
    moves = {**{pk: 1 for pk in added}, **{pk: -1 for pk in removed}}
    if not moves:
        return
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(ProductMetadata._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS m SET ranking_count = GREATEST(m.ranking_count + d.move, 0)"
                f" FROM (SELECT l.id, v.move FROM {table} AS l"
                " JOIN unnest(%s::bigint[], %s::integer[]) AS v(product_id, move)"
                " ON l.product_id = v.product_id"
                " ORDER BY l.product_id FOR UPDATE OF l) AS d WHERE m.id = d.id",
                [list(moves), list(moves.values())],
            )
        return
    locked = (
        ProductMetadata.objects.select_for_update()
        .filter(product_id__in=list(moves))
        .order_by("product_id")
        .values("pk")
    )
    ProductMetadata.objects.filter(pk__in=locked).update(
        ranking_count=Case(
            When(
                product_id__in=[pk for pk, move in moves.items() if move > 0],
                then=F("ranking_count") + 1,
            ),
            When(ranking_count__gt=0, then=F("ranking_count") - 1),
            default=F("ranking_count"),
            output_field=PositiveIntegerField(),
        )
    )


def product_ranking_counts_reset(*, count: Callable[[], dict[int, int]]) -> int:
    """Set every product's ranking count to what `count` finds; returns how many were wrong.

    The metadata rows are locked before counting, so no submission slips in between.
    """
    with transaction.atomic():
        rows = list(
            ProductMetadata.objects.select_for_update()
            .order_by("product_id")
            .only("pk", "product_id", "ranking_count")
        )
        actual = count()
        wrong = [row for row in rows if row.ranking_count != actual.get(row.product_id, 0)]
        for row in wrong:
            row.ranking_count = actual.get(row.product_id, 0)
        ProductMetadata.objects.bulk_update(wrong, ["ranking_count"], batch_size=500)
    return len(wrong)


# --- Edits made by employees ----------------------------------------------------------------

METADATA_FIELDS = ("description", "attributes", "tags")

# What a catalogue edit makes stale.
PRODUCT_CACHE_TYPES = (
    CacheType.PRODUCTS,
    CacheType.PRODUCT_METADATA,
    CacheType.RANKING_STATS,
    CacheType.HOME_STATS,
)


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
        changes = fields_apply(product, fields)
        product.save()
        meta, _ = ProductMetadata.objects.get_or_create(product=product)
        meta_changes = fields_apply(meta, metadata or {})
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


def product_delete(*, actor: User | None, product: Product) -> None:
    """Delete a product nobody ranks; a ranked product is deactivated instead, keeping history."""
    audited_delete(
        actor=actor,
        instance=product,
        blocker=product_delete_blocker(product=product),
        action=AuditAction.PRODUCT_DELETE,
        data={"slug": product.slug, "name": product.name},
        cache_types=PRODUCT_CACHE_TYPES,
    )


def product_admin_edit_record(
    *, actor: User, product: Product, created: bool, changed: list[str]
) -> None:
    """Audit a product the Django admin just saved, and invalidate the caches it feeds."""
    ProductMetadata.objects.get_or_create(product=product)
    cache_types_invalidate_on_commit(cache_types=PRODUCT_CACHE_TYPES)
    audit_record(
        actor=actor,
        action=AuditAction.PRODUCT_CREATE if created else AuditAction.PRODUCT_UPDATE,
        target_type="product",
        target_id=product.pk,
        data={"changed": changed, "via": "django-admin"},
    )
