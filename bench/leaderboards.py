"""The leaderboards at scale, in process: rebuild time, Redis memory, read latency, SQL fallback.

    .venv/bin/python bench/leaderboards.py [--users 1000000] [--repeat 2000] [--fallback-only]

Uses a PostgreSQL database of its own (created, migrated and seeded with bench/seed.py on the
first run; --reseed drops it first) and the Redis database given, where it deletes only keys
under its own prefix. Prints, per window: the full rebuild from the ledger, the board's Redis
memory (and per million players), then p50/p99 of a position (rank, percentile and 25
neighbours each side) and of a 100-entry page at a random offset, each with its public names;
the same reads' Redis round trip alone; the page through the HTTP endpoint in process (page
cache missed), and the medians split into Redis, the rest of the read and HTTP; the public
names' Redis memory; and the SQL fallback with Redis out of the way: the time to count and
store every board's ladder (the beat's minute), then top pages and positions read from them.
--fallback-only skips the Redis part (the boards need not be rebuilt).
"""

import argparse
import os
import random
import statistics
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/rankly_boards_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/6"
PREFIX = "rankly-bench-boards"


def database_prepare(url: str, *, reseed: bool) -> bool:
    """Create the bench database if needed; True when it must be migrated and seeded."""
    name = urlparse(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reseed:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or reseed:
            conn.execute(f'CREATE DATABASE "{name}"')
            return True
    return False


def percentiles(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):6.2f} ms  p99 {p99:6.2f} ms"


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def random_members(client, *, key: str, count: int) -> list[bytes]:
    return client.zrandmember(key, count)


LIST = "/api/gamification/leaderboard/"


def http_get(client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)


def http_offsets(rng: random.Random, *, players: int, count: int) -> list[int]:
    """Distinct offsets, so that every page misses the page cache."""
    return rng.sample(range(players), min(count, players))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--fallback-only", action="store_true", help="Only the SQL fallback.")
    args = parser.parse_args()

    fresh = database_prepare(args.database_url, reseed=args.reseed)
    os.environ.update(
        DATABASE_URL=args.database_url,
        UPSTASH_REDIS_URL=args.redis_url,
        CACHE_KEY_PREFIX=PREFIX,
        # On a shared, loaded machine a 1 s timeout opens the breaker mid-rebuild.
        REDIS_SOCKET_TIMEOUT="5",
        DJANGO_SETTINGS_MODULE="config.settings.development",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client, override_settings

    from accounts.models import User
    from bench.seed import FULL, seed
    from config.redis import redis_call, redis_key
    from gamification import boards, selectors, services

    call_command("migrate", verbosity=0)
    if fresh:
        scale = replace(FULL, users=args.users, token_users=min(FULL.token_users, args.users))
        seed(database_url=args.database_url, scale=scale)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

    def forget(client) -> int:
        doomed = list(client.scan_iter(match=redis_key("*"), count=1000))
        return client.unlink(*doomed) if doomed else 0

    redis_call(forget, default=0)
    rng = random.Random(18)
    client = Client()
    print(f"players: {User.objects.count():,} users in {args.database_url.rsplit('/', 1)[-1]}")

    from django.utils import timezone

    for window in () if args.fallback_only else boards.WINDOWS:
        period = boards.period_of(window=window, at=timezone.now())
        started = time.perf_counter()
        players = services.leaderboard_rebuild(window=window)
        seconds = time.perf_counter() - started
        memory = boards.board_memory(period=period) or 0
        per_million = memory / players * 1_000_000 if players else 0
        print(
            f"\n{window}: {players:,} players; rebuild {seconds:.1f} s; Redis {memory / 2**20:.1f}"
            f" MiB ({per_million / 2**20:.1f} MiB per million players)"
        )
        if not players:
            continue
        # Players of the board picked at random by Redis.
        ids = redis_call(
            partial(random_members, key=period.key(), count=min(args.repeat, players)), default=[]
        )
        users = list(User.objects.filter(pk__in=[int(m) for m in ids]))
        rng.shuffle(users)
        position = partial(selectors.leaderboard_position, window=window, around=25)
        page = partial(selectors.leaderboard_page, window=window, limit=100)
        positions = [timed(partial(position, user=user)) for user in users]
        offsets = [rng.randrange(players) for _ in range(args.repeat)]
        pages = [timed(partial(page, offset=offset)) for offset in offsets]
        # The Redis side alone: one round trip each, without the public names' query.
        board_position = partial(boards.board_position, period=period, around=25)
        redis_positions = [timed(partial(board_position, user_id=user.pk)) for user in users]
        board_page = partial(boards.board_page, period=period, limit=100)
        redis_pages = [timed(partial(board_page, offset=offset)) for offset in offsets]
        # The HTTP endpoints in process (Django's test client, every middleware, the page
        # cache missed: each offset is new), rate limits off.
        with override_settings(RATELIMIT_ENABLE=False):
            http_pages = [
                timed(partial(http_get, client, f"{LIST}?window={window}&offset={o}&limit=100"))
                for o in http_offsets(rng, players=players, count=min(args.repeat, 500))
            ]
        print(f"  position, around 25: {percentiles(positions)}  ({len(positions)} players)")
        print(f"  page of 100 anywhere: {percentiles(pages)}  ({len(pages)} pages)")
        print(f"  Redis alone: position {percentiles(redis_positions)}")
        print(f"  Redis alone: page     {percentiles(redis_pages)}")
        print(f"  HTTP page of 100 (cache missed): {percentiles(http_pages)}")
        print(
            f"  medians: page {statistics.median(pages):.2f} ms, of which Redis"
            f" {statistics.median(redis_pages):.2f} ms; HTTP adds"
            f" {statistics.median(http_pages) - statistics.median(pages):.2f} ms"
        )
        print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    names_memory, names = boards.board_names_memory() or (0, 0)
    if names:
        print(
            f"\npublic names: {names:,} in Redis, {names_memory / 2**20:.1f} MiB"
            f" ({names_memory / names * 1_000_000 / 2**20:.1f} MiB per million players)"
        )

    # The fallback: the same reads with no Redis at all (a local cache of its own).
    local = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    print("\nSQL fallback (Redis away): 20 reads each, from the ladders the beat stores")
    with override_settings(CACHES=local):
        started = time.perf_counter()
        stored = services.leaderboard_ladders_store()
        seconds = time.perf_counter() - started
        print(f"  {stored} ladders counted and stored (the beat, each minute): {seconds:.2f} s")
        for window in boards.WINDOWS:
            top = [timed(partial(selectors.leaderboard_page, window=window)) for _ in range(20)]
            print(f"  {window} top page: {percentiles(top)}")
        for window in boards.WINDOWS:
            period = boards.period_of(window=window, at=timezone.now())
            board = selectors._sql_board(period)
            size = board.rows.count()
            ids = board.rows.order_by(*board.order).values_list(board.user, flat=True)
            for label, place in (("top", 0), ("middle", size // 2), ("bottom", size - 1)):
                if size == 0:
                    break
                user = User.objects.get(pk=ids[place])
                read = partial(selectors.leaderboard_position, user=user, window=window)
                times = [timed(read) for _ in range(20)]
                print(f"  {window} position, {label}: {percentiles(times)}")
        print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    redis_call(forget, default=0)


if __name__ == "__main__":
    main()
