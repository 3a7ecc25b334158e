"""Time the game's hot paths on the configured database and print the figures.

    DATABASE_URL=postgres://... .venv/bin/python bench/game_queries.py [--seed-users 1000000]

--seed-users fills accounts_user with that many bench users in one statement (once); use a
database of its own. Then it times the leaderboard position (rank counted through the partial
index user_leaderboard) for users at the top, middle and bottom of the board, against a plain
COUNT(*), and ranking submissions end to end.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")

import django

django.setup()

from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from gamification import selectors  # noqa: E402
from products.models import Product, ProductMetadata  # noqa: E402
from rankings.services import ranking_submit  # noqa: E402

RANKED_SQL = "is_active AND NOT is_staff AND NOT leaderboard_opt_out AND NOT leaderboard_excluded"


def timed(call, repeat: int) -> tuple[float, float]:
    """Median and worst time of `call` in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def seed(count: int) -> None:
    if User.objects.filter(email__startswith="bench-").exists():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO accounts_user (password, is_superuser, email, display_name, timezone,
                points, leaderboard_opt_out, leaderboard_excluded, is_active, is_staff, date_joined,
                handle)
            SELECT '!', false, 'bench-' || g || '@example.com', '', 'UTC',
                (g::bigint * 7919) %% 100000, g %% 50 = 0, false, g %% 97 <> 0, false, now(),
                'bench-' || g
            FROM generate_series(1, %s) AS g
            """,
            [count],
        )
        cursor.execute("VACUUM ANALYZE accounts_user")


def bench_position(repeat: int) -> None:
    total = User.objects.filter(selectors.RANKED).count()
    print(f"ranked users: {total}")
    for label, order in (("top", "-points"), ("middle", None), ("bottom", "points")):
        board = User.objects.filter(selectors.RANKED)
        user = (
            board.order_by(order, "id").first()
            if order
            else board.order_by("-points", "id")[total // 2]
        )

        def plain(points: int = user.points) -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT COUNT(*) FROM accounts_user WHERE {RANKED_SQL} AND points > %s",
                    [points],
                )

        rank_median, rank_worst = timed(
            lambda u=user: selectors.leaderboard_rank(points=u.points), repeat
        )
        plain_median, plain_worst = timed(plain, repeat)
        position_median, _ = timed(
            lambda u=user: selectors.leaderboard_position(user=u, window="all"), repeat
        )
        print(
            f"{label:>6}: rank via index {rank_median:7.1f} ms (worst {rank_worst:.1f}), "
            f"plain COUNT(*) {plain_median:7.1f} ms (worst {plain_worst:.1f}), "
            f"whole position {position_median:7.1f} ms"
        )


def bench_submit(repeat: int) -> None:
    products = list(Product.objects.filter(category="bench-phones")[:10])
    if len(products) < 10:
        products = [
            Product.objects.create(name=f"Bench {i}", slug=f"bench-{i}", category="bench-phones")
            for i in range(10)
        ]
        ProductMetadata.objects.bulk_create(ProductMetadata(product=p) for p in products)
    user, _ = User.objects.get_or_create(email="bench-submitter@example.com")
    ids = [p.pk for p in products]
    median, worst = timed(
        lambda: ranking_submit(user=user, category="bench-phones", product_ids=ids), repeat
    )
    print(f"ranking_submit of 10 products: median {median:.1f} ms, worst {worst:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed-users", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    if args.seed_users:
        seed(args.seed_users)
    bench_position(args.repeat)
    bench_submit(args.repeat)
