"""Time the bulk employee tools on the bench's seeded database: points rebuild and achievement
re-evaluation over every user, each run three ways (nothing to do, every total wrong, every
unlock missing). Prints the figures; asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rankly_bench_jobs \\
        .venv/bin/python -m bench.jobs_bulk [--smoke] [--reuse]
"""

import argparse
import os
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="200 users instead of 100,000")
    parser.add_argument("--reuse", action="store_true", help="keep the seeded database")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case")
    parser.add_argument(
        "--only", choices=["points", "achievements"], help="time one tool's cases only"
    )
    args = parser.parse_args()
    database_url = os.environ["DATABASE_URL"]

    from bench.run import recreate_database
    from bench.seed import FULL, SMOKE, seed

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from adminops.services import tool_achievements_reevaluate, tool_points_rebuild
    from gamification.models import ActivityKind, ActivityLog, UserAchievement

    if not args.reuse:
        recreate_database(database_url)
        call_command("migrate", "--noinput", verbosity=0)
        seed(database_url=database_url, scale=SMOKE if args.smoke else FULL)
    print(f"users: {User.objects.count()}, ledger rows: {ActivityLog.objects.count()}")

    def case(name: str, spoil, run) -> None:
        figures = []
        for _ in range(args.repeat):
            spoil()
            seconds, report = timed(run)
            figures.append(seconds)
        print(
            f"{name}: median {statistics.median(figures):.2f} s "
            f"(runs {', '.join(f'{s:.2f}' for s in figures)}); last report {report}"
        )

    def nothing() -> None:
        pass

    def totals_wrong() -> None:
        User.objects.update(points=0)

    def unlocks_missing() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM gamification_activitylog WHERE kind = %s",
                [ActivityKind.ACHIEVEMENT_UNLOCKED],
            )
            cursor.execute("DELETE FROM gamification_userachievement")
        call_command("rebuild_points", stdout=open(os.devnull, "w"))  # noqa: SIM115

    def rebuild():
        return tool_points_rebuild(actor=None)

    def reevaluate():
        return tool_achievements_reevaluate(actor=None)

    if args.only != "achievements":
        case("points rebuild, nothing to fix", nothing, rebuild)
        case("points rebuild, every total wrong", totals_wrong, rebuild)
    if args.only != "points":
        case("achievements re-evaluation, nothing to award", nothing, reevaluate)
        case("achievements re-evaluation, every unlock missing", unlocks_missing, reevaluate)
    print(f"unlocked now: {UserAchievement.objects.filter(unlocked_at__isnull=False).count()}")


if __name__ == "__main__":
    main()
