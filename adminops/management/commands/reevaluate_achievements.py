from django.core.management.base import BaseCommand, CommandError

from adminops.services import tool_achievements_reevaluate
from config.services import ActionRefused


class Command(BaseCommand):
    help = (
        "Award every achievement the history has earned and was never awarded, "
        "without notifications. Safe to rerun: nothing is awarded twice."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write("Re-evaluating achievements over history...")
        try:
            report = tool_achievements_reevaluate(actor=None)
        except ActionRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Achievements re-evaluated: {report['result']}"))
