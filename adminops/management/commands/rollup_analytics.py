from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from adminops.services import analytics_rollup
from config.rollups import rollup_earliest_day, today_utc
from config.services import ActionRefused


class Command(BaseCommand):
    help = (
        "Recompute the analytics roll-ups (page views, searches) of a range of closed UTC days "
        "from the raw rows: by default every day the retention period still holds. Safe to rerun."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="first", type=date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument("--to", dest="last", type=date.fromisoformat, help="YYYY-MM-DD")

    def handle(self, *args, first: date | None, last: date | None, **options) -> None:
        first = first or rollup_earliest_day()
        last = last or today_utc() - timedelta(days=1)
        try:
            days = analytics_rollup(first=first, last=last)
        except ActionRefused as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Rolled up {days} days, {first} to {last}."))
