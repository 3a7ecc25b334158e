"""Fill a migrated PostgreSQL database with consistent benchmark data, set-based.

Every table is written by one INSERT ... SELECT over generate_series, so 100,000 users and a
million ledger rows take seconds instead of the hours the ORM would need. The data obeys the
game's invariants: User.points is the sum of the user's ledger and PeriodPoints its sums in the
current day, week and month, ProductMetadata.ranking_count counts the rankings, streaks match
the days in the ledger and achievements are unlocked exactly where their metric reaches the
threshold (and paid into the ledger).

Bench users 1..token_users can sign in with `Authorization: Token bench-token-<id>`; the staff
user (id users + 1) with `bench-staff-token`.
"""

import argparse
import time
from dataclasses import asdict, dataclass, replace

import psycopg

from gamification.rules import (
    FREEZES_MAX,
    STREAK_BONUS_MAX,
    STREAK_BONUS_PER_DAY,
    STREAK_DAYS_PER_FREEZE,
    SUBMISSION_POINTS,
)

TOKEN_PREFIX = "bench-token-"
STAFF_TOKEN = "bench-staff-token"

CATEGORY_NAMES = [
    "Headphones",
    "Coffee Makers",
    "Running Shoes",
    "Smartphones",
    "Board Games",
    "Backpacks",
    "Mechanical Keyboards",
    "Blenders",
    "Tents",
    "Sunscreens",
    "E-readers",
    "Office Chairs",
    "Water Bottles",
    "Video Games",
    "Desk Lamps",
    "Cookbooks",
    "Bicycles",
    "Smartwatches",
    "Skincare",
    "Speakers",
]
BRANDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka"]


@dataclass(frozen=True)
class Scale:
    users: int
    products: int
    categories: int
    token_users: int

    @property
    def products_per_category(self) -> int:
        return self.products // self.categories


FULL = Scale(users=100_000, products=2_000, categories=20, token_users=1_000)
SMOKE = Scale(users=200, products=50, categories=5, token_users=40)


def _check(scale: Scale) -> None:
    per_category = scale.products_per_category
    if scale.categories > len(CATEGORY_NAMES):
        raise ValueError(f"at most {len(CATEGORY_NAMES)} categories")
    # Rankings pick products (offset + 7p) mod per_category for p = 1..10: distinct when
    # 7 and per_category are coprime and a category holds at least 10 products.
    if per_category < 10 or per_category % 7 == 0 or scale.products % scale.categories:
        raise ValueError("products must split into categories of >= 10, not a multiple of 7")
    if scale.token_users > scale.users:
        raise ValueError("token_users must not exceed users")


