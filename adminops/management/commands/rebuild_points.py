from django.core.management.base import BaseCommand, CommandError

from adminops.services import tool_points_rebuild
from config.services import ActionRefused


class Command(BaseCommand):
    help = "Make every user's points the sum of their ledger, printing progress. Safe to rerun."

    def handle(self, *args, **options) -> None:
        def progress(done: int, total: int) -> None:
            if done == total or done % 500 == 0:
                self.stdout.write(f"  {done}/{total} users checked")

        try:
            report = tool_points_rebuild(actor=None, on_progress=progress)
        except ActionRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Points rebuilt for {report['users']} users: "
                f"{report['mismatches_fixed']} mismatches fixed."
            )
        )
