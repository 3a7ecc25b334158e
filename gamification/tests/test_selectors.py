import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from config.caching import WARMERS, CacheType, cache_stats
from gamification import caching, selectors, services
from gamification.models import Achievement, ActivityKind, Streak, UserAchievement
from gamification.tests.bulk import analyze, bulk_products, bulk_users, plans_of, sql
from gamification.tests.factories import (
    AchievementFactory,
    ActivityLogFactory,
    PageViewFactory,
    StreakFactory,
)
from products.tests.factories import ProductFactory
from rankings.caching import category_stats_cached

pytestmark = pytest.mark.django_db


def award(user, points, *, when=None):
    services.points_award(
        user=user,
        kind=ActivityKind.ADJUSTMENT,
        points=points,
        local_date=date(2026, 1, 1),
        now=when,
    )


def board(window="all", limit=10, offset=0, now=None):
    return [
        (e["rank"], e["user_id"], e["points"])
        for e in selectors.leaderboard_page(window=window, offset=offset, limit=limit, now=now)[
            "entries"
        ]
    ]


def awarded_in_order(*points):
    """Users who reached their points one second apart, in the order given."""
    start = timezone.now() - timedelta(minutes=5)
    users = [UserFactory() for _ in points]
    for second, (user, p) in enumerate(zip(users, points, strict=True)):
        award(user, p, when=start + timedelta(seconds=second))
    return users


# --- Leaderboards (from SQL: these tests build no Redis board) --------------------------------


def test_competition_ranking_with_ties_listed_by_who_reached_the_score_first():
    a, b, c, d = awarded_in_order(50, 70, 70, 10)
    assert board() == [(1, b.pk, 70), (1, c.pk, 70), (3, a.pk, 50), (4, d.pk, 10)]
    assert board(limit=2) == [(1, b.pk, 70), (1, c.pk, 70)]
    # c reaches 70 again, later than b: a tie it reached second.
    award(c, 5, when=timezone.now() - timedelta(minutes=1))
    award(c, -5, when=timezone.now())
    assert board(limit=2) == [(1, b.pk, 70), (1, c.pk, 70)]
    award(b, 5, when=timezone.now())
    award(b, -5, when=timezone.now() + timedelta(seconds=1))
    assert board(limit=2) == [(1, c.pk, 70), (1, b.pk, 70)]


@pytest.mark.parametrize("window", ["all", "day"])
def test_equal_points_reached_in_the_same_second_list_the_lower_id_first(window):
    when = timezone.now().replace(microsecond=500_000) - timedelta(minutes=1)
    a, b = UserFactory(), UserFactory()
    award(b, 20, when=when)
    award(a, 20, when=when + timedelta(microseconds=1000))
    later = when + timedelta(seconds=1)
    assert board(window=window, now=later) == [(1, a.pk, 20), (1, b.pk, 20)]


def test_any_page_by_offset_keeps_competition_ranks():
    users = awarded_in_order(90, 80, 80, 80, 70, 60)
    assert board(offset=2, limit=3) == [
        (2, users[2].pk, 80),
        (2, users[3].pk, 80),
        (5, users[4].pk, 70),
    ]
    page = selectors.leaderboard_page(window="all", offset=5, limit=10)
    assert page["total"] == 6 and [e["rank"] for e in page["entries"]] == [6]
    assert selectors.leaderboard_page(window="all", offset=50, limit=10)["entries"] == []


def test_a_page_looks_its_public_names_up_in_one_query(django_assert_max_num_queries):
    awarded_in_order(50, 40, 30, 20, 10)
    # Ids, their points, the board's ladder (read, here counted and stored first), the first
    # entry's rank, the names: never one query a user.
    with django_assert_max_num_queries(6):
        entries = selectors.leaderboard_page(window="all", limit=5)["entries"]
    assert len(entries) == 5 and all(e["display_name"] for e in entries)