# Per user u (1..U), all derived from u so that every table agrees:
#   active days      d(u) = 1 + u % 9, consecutive, the last one (u % 4) days ago
#   categories       n(u) = 1 + u % 3 (<= d(u), since u % 9 >= u % 3), category (7u + 3j) % C
#   ranked products  m(u, j) = 1 + (u + j) % 10 of that category, positions 1..m
#   ledger per day i one ranking_submitted (+SUBMISSION_POINTS) and one streak_bonus
#   (+min(STREAK_BONUS_PER_DAY * i, STREAK_BONUS_MAX)), the game's rules,
#   so 2 * d(u) rows: a million rows for 100,000 users, plus the achievements' rows.
STEPS: list[tuple[str, str]] = [
    (
        "users",
        """
        INSERT INTO accounts_user (id, password, is_superuser, email, display_name, timezone,
            points, leaderboard_opt_out, leaderboard_excluded, is_active, is_staff, date_joined,
            handle)
        SELECT u, '!', false, 'user' || u || '@bench.rankly.test', 'Bench User ' || u,
            CASE u %% 10 WHEN 0 THEN 'Europe/Paris' WHEN 1 THEN 'America/New_York' ELSE 'UTC' END,
            0, u %% 97 = 0, u %% 199 = 0, true, false, now() - make_interval(days => u %% 365),
            'bench-' || u
        FROM generate_series(1, %(users)s) AS u
        UNION ALL
        SELECT %(users)s + 1, '!', false, 'staff@bench.rankly.test', 'Bench Staff', 'UTC',
            0, false, false, true, true, now(), 'bench-staff'
        """,
    ),
    (
        "products",
        """
        INSERT INTO products_product (id, name, slug, brand, category, image_url, is_active,
            created_at, updated_at)
        SELECT p, brands[1 + p %% cardinality(brands)] || ' ' || cats[1 + (p - 1) %% %(categories)s]
                || ' ' || (1 + (p - 1) / %(categories)s),
            'product-' || p, brands[1 + p %% cardinality(brands)],
            cats[1 + (p - 1) %% %(categories)s], 'https://img.rankly.test/' || p || '.jpg', true,
            now() - make_interval(days => p %% 400), now()
        FROM generate_series(1, %(products)s) AS p,
            (SELECT %(category_names)s::text[] AS cats, %(brands)s::text[] AS brands) AS names
        """,
    ),
    (
        "product metadata",
        """
        INSERT INTO products_productmetadata (product_id, description, attributes, tags,
            view_count, ranking_count, updated_at)
        SELECT p, 'A benchmark product, number ' || p || '.',
            jsonb_build_object('weight_g', 100 + p %% 900, 'colour', (ARRAY['black', 'white',
                'red', 'blue'])[1 + p %% 4]),
            jsonb_build_array('bench', 'tier-' || p %% 5), (p * 7919) %% 5000, 0, now()
        FROM generate_series(1, %(products)s) AS p
        """,
    ),
    (
        "rankings",
        """
        INSERT INTO rankings_productranking (user_id, product_id, category, position, points,
            created_at, updated_at)
        SELECT u, k * %(categories)s + c + 1, cats[c + 1], pos, 11 - pos, ts, ts
        FROM generate_series(1, %(users)s) AS u
        CROSS JOIN LATERAL generate_series(0, u %% 3) AS j
        CROSS JOIN LATERAL (SELECT (7 * u + 3 * j) %% %(categories)s AS c,
            current_date - (u %% 4) + time '12:00' AT TIME ZONE 'UTC' AS ts) AS pick
        CROSS JOIN LATERAL generate_series(1, 1 + (u + j) %% 10) AS pos
        CROSS JOIN LATERAL (SELECT (31 * u + 7 * pos) %% %(per_category)s AS k) AS product
        CROSS JOIN (SELECT %(category_names)s::text[] AS cats) AS names
        """,
    ),
    (
        "ranking counts",
        """
        UPDATE products_productmetadata AS m SET ranking_count = counted.n
        FROM (SELECT product_id, count(*) AS n FROM rankings_productranking
              GROUP BY product_id) AS counted
        WHERE m.product_id = counted.product_id
        """,
    ),
    (
        "ledger",
        """
        INSERT INTO gamification_activitylog (user_id, kind, points, local_date, data, reason,
            created_at)
        SELECT u, kind.name, CASE kind.name WHEN 'ranking_submitted' THEN %(submission_points)s
                ELSE least(%(bonus_per_day)s * i, %(bonus_max)s) END,
            day, CASE kind.name WHEN 'streak_bonus' THEN jsonb_build_object('streak', i)
                ELSE '{}'::jsonb END,
            '', day + time '12:00' AT TIME ZONE 'UTC' + kind.offset_
        FROM generate_series(1, %(users)s) AS u
        CROSS JOIN LATERAL generate_series(1, 1 + u %% 9) AS i
        CROSS JOIN LATERAL (SELECT current_date - (u %% 4) - (u %% 9 + 1 - i) AS day) AS d
        CROSS JOIN (VALUES ('ranking_submitted', interval '0'),
                           ('streak_bonus', interval '1 second')) AS kind(name, offset_)
        """,
    ),
    (
        "streaks",
        """
        INSERT INTO gamification_streak (user_id, current_length, longest_length,
            last_active_date, freezes_left, updated_at)
        SELECT u, 1 + u %% 9, 1 + u %% 9 + u %% 5, current_date - (u %% 4),
            least((1 + u %% 9) / %(days_per_freeze)s, %(freezes_max)s), now()
        FROM generate_series(1, %(users)s) AS u
        """,
    ),
    (
        "achievements",
        """
        INSERT INTO gamification_userachievement (user_id, achievement_id, progress,
            unlocked_at, updated_at)
        SELECT m.u, a.id, v.value, m.at, m.at
        FROM (SELECT u, 1 + u %% 9 AS days, 1 + u %% 9 + u %% 5 AS longest, 1 + u %% 3 AS cats,
                  %(submission_points)s * (1 + u %% 9)
                      + (SELECT sum(least(%(bonus_per_day)s * i, %(bonus_max)s))
                         FROM generate_series(1, 1 + u %% 9) AS i) AS points,
                  current_date - (u %% 4) + time '12:00:02' AT TIME ZONE 'UTC' AS at
              FROM generate_series(1, %(users)s) AS u) AS m
        CROSS JOIN gamification_achievement AS a
        CROSS JOIN LATERAL (SELECT CASE a.metric
                WHEN 'rankings_submitted' THEN m.days WHEN 'streak_days' THEN m.longest
                WHEN 'categories_ranked' THEN m.cats WHEN 'points' THEN m.points
                ELSE 0 END AS value) AS v
        WHERE a.is_active AND v.value >= a.threshold
        """,
    ),
    (
        "achievement ledger",
        """
        INSERT INTO gamification_activitylog (user_id, kind, points, local_date, data, reason,
            created_at)
        SELECT ua.user_id, 'achievement_unlocked', a.points, ua.unlocked_at::date,
            jsonb_build_object('achievement', a.code), '', ua.unlocked_at
        FROM gamification_userachievement AS ua
        JOIN gamification_achievement AS a ON a.id = ua.achievement_id
        WHERE a.points > 0
        """,
    ),
    (
        "points",
        """
        UPDATE accounts_user AS usr SET points = ledger.total, points_reached_at = ledger.reached
        FROM (SELECT user_id, sum(points) AS total,
                  max(created_at) FILTER (WHERE points <> 0) AS reached
              FROM gamification_activitylog GROUP BY user_id) AS ledger
        WHERE usr.id = ledger.user_id
        """,
    ),
    (
        "period points",
        """
        INSERT INTO gamification_periodpoints (user_id, period, start, points, reached_at)
        SELECT a.user_id, p.period, p.start, sum(a.points),
            date_trunc('second', max(a.created_at) FILTER (WHERE a.points <> 0))
        FROM (VALUES ('day', date_trunc('day', now(), 'UTC'), interval '1 day'),
                     ('week', date_trunc('week', now(), 'UTC'), interval '7 days'),
                     ('month', date_trunc('month', now(), 'UTC'), interval '1 month'))
            AS p(period, start, length)
        JOIN gamification_activitylog AS a
            ON a.created_at >= p.start AND a.created_at < p.start + p.length
        GROUP BY a.user_id, p.period, p.start
        """,
    ),
    (
        "tokens",
        """
        INSERT INTO accounts_usersession (user_id, token_hash, session_key, device, created_at,
            last_seen_at)
        SELECT u, encode(sha256(convert_to(%(token_prefix)s || u, 'UTF8')), 'hex'), '',
            'bench', now(), now()
        FROM generate_series(1, %(token_users)s) AS u
        UNION ALL
        SELECT %(users)s + 1, encode(sha256(convert_to(%(staff_token)s, 'UTF8')), 'hex'), '',
            'bench', now(), now()
        """,
    ),
    (
        "sequences",
        """
        SELECT setval(pg_get_serial_sequence('accounts_user', 'id'), %(users)s + 1),
            setval(pg_get_serial_sequence('products_product', 'id'), %(products)s)
        """,
    ),
]


