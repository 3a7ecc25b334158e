import time

from django.core.management.base import BaseCommand, CommandError

from config.caching import WARMERS, CacheType
from config.redis import redis_is_configured


class Command(BaseCommand):
    help = "Fill every cache type ahead of demand by running the registered warmers."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--type",
            dest="types",
            action="append",
            choices=[t.value for t in CacheType],
            help="Warm only this type (repeatable). Default: every type.",
        )

    def handle(self, *args, types: list[str] | None = None, **options) -> None:
        chosen = [CacheType(t) for t in types] if types else list(CacheType)
        jobs = [(t, warm) for t in chosen for warm in WARMERS[t]]
        if not jobs:
            raise CommandError("No cache warmer is registered for these types.")
        if not redis_is_configured():
            self.stdout.write(
                self.style.WARNING(
                    "No Redis configured: this warms only this command's own memory, "
                    "not the cache of the running server."
                )
            )
        warmed: dict[CacheType, int] = dict.fromkeys(chosen, 0)
        failed = 0
        for done, (cache_type, warm) in enumerate(jobs, start=1):
            started = time.monotonic()
            try:
                keys = warm()
            except Exception as exc:
                failed += 1
                self.stderr.write(f"  {cache_type}: {warm.__name__} failed: {exc}")
                continue
            warmed[cache_type] += keys
            self.stdout.write(
                f"{_bar(done, len(jobs))} {cache_type}: {warm.__name__} warmed {keys} keys "
                f"in {time.monotonic() - started:.2f}s"
            )
        self.stdout.write("")
        for cache_type in chosen:
            registered = len(WARMERS[cache_type])
            note = f"{warmed[cache_type]} keys" if registered else "no warmer registered"
            self.stdout.write(f"  {cache_type.value:<24} {note}")
        total = sum(warmed.values())
        summary = f"Warmed {total} keys over {len(jobs)} warmers"
        if failed:
            raise CommandError(f"{summary}; {failed} warmers failed")
        self.stdout.write(self.style.SUCCESS(summary))


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