def test_users_without_points_are_not_on_the_board():
    scorer, idle = awarded_in_order(5, 0)
    assert board() == [(1, scorer.pk, 5)]
    position = selectors.leaderboard_position(user=idle, window="all")
    assert position["rank"] is None and position["percentile"] is None


@pytest.mark.parametrize(
    "left_out",
    [
        {"is_staff": True},
        {"is_active": False},
        {"leaderboard_opt_out": True},
        {"leaderboard_excluded": True},
    ],
)
def test_staff_inactive_opted_out_and_excluded_users_are_left_out(left_out):
    shown, hidden = UserFactory(), UserFactory(**left_out)
    award(shown, 5)
    award(hidden, 500)
    for window in ("all", "day", "week", "month"):
        assert [e[1] for e in board(window=window)] == [shown.pk], window
        position = selectors.leaderboard_position(user=hidden, window=window)
        assert position["rank"] is None and position["around"] == []
        assert position["total"] == 1


def test_windows_are_the_current_utc_day_iso_week_and_month():
    # Wednesday 2026-07-15 10:00 UTC: the week began on Monday the 13th, the month on the 1st.
    now = datetime(2026, 7, 15, 10, 0, tzinfo=UTC)
    yesterday, last_week, last_month, today = (UserFactory() for _ in range(4))
    award(last_month, 1000, when=datetime(2026, 6, 30, 23, 59, tzinfo=UTC))
    award(last_week, 300, when=datetime(2026, 7, 12, 23, 59, tzinfo=UTC))
    award(yesterday, 20, when=datetime(2026, 7, 14, 23, 59, tzinfo=UTC))
    award(today, 5, when=datetime(2026, 7, 15, 0, 0, tzinfo=UTC))
    assert board(window="day", now=now) == [(1, today.pk, 5)]
    assert board(window="week", now=now) == [(1, yesterday.pk, 20), (2, today.pk, 5)]
    assert board(window="month", now=now) == [
        (1, last_week.pk, 300),
        (2, yesterday.pk, 20),
        (3, today.pk, 5),
    ]
    assert board(window="all", now=now)[0] == (1, last_month.pk, 1000)


def test_position_gives_rank_total_percentile_and_neighbours():
    users = awarded_in_order(60, 50, 50, 40, 30, 20)
    position = selectors.leaderboard_position(user=users[3], window="all")
    assert (position["rank"], position["points"], position["total"]) == (4, 40, 6)
    # Three of the six players have 40 points or fewer.
    assert position["percentile"] == 50.0
    assert [(e["rank"], e["user_id"]) for e in position["around"]] == [
        (2, users[1].pk),
        (2, users[2].pk),
        (4, users[3].pk),
        (5, users[4].pk),
        (6, users[5].pk),
    ]
    wide = selectors.leaderboard_position(user=users[3], window="all", around=25)
    assert [e["user_id"] for e in wide["around"]] == [u.pk for u in users]
    alone = selectors.leaderboard_position(user=users[0], window="all", around=0)
    assert [(e["rank"], e["user_id"]) for e in alone["around"]] == [(1, users[0].pk)]
    assert alone["percentile"] == 100.0


def test_position_of_a_tied_user_shares_the_rank():
    users = awarded_in_order(90, 90, 90, 10)
    position = selectors.leaderboard_position(user=users[2], window="all")
    assert position["rank"] == 1
    assert [(e["rank"], e["user_id"]) for e in position["around"]] == [
        (1, users[0].pk),
        (1, users[1].pk),
        (1, users[2].pk),
        (4, users[3].pk),
    ]


def test_week_position_matches_the_week_board():
    users = awarded_in_order(8, 30, 30, 2)
    position = selectors.leaderboard_position(user=users[0], window="week")
    assert (position["rank"], position["points"], position["total"]) == (3, 8, 4)
    assert position["percentile"] == 50.0
    assert [(e["rank"], e["user_id"]) for e in position["around"]] == [
        (1, users[1].pk),
        (1, users[2].pk),
        (3, users[0].pk),
        (4, users[3].pk),
    ]


