from django.core.management.base import BaseCommand, CommandError

from adminops.services import tool_ranking_stats_rebuild
from config.services import ActionRefused


class Command(BaseCommand):
    help = "Recompute every product's ranking stats from the rankings. Safe to rerun."

    def handle(self, *args, **options) -> None:
        self.stdout.write("Rebuilding ranking stats...")
        try:
            report = tool_ranking_stats_rebuild(actor=None)
        except ActionRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Ranking stats rebuilt: {report['result']}"))
