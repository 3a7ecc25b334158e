"""CPU and statements per ranking submission, `ranking_submit` called in process.

    .venv/bin/python -m bench.write_cost [--submissions 400] [--database-url ...]

Each submission is another seeded user's, as the load generator's are: the ledger, the streak,
the achievements it reaches, and every event after the commit. It runs on a copy of the bench
database (`make bench` leaves one; no server may be using it while it is copied) and a Redis
key prefix of its own, with the leaderboards built first, as the server runs. No network and
one submission at a time: steady enough to compare two versions of the write path on a busy
machine. Prints the median CPU of a submission, the share of it spent after the commit
(events, board moves) and the statements run.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.run import database_name, maintenance

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rankly_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
COPY = "rankly_write_cost"
# Seeded users past the load generator's token users, none of whom submitted today.
FIRST_USER = 2000


def database_copy(database_url: str) -> str:
    """A fresh copy of the bench database; returns its URL."""
    source = database_name(database_url)
    maintenance(
        database_url,
        f'DROP DATABASE IF EXISTS "{COPY}" WITH (FORCE)',
        f'CREATE DATABASE "{COPY}" TEMPLATE "{source}"',
    )
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{COPY}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=400)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    args = parser.parse_args()
    prefix = f"write-cost-{os.getpid()}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=database_copy(args.database_url),
        UPSTASH_REDIS_URL=args.redis_url,
        CACHE_KEY_PREFIX=prefix,
        BROKER_KEY_PREFIX=f"{prefix}:broker:",
    )
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.db import connections

    from accounts.models import User
    from bench.run import cache_keys_dropped
    from bench.scenarios import Catalog
    from bench.seed import FULL
    from gamification import selectors, services
    from rankings.services import ranking_submit

    catalog, rng = Catalog(FULL), random.Random(1)
    users = list(User.objects.filter(pk__gte=FIRST_USER).order_by("pk")[: args.submissions])
    run = {"statements": 0, "committed_at": 0.0}
    database = connections["default"]
    run_hooks = database.run_and_clear_commit_hooks

    def timed_hooks() -> None:
        run["committed_at"] = time.process_time()
        run_hooks()

    def counted(execute, sql, params, many, context):
        run["statements"] += 1
        return execute(sql, params, many, context)

    cpu, hooks, statements, paid = [], [], [], 0
    with cache_keys_dropped(redis_url=args.redis_url, prefix=prefix):
        for window in selectors.leaderboard_windows():
            services.leaderboard_rebuild(window=window)
        database.run_and_clear_commit_hooks = timed_hooks
        try:
            with database.execute_wrapper(counted):
                for user in users:
                    payload = catalog.ranking_payload(rng)
                    run.update(statements=0)
                    start = time.process_time()
                    result = ranking_submit(
                        user=user, category=payload["category"], product_ids=payload["product_ids"]
                    )
                    end = time.process_time()
                    cpu.append((end - start) * 1000)
                    hooks.append((end - run["committed_at"]) * 1000)
                    statements.append(run["statements"])
                    paid += result.points_awarded > 0
        finally:
            database.run_and_clear_commit_hooks = run_hooks
            connections.close_all()
            maintenance(args.database_url, f'DROP DATABASE IF EXISTS "{COPY}" WITH (FORCE)')
    print(f"submissions: {len(cpu)}, each by another seeded user; {paid} paid points")
    print(f"CPU per submission: median {statistics.median(cpu):.2f} ms")
    print(f"  of which after the commit: median {statistics.median(hooks):.2f} ms")
    print(f"statements per submission: median {statistics.median(statements):.0f}")


if __name__ == "__main__":
    main()