def test_leaderboard_cache_serves_a_stale_board_until_its_ttl():
    (user,) = awarded_in_order(5)
    first = caching.leaderboard_cached(window="all", offset=0, limit=10)
    award(UserFactory(), 50)
    assert caching.leaderboard_cached(window="all", offset=0, limit=10) == first
    assert [e["user_id"] for e in json.loads(first.body)["entries"]] == [user.pk]


def test_hidden_achievement_masked_until_the_viewer_unlocks_it():
    Achievement.objects.filter(is_hidden=True).delete()
    hidden = AchievementFactory(
        is_hidden=True, name="Secret", metric="searches_made", threshold=1, points=40
    )
    finder, other = UserFactory(), UserFactory()
    UserAchievement.objects.create(
        user=finder, achievement=hidden, progress=1, unlocked_at=timezone.now()
    )

    def seen_by(user):
        return [d for d in selectors.achievements_for_viewer(user=user) if d["is_hidden"]]

    assert [(d["code"], d["name"], d["points"]) for d in seen_by(finder)] == [
        (hidden.code, "Secret", 40)
    ]
    for viewer in (other, None):
        [masked] = seen_by(viewer)
        # Nothing that names, describes, sizes or counts it: only that it exists.
        assert masked["id"] is None and masked["code"] is None
        assert masked["name"] != "Secret" and masked["description"] != hidden.description
        assert masked["points"] is None and masked["threshold"] is None
        assert masked["metric"] is None and masked["unlocked_by"] is None


def test_hidden_achievement_in_progress_is_counted_not_listed():
    Achievement.objects.filter(is_hidden=True).delete()
    user = UserFactory()
    shown = AchievementFactory(threshold=10)
    hidden = AchievementFactory(is_hidden=True, threshold=10)
    AchievementFactory(is_hidden=True, threshold=10)
    UserAchievement.objects.create(user=user, achievement=shown, progress=9)
    UserAchievement.objects.create(user=user, achievement=hidden, progress=9)

    assert [h.achievement for h in selectors.achievements_in_progress(user=user)] == [shown]
    assert selectors.hidden_achievements_locked_count(user=user) == 2
    UserAchievement.objects.filter(achievement=hidden).update(unlocked_at=timezone.now())
    assert selectors.hidden_achievements_locked_count(user=user) == 1


def test_achievements_split_into_unlocked_and_in_progress():
    user = UserFactory()
    near, far, done = (AchievementFactory() for _ in range(3))
    UserAchievement.objects.create(user=user, achievement=near, progress=8)
    UserAchievement.objects.create(user=user, achievement=far, progress=2)
    UserAchievement.objects.create(user=user, achievement=done, unlocked_at=timezone.now())
    assert [h.achievement for h in selectors.achievements_in_progress(user=user)] == [near, far]
    assert [h.achievement for h in selectors.achievements_for_user(user=user)] == [done]
    assert selectors.achievement_unlock_counts()[done.pk] == 1


def test_active_streaks_count_today_and_yesterday_only():
    today = date(2026, 5, 10)
    for days_ago, length in ((0, 3), (1, 1), (2, 5), (0, 0)):
        Streak.objects.create(
            user=UserFactory(), current_length=length, last_active_date=today - timedelta(days_ago)
        )
    assert selectors.active_streak_count(today=today) == 2


def test_home_stats_count_the_community():
    ranker = UserFactory()
    UserFactory(is_staff=True)
    products = [ProductFactory(category="phones") for _ in range(2)]
    from rankings.services import ranking_submit

    ranking_submit(user=ranker, category="phones", product_ids=[products[0].pk])
    stats = selectors.home_stats()
    assert stats["users"] == 1
    assert stats["products"] == 2
    assert stats["rankings_today"] == 1
    assert stats["active_streaks"] == 1
    assert stats["achievements_unlocked_today"] == 1  # first-ranking
    assert [p["product_id"] for p in stats["top_products"]] == [products[0].pk]


