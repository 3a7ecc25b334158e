import time
from typing import cast

from django.core.management.base import BaseCommand, CommandError

from gamification.boards import Window
from gamification.selectors import leaderboard_windows
from gamification.services import leaderboard_rebuild


class Command(BaseCommand):
    help = "Rebuild the current Redis leaderboards from the points ledger (all kept windows)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--window", action="append", choices=leaderboard_windows(), help="Only this window."
        )

    def handle(self, *args, window: list[str] | None, **options) -> None:
        for name in window or leaderboard_windows():
            started = time.perf_counter()
            players = leaderboard_rebuild(window=cast(Window, name))
            if players is None:
                raise CommandError(f"{name}: Redis is not available or a rebuild is running")
            seconds = time.perf_counter() - started
            self.stdout.write(f"{name}: {players} players in {seconds:.1f} s")
