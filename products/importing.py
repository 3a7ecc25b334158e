"""Create or update products from a CSV file, row by row, reporting every rejected row."""

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from accounts.models import User
from config.audit import AuditAction, audit_record
from config.caching import cache_types_invalidate_on_commit
from config.services import Progress, fields_apply, tool_running
from products.models import Product, ProductMetadata
from products.services import METADATA_FIELDS, PRODUCT_CACHE_TYPES

PRODUCT_FIELDS = ("name", "slug", "brand", "category", "image_url", "is_active")


class CsvImportError(ValueError):
    """The CSV as a whole cannot be read (encoding, header, size); no row was looked at."""


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


def _csv_rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str] | None]]]:
    """The header and each record by line; None for a record with more values than columns."""
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
    rows: list[tuple[int, dict[str, str] | None]] = []
    try:
        for record in reader:
            if len(rows) == MAX_IMPORT_ROWS:
                raise CsvImportError(f"Too many rows: at most {MAX_IMPORT_ROWS} per import.")
            if None in record:
                rows.append((reader.line_num, None))
                continue
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in record.items()}))
    except csv.Error as exc:
        raise CsvImportError(f"Line {reader.line_num}: {exc}.") from exc
    return header, rows


def _parse_row(
    record: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
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


def _validate(rows: list[tuple[int, dict[str, str] | None]], report: ImportReport) -> list[_Row]:
    slugs = set()
    for _, record in rows:
        if record is not None:
            slugs.add(record.get("slug") or slugify(record.get("name", ""))[:220])
    existing = {
        p.slug: p for p in Product.objects.filter(slug__in=slugs).select_related("metadata")
    }
    first_line: dict[str, int] = {}
    valid = []
    for line, record in rows:
        if record is None:
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
    changed = fields_apply(product, row.fields)
    if changed:
        product.save()
    meta = getattr(product, "metadata", None) or ProductMetadata(product=product)
    meta_changed = fields_apply(meta, row.metadata)
    if meta_changed or meta.pk is None:
        meta.save()
    if changed or meta_changed:
        report.updated += 1
    else:
        report.unchanged += 1


def products_csv_check(*, text: str) -> None:
    """Raise CsvImportError when the CSV cannot be read at all (before queueing an import)."""
    _csv_rows(text)


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