def test_paid_submissions_count_only_paid_ones_of_that_day():
    user = UserFactory()
    day = date(2026, 5, 1)
    ActivityLogFactory(user=user, points=10, local_date=day)
    ActivityLogFactory(user=user, points=0, local_date=day)
    ActivityLogFactory(user=user, points=10, local_date=day - timedelta(days=1))
    assert selectors.paid_submissions_on(user=user, local_date=day) == 1


def test_rankings_submitted_count_once_per_category_and_date():
    user = UserFactory()
    day = date(2026, 5, 1)
    for category in ("phones", "phones", "phones", "laptops"):
        ActivityLogFactory(user=user, points=10, local_date=day, data={"category": category})
    ActivityLogFactory(user=user, local_date=day + timedelta(days=1), data={"category": "phones"})
    # An entry without a category (written by hand) counts once for its date, both ways.
    ActivityLogFactory(user=user, points=0, local_date=day - timedelta(days=1), data={})
    ActivityLogFactory(user=user, kind=ActivityKind.STREAK_BONUS, points=2, local_date=day)
    ActivityLogFactory(points=10, local_date=day, data={"category": "tablets"})
    assert selectors.rankings_submitted_count(user=user) == 4
    counts = selectors.submission_counts(user=user, local_date=day, category="phones")
    assert (counts.paid_today, counts.submitted, counts.category_today) == (4, 4, 3)


def test_achievements_to_unlock_leave_out_unlocked_and_carry_progress():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    unlocked, started, untouched = (
        AchievementFactory(metric="searches_made", threshold=5, order=n) for n in range(3)
    )
    AchievementFactory(metric="points", threshold=5)
    UserAchievement.objects.create(
        user=user, achievement=unlocked, progress=5, unlocked_at=timezone.now()
    )
    UserAchievement.objects.create(user=user, achievement=started, progress=2)
    UserAchievement.objects.create(user=UserFactory(), achievement=untouched, progress=4)
    to_unlock = selectors.achievements_to_unlock(user=user, metrics=["searches_made"])
    assert [(a, a.progress) for a in to_unlock] == [(started, 2), (untouched, None)]


def test_achievements_to_unlock_keep_a_tiered_one_until_its_last_level():
    user = UserFactory()
    Achievement.objects.update(is_active=False)
    tiers = [{"name": n, "threshold": t, "points": 5} for n, t in (("I", 1), ("II", 3))]
    halfway, done = (
        AchievementFactory(metric="searches_made", levels=tiers, order=n) for n in range(2)
    )
    AchievementFactory(metric="searches_made", is_active=False)
    at = timezone.now()
    UserAchievement.objects.create(
        user=user, achievement=halfway, progress=2, level=1, unlocked_at=at
    )
    UserAchievement.objects.create(user=user, achievement=done, progress=3, level=2, unlocked_at=at)
    to_unlock = selectors.achievements_to_unlock(user=user, metrics=["searches_made", "points"])
    assert [(a, a.progress, a.held_level, a.held_unlocked_at) for a in to_unlock] == [
        (halfway, 2, 1, at)
    ]


def test_page_views_per_day_count_every_view_or_one_products():
    product = ProductFactory()
    now = timezone.now().replace(hour=12)
    yesterday = now - timedelta(days=1)
    PageViewFactory(path="/a", product=product, created_at=now)
    PageViewFactory(path="/a", created_at=now)
    PageViewFactory(path="/b", product=product, created_at=yesterday)
    PageViewFactory(path="/b", created_at=now - timedelta(days=9))
    since = now - timedelta(days=7)

    assert selectors.page_views_per_day(since=since) == [
        {"day": yesterday.date(), "views": 1},
        {"day": now.date(), "views": 2},
    ]
    assert selectors.page_views_per_day(since=since, product_id=product.pk) == [
        {"day": yesterday.date(), "views": 1},
        {"day": now.date(), "views": 1},
    ]


