"""Time every analytics query at the bench's 100,000 users and print its median and p99.

    .venv/bin/python -m bench.analytics --database-url postgres://.../rankly_bench_analytics \
        [--seed] [--rollup] [--repeat 40]

--seed drops and creates that database, migrates it, seeds it with bench/seed.py and adds what
the seed has no rows for: a year of searches and page views (SEARCHES and PAGE_VIEWS rows), then
rolls up every closed day of that year as `manage.py rollup_analytics` does in production.
--rollup does only that last step (on a copy seeded before). Each query is the selector an
analytics endpoint calls, run uncached, for the default month and for the longest period (a
year) with the largest limit (100); it reads the roll-ups for closed days and the raw rows for
the rest, so a database that was never rolled up times the raw queries.
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SEARCHES = 1_000_000
PAGE_VIEWS = 3_000_000

EXTRA_STEPS = [
    (
        "searches",
        # Ten searches a user over a year, 5,000 distinct queries, one in eight finding nothing.
        """
        INSERT INTO products_userproductsearch (user_id, query, result_count, created_at)
        SELECT CASE WHEN g %% 5 = 0 THEN NULL ELSE 1 + g %% %(users)s END,
            'query ' || (g::bigint * 7919) %% 5000,
            CASE WHEN g %% 8 = 0 THEN 0 ELSE 1 + g %% 30 END,
            now() - (g %% (365 * 1440)) * interval '1 minute'
        FROM generate_series(1, %(searches)s) AS g
        """,
    ),
    (
        "page views",
        # A year of views on 2,000 product pages and 50 other paths; two in five anonymous.
        """
        INSERT INTO gamification_pageview (path, product_id, user_id, session_key, referrer,
            created_at)
        SELECT CASE WHEN g %% 3 = 0 THEN '/page/' || g %% 50 ELSE '/products/' || p END,
            CASE WHEN g %% 3 = 0 THEN NULL ELSE p END,
            CASE WHEN g %% 5 < 2 THEN NULL ELSE 1 + (g * 31) %% %(users)s END,
            md5(g::text), '', now() - (g %% (365 * 1440)) * interval '1 minute'
        FROM generate_series(1, %(page_views)s) AS g,
            LATERAL (SELECT 1 + (g * 7) %% %(products)s AS p) AS pick
        """,
    ),
]


def prepare(database_url: str) -> None:
    from bench.run import manage, recreate_database, server_env
    from bench.seed import FULL, seed

    recreate_database(database_url)
    env = server_env(
        database_url=database_url, redis_url="", metrics_token="", cache_prefix="analytics"
    )
    migrated = manage("migrate", "--noinput", "-v0", env=env)
    if migrated.returncode:
        raise SystemExit(f"migrate failed:\n{migrated.stderr}")
    seed(database_url=database_url, scale=FULL)
    seed_extra(database_url)
    rollup(database_url)


def rollup(database_url: str) -> None:
    """Roll up the seeded year: its days are older than the default retention, so say it
    is longer, as a deployment keeping a year of raw rows would."""
    from bench.run import manage, server_env

    env = server_env(
        database_url=database_url, redis_url="", metrics_token="", cache_prefix="analytics"
    )
    env["RETENTION_DAYS"] = "400"
    started = time.perf_counter()
    first = (datetime.now(UTC) - timedelta(days=366)).date().isoformat()
    rolled = manage("rollup_analytics", f"--from={first}", env=env)
    if rolled.returncode:
        raise SystemExit(f"rollup_analytics failed:\n{rolled.stderr}")
    print(f"  {rolled.stdout.strip()} in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def seed_extra(database_url: str) -> None:
    """The searches and page views bench/seed.py does not write."""
    from bench.seed import FULL

    params = {
        "users": FULL.users,
        "products": FULL.products,
        "searches": SEARCHES,
        "page_views": PAGE_VIEWS,
    }
    with psycopg.connect(database_url) as conn:
        for name, sql in EXTRA_STEPS:
            started = time.perf_counter()
            conn.execute(sql, params)
            print(f"  seeded {name:<20} {time.perf_counter() - started:6.2f} s")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and p99 of `call` in milliseconds, after one untimed run that warms the buffers."""
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), statistics.quantiles(times, n=100, method="inclusive")[98]


def queries() -> dict[str, Callable[[], object]]:
    from django.utils import timezone

    from gamification import selectors as game
    from products import selectors as products
    from rankings import selectors as rankings

    now = timezone.now()
    today = (now - timedelta(hours=12)).date()
    product_id = products.products_top_ranked(limit=1)[0].product_id
    calls: dict[str, Callable[[], object]] = {}
    for days in (30, 365):
        since = now - timedelta(days=days)
        calls.update(
            {
                f"popular_searches {days}d": lambda s=since: products.popular_searches(
                    since=s, limit=100
                ),
                f"searches_without_results {days}d": lambda s=since: (
                    products.searches_without_results(since=s, limit=100)
                ),
                f"page_views_per_day {days}d": lambda s=since: game.page_views_per_day(since=s),
                f"page_views_per_day of a product {days}d": lambda s=since: game.page_views_per_day(
                    since=s, product_id=product_id
                ),
                f"products_viewed_most {days}d": lambda s=since: game.products_viewed_most(
                    since=s, limit=100
                ),
                f"top_paths {days}d": lambda s=since: game.top_paths(since=s, limit=100),
                f"active_users_per_day {days}d": lambda s=since: game.active_users_per_day(since=s),
                f"active_users_per_week {days}d": lambda s=since: game.active_users_per_week(
                    since=s
                ),
                f"achievement_unlocks_since {days}d": lambda s=since: (
                    game.achievement_unlocks_since(since=s)
                ),
                f"rankings_per_category_per_day {days}d": lambda s=since: (
                    rankings.rankings_per_category_per_day(since=s)
                ),
                f"rankings_per_category_per_day of one {days}d": lambda s=since: (
                    rankings.rankings_per_category_per_day(since=s, category="Headphones")
                ),
                f"product_rank_movement {days}d": lambda s=since: rankings.product_rank_movement(
                    product_id=product_id, since=s
                ),
            }
        )
    calls.update(
        {
            "achievement_unlock_counts": game.achievement_unlock_counts,
            "top_streaks": lambda: list(game.top_streaks(today=today, limit=100)),
            "streak_records": lambda: list(game.streak_records(limit=100)),
            "streak_freezes_held": lambda: game.streak_freezes_held(today=today),
        }
    )
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed", action="store_true", help="recreate, migrate and seed first")
    parser.add_argument("--rollup", action="store_true", help="roll up the seeded year first")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    if args.seed:
        prepare(args.database_url)
    elif args.rollup:
        rollup(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    print(f"{'query':<48} {'median ms':>10} {'p99 ms':>10}")
    for name, call in queries().items():
        median, p99 = timed(call, args.repeat)
        print(f"{name:<48} {median:10.1f} {p99:10.1f}")


if __name__ == "__main__":
    main()
