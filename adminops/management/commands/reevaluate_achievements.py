from django.core.management.base import BaseCommand

from adminops.services import tool_achievements_reevaluate


class Command(BaseCommand):
    help = (
        "Award every achievement the history has earned and was never awarded, "
        "without notifications. Safe to rerun: nothing is awarded twice."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write("Re-evaluating achievements over history...")
        report = tool_achievements_reevaluate(actor=None)
        self.stdout.write(self.style.SUCCESS(f"Achievements re-evaluated: {report['result']}"))