def test_top_paths_and_products_viewed_most_count_the_window_only():
    popular, other = ProductFactory(), ProductFactory()
    now = timezone.now()
    for _ in range(3):
        PageViewFactory(path="/p/popular", product=popular)
    PageViewFactory(path="/p/other", product=other)
    PageViewFactory(path="/")
    for _ in range(5):
        PageViewFactory(path="/p/other", product=other, created_at=now - timedelta(days=3))
    since = now - timedelta(days=1)

    assert selectors.top_paths(since=since, limit=2) == [
        {"path": "/p/popular", "views": 3},
        {"path": "/", "views": 1},
    ]
    assert selectors.products_viewed_most(since=since, limit=10) == [
        {"product_id": popular.pk, "views": 3},
        {"product_id": other.pk, "views": 1},
    ]


def test_active_users_count_each_signed_in_viewer_once_per_day_and_week():
    # A Wednesday noon, so that the Monday before and the week before are both in range.
    wednesday = timezone.now().replace(hour=12) - timedelta(days=timezone.now().weekday() - 2)
    if wednesday > timezone.now():
        wednesday -= timedelta(days=7)
    first, second = UserFactory(), UserFactory()
    for user, days_ago in [(first, 0), (first, 0), (second, 0), (first, 1), (second, 7)]:
        PageViewFactory(user=user, created_at=wednesday - timedelta(days=days_ago))
    PageViewFactory(user=None, created_at=wednesday)
    since = wednesday - timedelta(days=8)

    assert selectors.active_users_per_day(since=since) == [
        {"day": (wednesday - timedelta(days=7)).date(), "users": 1},
        {"day": (wednesday - timedelta(days=1)).date(), "users": 1},
        {"day": wednesday.date(), "users": 2},
    ]
    assert selectors.active_users_per_week(since=since) == [
        {"week": (wednesday - timedelta(days=9)).date(), "users": 1},
        {"week": (wednesday - timedelta(days=2)).date(), "users": 2},
    ]


def test_top_streaks_leave_out_broken_streaks_and_freezes_count_live_ones():
    today = date(2026, 5, 10)
    alive = Streak.objects.create(
        user=UserFactory(), current_length=4, last_active_date=today, freezes_left=1
    )
    short = Streak.objects.create(
        user=UserFactory(), current_length=2, last_active_date=today - timedelta(days=1)
    )
    Streak.objects.create(
        user=UserFactory(),
        current_length=30,
        longest_length=30,
        last_active_date=today - timedelta(days=5),
        freezes_left=2,
    )
    Streak.objects.create(
        user=UserFactory(), current_length=9, last_active_date=today, freezes_left=2
    )

    assert [s.current_length for s in selectors.top_streaks(today=today, limit=2)] == [9, 4]
    assert list(selectors.top_streaks(today=today))[1:] == [alive, short]
    assert selectors.streak_freezes_held(today=today) == {1: 1, 2: 1}


def test_achievement_unlocks_since_count_the_window_and_time_from_joining():
    now = timezone.now()
    achievement = AchievementFactory()
    for hours in (2, 4):
        user = UserFactory(date_joined=now - timedelta(hours=hours + 1))
        UserAchievement.objects.create(
            user=user, achievement=achievement, unlocked_at=now - timedelta(hours=1)
        )
    UserAchievement.objects.create(
        user=UserFactory(), achievement=achievement, unlocked_at=now - timedelta(days=9)
    )
    UserAchievement.objects.create(user=UserFactory(), achievement=achievement, progress=1)

    assert selectors.achievement_unlocks_since(since=now - timedelta(days=7)) == {
        achievement.pk: {"unlocks": 2, "average_hours_to_unlock": 3.0}
    }


