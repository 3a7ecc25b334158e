"""Time the bulk employee tools on the bench's seeded database: points rebuild and achievement
re-evaluation over every user, each run three ways (nothing to do, every total wrong, every
unlock missing), then one batch of re-evaluation both ways (batched, and user by user as after
an action) on the same users, for their ratio. Prints the figures; asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rankly_bench_jobs \\
        .venv/bin/python -m bench.jobs_bulk [--smoke] [--reuse]

The seed writes no searches: unless some exist, each user gets a few (`--searches`), spread
over the last weeks, so that the searches-made metric has days and zones to count.
"""

import argparse
import os
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

SEARCH_QUERIES = 20


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="200 users instead of 100,000")
    parser.add_argument("--reuse", action="store_true", help="keep the seeded database")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case")
    parser.add_argument("--searches", type=int, default=5, help="searches per user to add")
    parser.add_argument(
        "--only", choices=["points", "achievements"], help="time one tool's cases only"
    )
    args = parser.parse_args()
    database_url = os.environ["DATABASE_URL"]

    from bench.run import recreate_database
    from bench.seed import FULL, SMOKE, seed

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.models import User
    from adminops.services import tool_achievements_reevaluate, tool_points_rebuild
    from gamification import services
    from gamification.models import ActivityKind, ActivityLog, Metric, UserAchievement
    from products.models import UserProductSearch

    if not args.reuse:
        recreate_database(database_url)
        call_command("migrate", "--noinput", verbosity=0)
        seed(database_url=database_url, scale=SMOKE if args.smoke else FULL)
    if args.searches and not UserProductSearch.objects.exists():
        with connection.cursor() as cursor:
            # A few queries per user, some repeated on a day, over 30 days: distinct per day.
            cursor.execute(
                """
                INSERT INTO products_userproductsearch (user_id, query, result_count, created_at)
                SELECT u.id, 'query ' || ((u.id * 7 + n) %% %s), 1,
                       now() - make_interval(
                           mins => ((u.id * 37 + n * 1031) %% (30 * 24 * 60))::integer)
                FROM accounts_user u CROSS JOIN generate_series(1, %s) AS n
                """,
                [SEARCH_QUERIES, args.searches],
            )
    print(
        f"users: {User.objects.count()}, ledger rows: {ActivityLog.objects.count()}, "
        f"searches: {UserProductSearch.objects.count()}; {load()}"
    )

    def case(name: str, spoil, run) -> None:
        figures = []
        for _ in range(args.repeat):
            spoil()
            seconds, report = timed(run)
            figures.append(seconds)
        print(
            f"{name}: median {statistics.median(figures):.2f} s "
            f"(runs {', '.join(f'{s:.2f}' for s in figures)}); last report {report}; {load()}"
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
        points_batch_both_ways(services=services, transaction=transaction, User=User)
    if args.only != "points":
        # The seed's achievements may differ from the rules (the searches added above): the
        # first run, not timed, pays what they left due.
        print(f"settled first: {reevaluate()}")
        case("achievements re-evaluation, nothing to award", nothing, reevaluate)
        case("achievements re-evaluation, every unlock missing", unlocks_missing, reevaluate)
        batch_both_ways(
            services=services,
            transaction=transaction,
            models=(User, UserAchievement, ActivityLog, ActivityKind, Metric),
            repeat=args.repeat,
        )
    print(f"unlocked now: {UserAchievement.objects.filter(unlocked_at__isnull=False).count()}")


class Undo(Exception):
    """Rolls back a timed run."""


def points_batch_both_ways(*, services, transaction, User) -> None:
    """One batch of totals written both ways, each run rolled back: the portable CASE
    (`bulk_update`) against `UPDATE ... FROM unnest`, on the same rows."""
    ids = list(User.objects.order_by("pk").values_list("pk", flat=True)[: services.BATCH_USERS])
    totals = {pk: pk % 1000 for pk in ids}

    def run(write) -> float:
        try:
            with transaction.atomic():
                seconds, _ = timed(write)
                raise Undo(seconds)
        except Undo as undo:
            return undo.args[0]

    def case_expression():
        User.objects.bulk_update([User(pk=pk, points=p) for pk, p in totals.items()], ["points"])

    def unnest():
        services._points_store(totals=totals)

    figures = {"case": [], "unnest": []}
    for _ in range(3):
        figures["case"].append(run(case_expression))
        figures["unnest"].append(run(unnest))
    case, joined = (statistics.median(figures[name]) for name in ("case", "unnest"))
    print(
        f"one batch of {len(ids)} totals written: CASE {case:.2f} s, unnest {joined:.3f} s "
        f"({case / joined:.0f}x); {load()}"
    )


def batch_both_ways(*, services, transaction, models, repeat: int) -> None:
    """One batch of users with every unlock missing, re-evaluated batched and user by user,
    each run rolled back: the ratio of the two on the same rows and the same machine."""
    User, UserAchievement, ActivityLog, ActivityKind, Metric = models
    ids = list(
        User.objects.filter(is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)[: services.BATCH_USERS]
    )

    def run(evaluate) -> float:
        try:
            with transaction.atomic():
                UserAchievement.objects.filter(user_id__in=ids).delete()
                ActivityLog.objects.filter(
                    user_id__in=ids, kind=ActivityKind.ACHIEVEMENT_UNLOCKED
                ).delete()
                seconds, _ = timed(evaluate)
                raise Undo(seconds)
        except Undo as undo:
            return undo.args[0]

    def batched():
        return services._achievements_reevaluate_batch(user_ids=ids, notify=False)

    def one_by_one():
        for user in User.objects.filter(pk__in=ids).order_by("pk"):
            services.achievements_evaluate(user=user, metrics=Metric.values, notify=False)

    figures = {"batched": [], "user by user": []}
    for _ in range(repeat):
        figures["batched"].append(run(batched))
        figures["user by user"].append(run(one_by_one))
    medians = {name: statistics.median(runs) for name, runs in figures.items()}
    print(
        f"one batch of {len(ids)} users, every unlock missing: batched {medians['batched']:.2f} s, "
        f"user by user {medians['user by user']:.2f} s "
        f"({medians['user by user'] / medians['batched']:.1f}x); {load()}"
    )


if __name__ == "__main__":
    main()
