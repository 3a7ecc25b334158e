from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.services import ActionRefused
from products.importing import CsvImportError, products_import_csv


class Command(BaseCommand):
    help = (
        "Create or update (by slug) products from a CSV file; rejected rows are listed. "
        "Columns: name, category, slug, brand, image_url, is_active, description, tags, attributes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--all-or-nothing",
            action="store_true",
            help="Import nothing if any row is rejected.",
        )

    def handle(self, *args, path: Path, all_or_nothing: bool, **options) -> None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc

        def progress(done: int, total: int) -> None:
            if done == total or done % 500 == 0:
                self.stdout.write(f"  {done}/{total} valid rows written")

        try:
            report = products_import_csv(
                actor=None, text=text, all_or_nothing=all_or_nothing, on_progress=progress
            )
        except (CsvImportError, ActionRefused) as exc:
            raise CommandError(str(exc)) from exc
        for rejected in report.rejected:
            self.stdout.write(
                self.style.WARNING(
                    f"  line {rejected['line']} ({rejected['slug']}): {rejected['errors']}"
                )
            )
        summary = (
            f"{report.rows} rows: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.rejected)} rejected."
        )
        if not report.applied:
            raise CommandError(f"Nothing imported (all or nothing). {summary}")
        self.stdout.write(self.style.SUCCESS(summary))