# --- Query plans on PostgreSQL ---------------------------------------------------------------

USERS = 2000


def insert_user_achievements(*, first: int, achievements: list[int]) -> None:
    """One row per user and achievement; one in 50 unlocked, over a year."""
    sql(
        """
        INSERT INTO gamification_userachievement (user_id, achievement_id, progress, unlocked_at,
            updated_at)
        SELECT %(first)s + u, a, (u * 7 + a) %% 10,
            CASE WHEN (u + a) %% 50 = 0 THEN now() - ((u %% 365) * interval '1 day') END, now()
        FROM generate_series(0, %(n)s - 1) AS u, unnest(%(achievements)s::bigint[]) AS a
        """,
        {"first": first, "n": USERS, "achievements": achievements},
    )


def insert_page_views(*, first: int, first_product: int, days: int) -> None:
    """20,000 views over `days` days on 500 paths; one in 10 by a signed-in user.

    Referrers are search-result URLs of some 300 characters, as they come from search engines.
    """
    sql(
        """
        INSERT INTO gamification_pageview (path, product_id, user_id, session_key, referrer,
            created_at)
        SELECT '/products/' || (g %% 500), %(first_product)s + g %% 200,
            CASE WHEN g %% 10 = 0 THEN %(first)s + g %% %(n)s END, md5(g::text),
            'https://search.example.com/results?q=' || repeat(md5(g::text), 8),
            now() - (g %% (%(days)s * 1440)) * interval '1 minute'
        FROM generate_series(1, 20000) AS g
        """,
        {"first": first, "first_product": first_product, "n": USERS, "days": days},
    )


@pytest.fixture
def game_rows(db):
    """2,000 users with streaks, 10 achievements each, 25 ledger rows each; 20,000 page views."""
    first = bulk_users(USERS)
    first_product = bulk_products(200, categories=10)
    achievements = [AchievementFactory(code=f"bulk-{i}").pk for i in range(10)]
    # Streaks over three years of days; one in 20 alive, one in 10 holding a freeze.
    sql(
        """
        INSERT INTO gamification_streak (user_id, current_length, longest_length,
            last_active_date, freezes_left, updated_at)
        SELECT %(first)s + g, g %% 20, g %% 400, current_date - (g %% 1000), (g %% 10 = 0)::int,
            now()
        FROM generate_series(0, %(n)s - 1) AS g
        """,
        {"first": first, "n": USERS},
    )
    insert_user_achievements(first=first, achievements=achievements)
    # 25 ledger rows per user over 100 days.
    sql(
        """
        INSERT INTO gamification_activitylog (user_id, kind, points, local_date, data, reason,
            created_at)
        SELECT %(first)s + u,
            (ARRAY['ranking_submitted', 'streak_bonus', 'achievement_unlocked'])[1 + i %% 3],
            10, current_date - (u + i) %% 100, '{}', '',
            now() - (((u + i) %% 100) * interval '1 day') - (u * interval '1 second')
        FROM generate_series(0, %(n)s - 1) AS u, generate_series(0, 24) AS i
        """,
        {"first": first, "n": USERS},
    )
    insert_page_views(first=first, first_product=first_product, days=100)
    services.period_points_rebuild(window="day")
    analyze(
        "gamification_periodpoints",
        "accounts_user",
        "gamification_streak",
        "gamification_userachievement",
        "gamification_activitylog",
        "gamification_pageview",
    )
    return first, first_product