def seed(*, database_url: str, scale: Scale, echo=print) -> dict:
    """Write the data in one transaction, then ANALYZE; returns the timings and the row counts."""
    _check(scale)
    params = {
        **asdict(scale),
        "per_category": scale.products_per_category,
        "category_names": CATEGORY_NAMES[: scale.categories],
        "brands": BRANDS,
        "token_prefix": TOKEN_PREFIX,
        "staff_token": STAFF_TOKEN,
        "submission_points": SUBMISSION_POINTS,
        "bonus_per_day": STREAK_BONUS_PER_DAY,
        "bonus_max": STREAK_BONUS_MAX,
        "days_per_freeze": STREAK_DAYS_PER_FREEZE,
        "freezes_max": FREEZES_MAX,
    }
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with psycopg.connect(database_url) as conn:
        # The seeder writes rows whose keys it derived itself; skipping the per-row deferred
        # foreign-key triggers halves the time (needs a superuser, as the bench database has).
        conn.execute("SET session_replication_role = replica")
        for name, sql in STEPS:
            step_started = time.perf_counter()
            conn.execute(sql, params)
            timings[name] = round(time.perf_counter() - step_started, 2)
            echo(f"  seeded {name:<20} {timings[name]:6.2f} s")
        conn.execute("SET session_replication_role = DEFAULT")
    with psycopg.connect(database_url, autocommit=True) as conn:
        step_started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum analyze"] = round(time.perf_counter() - step_started, 2)
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (
                "accounts_user",
                "products_product",
                "rankings_productranking",
                "gamification_activitylog",
                "gamification_periodpoints",
                "gamification_streak",
                "gamification_userachievement",
                "accounts_usersession",
            )
        }
    seconds = round(time.perf_counter() - started, 2)
    echo(f"  seeded everything in {seconds:.1f} s: {counts}")
    return {"scale": asdict(scale), "seconds": seconds, "steps": timings, "rows": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--smoke", action="store_true", help="tiny data for a quick check")
    parser.add_argument("--users", type=int, help=f"players (default {FULL.users:,})")
    args = parser.parse_args()
    scale = SMOKE if args.smoke else FULL
    if args.users:
        scale = replace(scale, users=args.users, token_users=min(scale.token_users, args.users))
    seed(database_url=args.database_url, scale=scale)


if __name__ == "__main__":
    main()
