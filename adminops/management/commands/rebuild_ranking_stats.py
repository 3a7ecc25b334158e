from django.core.management.base import BaseCommand

from adminops.services import tool_ranking_stats_rebuild


class Command(BaseCommand):
    help = "Recompute every product's ranking stats from the rankings. Safe to rerun."

    def handle(self, *args, **options) -> None:
        self.stdout.write("Rebuilding ranking stats...")
        report = tool_ranking_stats_rebuild(actor=None)
        self.stdout.write(self.style.SUCCESS(f"Ranking stats rebuilt: {report['result']}"))