def selector_calls(first_user: int, first_product: int) -> dict:
    from accounts.models import User

    user = User.objects.get(pk=first_user + 123)
    now = timezone.now()
    return {
        "achievements_for_user": lambda: list(selectors.achievements_for_user(user=user)),
        "achievements_in_progress": lambda: list(selectors.achievements_in_progress(user=user)),
        "achievement_unlock_counts": selectors.achievement_unlock_counts,
        "achievements_unlocked_since": lambda: selectors.achievements_unlocked_since(
            since=now - timedelta(days=1)
        ),
        "active_streak_count": lambda: selectors.active_streak_count(today=date.today()),
        "top_streaks": lambda: list(selectors.top_streaks(today=date.today())),
        "streak_records": lambda: list(selectors.streak_records()),
        "streak_freezes_held": lambda: selectors.streak_freezes_held(today=date.today()),
        "achievement_unlocks_since": lambda: selectors.achievement_unlocks_since(
            since=now - timedelta(days=1)
        ),
        "activity_for_user": lambda: list(selectors.activity_for_user(user=user)[:20]),
        "paid_submissions_on": lambda: selectors.paid_submissions_on(
            user=user, local_date=date.today()
        ),
        "rankings_submitted_count": lambda: selectors.rankings_submitted_count(user=user),
        "submission_counts": lambda: selectors.submission_counts(
            user=user, local_date=date.today(), category="phones"
        ),
        "leaderboard_day": lambda: selectors.leaderboard_page(window="day", limit=10),
        "activity_count_since": lambda: selectors.activity_count_since(
            kind=ActivityKind.RANKING_SUBMITTED, since=now - timedelta(hours=12)
        ),
        "page_views_per_day_of_product": lambda: selectors.page_views_per_day(
            since=now - timedelta(days=7), product_id=first_product + 5
        ),
        "page_views_per_day": lambda: selectors.page_views_per_day(since=now - timedelta(days=1)),
        "top_paths": lambda: selectors.top_paths(since=now - timedelta(days=1)),
        "products_viewed_most": lambda: selectors.products_viewed_most(
            since=now - timedelta(days=1)
        ),
        "active_users_per_day": lambda: selectors.active_users_per_day(
            since=now - timedelta(days=1)
        ),
        "active_users_per_week": lambda: selectors.active_users_per_week(
            since=now - timedelta(days=1)
        ),
    }


SELECTOR_INDEXES = {
    "achievements_for_user": "userach_user_unlocked",
    "achievements_in_progress": "userach_user_progress",
    "achievements_unlocked_since": "userach_unlocked",
    "active_streak_count": "streak_last_active",
    "streak_records": "streak_longest",
    "streak_freezes_held": "streak_freezes",
    "achievement_unlocks_since": "userach_unlocked",
    "activity_for_user": "activity_user_created",
    "paid_submissions_on": "activity_user_kind_day",
    "rankings_submitted_count": "activity_user_kind_day",
    "submission_counts": "activity_user_kind_day",
    "leaderboard_day": "periodpoints_board",
    "activity_count_since": "activity_kind_created",
    "page_views_per_day_of_product": "pageview_product_created",
    "page_views_per_day": "pageview_created_path",
    "top_paths": "pageview_created_path",
    "products_viewed_most": "pageview_created_product",
    "active_users_per_day": "pageview_created_user",
    "active_users_per_week": "pageview_created_user",
}
# The longest live streaks: where half the streaks are live, as in a community that plays daily,
# walking the streaks by length beats sorting every live one.
LIVE_SELECTOR_INDEXES = {"top_streaks": "streak_current"}
# Whole-table aggregates answered from an index-only scan, which needs the visibility map that
# (auto)vacuum keeps on a live table.
VACUUMED_SELECTOR_INDEXES = {
    "achievement_unlock_counts": "userach_ach_unlocked",
}


def missed_indexes(calls: dict, expected: dict[str, str]) -> str:
    missed = []
    for name, index in expected.items():
        plans = plans_of(calls[name])
        if index not in plans:
            missed.append(f"{name} does not use {index}:\n{plans}")
    return "\n\n".join(missed)


@pytest.mark.postgres
def test_every_selector_query_uses_its_index(game_rows):
    calls = selector_calls(*game_rows)
    assert set(calls) == set(SELECTOR_INDEXES) | set(LIVE_SELECTOR_INDEXES) | set(
        VACUUMED_SELECTOR_INDEXES
    )
    missed = missed_indexes(calls, SELECTOR_INDEXES)
    assert not missed, missed


@pytest.mark.postgres
def test_top_streaks_walk_streak_current_when_half_the_streaks_are_live(game_rows):
    sql("UPDATE gamification_streak SET last_active_date = current_date - (user_id % 4)::int")
    analyze("gamification_streak")
    missed = missed_indexes(selector_calls(*game_rows), LIVE_SELECTOR_INDEXES)
    assert not missed, missed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_whole_table_aggregates_walk_their_index_once_vacuumed():
    first = bulk_users(USERS)
    first_product = bulk_products(200, categories=10)
    achievements = [AchievementFactory(code=f"bulk-{i}").pk for i in range(10)]
    insert_user_achievements(first=first, achievements=achievements)
    # A month of views, the window top_paths is asked about.
    insert_page_views(first=first, first_product=first_product, days=30)
    for table in ("gamification_userachievement", "gamification_pageview"):
        sql(f"VACUUM ANALYZE {table}")
    calls = {
        "achievement_unlock_counts": selectors.achievement_unlock_counts,
    }
    missed = missed_indexes(calls, VACUUMED_SELECTOR_INDEXES)
    assert not missed, missed


def test_warmers_fill_every_game_cache_type():
    user = UserFactory()
    award(user, 10)
    product = ProductFactory(category="phones")
    reads = {
        CacheType.LEADERBOARD: lambda: caching.leaderboard_cached(
            window="week", offset=0, limit=10
        ),
        CacheType.LEADERBOARD_POSITION: lambda: caching.leaderboard_position_cached(
            user=user, window="all", around=selectors.AROUND_DEFAULT
        ),
        CacheType.HOME_STATS: caching.home_stats_cached,
        CacheType.ACHIEVEMENT_DEFINITIONS: caching.achievements_public_cached,
        CacheType.RANKING_STATS: lambda: category_stats_cached(category=product.category),
    }
    for cache_type, read in reads.items():
        assert sum(warm() for warm in WARMERS[cache_type]) >= 1, cache_type
        misses = cache_stats()[cache_type]["misses"]
        read()
        assert cache_stats()[cache_type]["misses"] == misses, f"{cache_type} was not warmed"


# --- Streaks read true at read time ------------------------------------------------------------


NOON_JUNE_10 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_active", "freezes", "reads"),
    [
        (date(2026, 6, 10), 0, 5),  # today
        (date(2026, 6, 9), 0, 5),  # yesterday: today can still extend it
        (date(2026, 6, 8), 1, 5),  # one missed date, covered by the freeze held
        (date(2026, 6, 8), 0, 0),
        (date(2026, 6, 7), 2, 0),  # a freeze covers one missed date, never two
        (date(2026, 3, 1), 0, 0),  # months ago
    ],
)
def test_streak_reads_zero_once_it_can_no_longer_be_extended(last_active, freezes, reads):
    user = UserFactory(timezone="UTC")
    StreakFactory(
        user=user,
        current_length=5,
        longest_length=9,
        last_active_date=last_active,
        freezes_left=freezes,
    )
    streak = selectors.streak_for_user(user=user, now=NOON_JUNE_10)
    assert (streak.current_length, streak.longest_length) == (reads, 9)


def test_a_date_skipped_by_a_zone_change_is_not_a_missed_date():
    user = UserFactory(timezone="Pacific/Kiritimati", skipped_date=date(2026, 6, 9))
    StreakFactory(user=user, current_length=5, longest_length=5, last_active_date=date(2026, 6, 8))
    streak = selectors.streak_for_user(user=user, now=datetime(2026, 6, 10, 0, 0, tzinfo=UTC))
    assert streak.current_length == 5
