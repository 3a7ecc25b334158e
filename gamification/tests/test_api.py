import json
from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from config.redis import redis_call
from gamification import services
from gamification.models import Achievement, ActivityKind, PageView, UserAchievement
from gamification.tests.factories import StreakFactory
from products.tests.factories import ProductFactory
from realtime import presence

pytestmark = pytest.mark.django_db

BASE = "/api/gamification/"


def award(user, points):
    services.points_award(
        user=user, kind=ActivityKind.ADJUSTMENT, points=points, local_date=date(2026, 1, 1)
    )


def submit(client, products, category="phones"):
    response = client.post(
        "/api/rankings/",
        {"category": category, "product_ids": [p.pk for p in products]},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


# --- Leaderboards ----------------------------------------------------------------------------


def test_leaderboard_is_public_with_competition_ranks(api_client):
    a, b, c = UserFactory(display_name="Ann"), UserFactory(), UserFactory()
    for user, points in ((a, 40), (b, 40), (c, 10)):
        award(user, points)
    body = api_client.get(BASE + "leaderboard/").json()
    assert body["window"] == "all" and body["generated_at"]
    assert body["entries"] == [
        {"rank": 1, "user_id": a.pk, "display_name": "Ann", "points": 40},
        {"rank": 1, "user_id": b.pk, "display_name": b.display_name, "points": 40},
        {"rank": 3, "user_id": c.pk, "display_name": c.display_name, "points": 10},
    ]
    assert "email" not in str(body)


@pytest.mark.parametrize("window", ["all", "week"])
def test_a_user_without_a_display_name_shows_by_handle_never_by_email(
    api_client, user, user_client, window
):
    nameless = user
    nameless.email, nameless.display_name = "jane.doe.private@example.com", ""
    nameless.save()
    award(nameless, 5)

    body = api_client.get(BASE + "leaderboard/", {"window": window}).json()
    mine = user_client.get(BASE + "leaderboard/position/").json()

    assert body["entries"][0]["display_name"] == nameless.handle
    assert nameless.handle.startswith("player-")
    assert "jane" not in str(body) and "jane" not in str(mine)


def test_leaderboard_week_window_and_limit(api_client):
    for points in (5, 9, 7):
        award(UserFactory(), points)
    body = api_client.get(BASE + "leaderboard/", {"window": "week", "limit": 2}).json()
    assert body["window"] == "week"
    assert [e["points"] for e in body["entries"]] == [9, 7]


@pytest.mark.parametrize(
    "params",
    [
        {"window": "year"},
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"limit": "99999999999999999999999"},
        {"offset": -1},
        {"offset": "first"},
    ],
)
def test_leaderboard_bad_parameters_are_400(api_client, params):
    response = api_client.get(BASE + "leaderboard/", params)
    assert response.status_code == 400
    assert response.json()["code"]


def test_position_needs_sign_in(api_client):
    assert api_client.get(BASE + "leaderboard/position/").status_code == 401


def test_position_of_the_signed_in_user(user_client, user):
    ahead = UserFactory()
    award(ahead, 50)
    award(user, 20)
    award(UserFactory(), 5)
    body = user_client.get(BASE + "leaderboard/position/").json()
    assert (body["rank"], body["points"], body["total"]) == (2, 20, 3)
    assert [e["user_id"] for e in body["around"]][:2] == [ahead.pk, user.pk]
    week = user_client.get(BASE + "leaderboard/position/", {"window": "week"}).json()
    assert week["rank"] == 2


def test_leaderboard_pages_by_offset_with_the_board_size(api_client):
    for points in (50, 40, 30, 20, 10):
        award(UserFactory(), points)
    body = api_client.get(BASE + "leaderboard/", {"offset": 3, "limit": 5}).json()
    assert (body["offset"], body["total"]) == (3, 5)
    assert [(e["rank"], e["points"]) for e in body["entries"]] == [(4, 20), (5, 10)]


@pytest.mark.parametrize("window", ["day", "week", "month"])
def test_leaderboard_periods_start_in_utc(api_client, window):
    award(UserFactory(), 5)
    body = api_client.get(BASE + "leaderboard/", {"window": window}).json()
    start = timezone.datetime.fromisoformat(body["period_start"].replace("Z", "+00:00"))
    assert start.utcoffset().total_seconds() == 0 and start.hour == 0
    assert (window != "week" or start.weekday() == 0) and (window != "month" or start.day == 1)
    assert [e["points"] for e in body["entries"]] == [5]


def test_windows_not_kept_are_refused(api_client, user_client, settings):
    settings.LEADERBOARD_WINDOWS = ["all", "week"]
    assert api_client.get(BASE + "leaderboard/", {"window": "week"}).status_code == 200
    for path, client in (("leaderboard/", api_client), ("leaderboard/position/", user_client)):
        response = client.get(BASE + path, {"window": "day"})
        assert response.status_code == 400, path
        assert response.json()["code"] == "invalid_choice"


def test_position_with_percentile_and_around(user_client, user):
    others = [UserFactory() for _ in range(6)]
    for other, points in zip(others[:3], (90, 80, 70), strict=True):
        award(other, points)
    award(user, 60)
    for other, points in zip(others[3:], (50, 40, 30), strict=True):
        award(other, points)
    body = user_client.get(BASE + "leaderboard/position/", {"around": 1}).json()
    assert (body["rank"], body["total"], body["percentile"]) == (4, 7, 57.1)
    assert [(e["rank"], e["points"]) for e in body["around"]] == [(3, 70), (4, 60), (5, 50)]
    wide = user_client.get(BASE + "leaderboard/position/", {"around": 25}).json()
    assert len(wide["around"]) == 7
    for around in (-1, 26, "x"):
        response = user_client.get(BASE + "leaderboard/position/", {"around": around})
        assert response.status_code == 400, around


# --- Home stats and achievements -------------------------------------------------------------


def test_home_stats_are_public(api_client, user_client, user):
    products = [ProductFactory(category="phones") for _ in range(3)]
    submit(user_client, products[:2])
    # Online: seen by a socket (Redis presence) or, without Redis, by the session just used.
    redis_call(lambda client: client.delete(presence.presence_key()), default=None)
    presence.users_seen(user_ids=[user.pk])
    body = api_client.get(BASE + "home-stats/").json()
    assert body["users"] == 1
    assert body["products"] == 3
    assert body["rankings_today"] == 1
    assert body["active_streaks"] == 1
    assert body["achievements_unlocked_today"] == 1
    assert body["users_online"] == 1
    assert {p["product_id"] for p in body["top_products"]} == {products[0].pk, products[1].pk}


def test_achievements_are_public_and_hidden_ones_masked(api_client):
    body = api_client.get(BASE + "achievements/").json()
    hidden = Achievement.objects.get(is_hidden=True)
    assert len(body) == Achievement.objects.filter(is_active=True).count()
    [masked] = [a for a in body if a["is_hidden"]]
    assert hidden.code not in json.dumps(body) and hidden.name not in json.dumps(body)
    assert (masked["id"], masked["code"], masked["points"], masked["threshold"]) == (
        None,
        None,
        None,
        None,
    )
    assert {a["code"]: a for a in body}["first-ranking"]["name"] == "First Ranking"


def test_my_achievements_count_a_hidden_one_in_progress_without_showing_it(user_client, user):
    hidden = Achievement.objects.get(is_hidden=True)
    UserAchievement.objects.create(user=user, achievement=hidden, progress=hidden.threshold - 1)
    response = user_client.get(BASE + "me/achievements/")
    body = response.json()
    assert body["hidden_locked"] == 1
    assert body["in_progress"] == []
    assert hidden.code not in response.content.decode()
    assert hidden.name not in response.content.decode()


def test_hidden_achievement_shown_to_the_user_who_unlocked_it(user_client, user):
    hidden = Achievement.objects.get(is_hidden=True)
    UserAchievement.objects.create(
        user=user, achievement=hidden, progress=hidden.threshold, unlocked_at=timezone.now()
    )
    listed = {a["code"]: a for a in user_client.get(BASE + "achievements/").json()}
    assert listed[hidden.code]["name"] == hidden.name
    assert listed[hidden.code]["points"] == hidden.points
    assert listed[hidden.code]["unlocked"] is True


def test_my_achievements_streak_and_activity(user_client, user):
    products = [ProductFactory(category="phones") for _ in range(2)]
    submit(user_client, products)
    mine = user_client.get(BASE + "me/achievements/").json()
    assert [a["achievement"]["code"] for a in mine["unlocked"]] == ["first-ranking"]
    assert {a["achievement"]["code"] for a in mine["in_progress"]} >= {"ten-rankings"}
    streak = user_client.get(BASE + "me/streak/").json()
    assert streak["current_length"] == 1 and streak["freezes_left"] == 0
    activity = user_client.get(BASE + "me/activity/").json()
    assert activity["count"] == 3
    assert {row["kind"] for row in activity["results"]} == {
        "ranking_submitted",
        "streak_bonus",
        "achievement_unlocked",
    }
    assert sum(row["points"] for row in activity["results"]) == 22


def test_streak_of_a_new_user_is_empty(user_client):
    assert user_client.get(BASE + "me/streak/").json() == {
        "current_length": 0,
        "longest_length": 0,
        "last_active_date": None,
        "freezes_left": 0,
    }


def test_a_lapsed_streak_reads_zero_and_keeps_its_longest(user_client, user):
    StreakFactory(
        user=user,
        current_length=3,
        longest_length=3,
        last_active_date=timezone.now().date() - timedelta(days=90),
    )
    streak = user_client.get(BASE + "me/streak/").json()
    assert (streak["current_length"], streak["longest_length"]) == (0, 3)


def test_activity_is_paginated(user_client, user):
    for _ in range(25):
        award(user, 1)
    first = user_client.get(BASE + "me/activity/").json()
    assert first["count"] == 25 and len(first["results"]) == 20 and first["next"]


@pytest.mark.parametrize("path", ["me/achievements/", "me/streak/", "me/activity/"])
def test_my_pages_need_sign_in(api_client, path):
    assert api_client.get(BASE + path).status_code == 401


def test_search_hook_unlocks_curious_through_the_products_api(user_client, user):
    ProductFactory(name="Phone")
    # Ten different queries: one searched again the same day counts once.
    for n in range(10):
        assert user_client.get("/api/products/", {"search": f"phone {n}"}).status_code == 200
    held = UserAchievement.objects.get(user=user, achievement__code="curious")
    assert held.unlocked_at is not None
    user.refresh_from_db()
    # Five searches also reached the Scout's bronze level.
    scout_bronze = Achievement.objects.get(code="scout").levels[0]["points"]
    assert user.points == Achievement.objects.get(code="curious").points + scout_bronze


# --- Page views ------------------------------------------------------------------------------


def test_page_view_by_anyone(api_client):
    product = ProductFactory()
    response = api_client.post(
        BASE + "page-views/",
        {"path": f"/products/{product.pk}", "product_id": product.pk, "referrer": "https://x.y/"},
        format="json",
    )
    assert response.status_code == 201
    view = PageView.objects.get()
    assert (view.product, view.user, view.referrer) == (product, None, "https://x.y/")


def test_page_view_by_a_signed_in_user_is_theirs(user_client, user):
    assert user_client.post(BASE + "page-views/", {"path": "/"}, format="json").status_code == 201
    assert PageView.objects.get().user == user


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"path": ""},
        {"path": "no-slash"},
        {"path": "/" + "a" * 600},
        {"path": "/ok", "product_id": 999999},
        {"path": "/ok", "product_id": "x"},
        {"path": "/ok", "product_id": 10**30},
        {"path": "/ok", "referrer": "r" * 501},
        {"path": ["/"]},
    ],
)
def test_bad_page_views_are_400_and_not_stored(api_client, body):
    response = api_client.post(BASE + "page-views/", body, format="json")
    assert response.status_code == 400, response.content
    assert not PageView.objects.exists()


def test_own_position_is_fresh_after_own_points_change(
    user_client, user, django_capture_on_commit_callbacks
):
    award(UserFactory(), 50)
    award(user, 20)
    assert user_client.get(BASE + "leaderboard/position/").json()["rank"] == 2
    with django_capture_on_commit_callbacks(execute=True):
        award(user, 100)
    body = user_client.get(BASE + "leaderboard/position/").json()
    assert (body["rank"], body["points"]) == (1, 120)


@pytest.mark.parametrize("body", ["[]", "null", '"/"'])
def test_non_object_page_views_are_400(api_client, body):
    response = api_client.post(BASE + "page-views/", body, content_type="application/json")
    assert response.status_code == 400
    assert not PageView.objects.exists()


@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("/api/gamification/leaderboard/", "Leaderboard"),
        ("/api/gamification/home-stats/", "HomeStats"),
    ],
)
def test_schema_documents_leaderboard_and_home_stats_as_one_object_not_a_page(
    api_client, path, component
):
    operation = api_client.get("/api/schema/?format=json").json()["paths"][path]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{component}"}
    assert "page" not in {parameter["name"] for parameter in operation.get("parameters", [])}


# --- Tiered achievements -----------------------------------------------------------------------


def test_starter_set_has_tiered_achievements_listed_with_their_levels(api_client):
    body = {a["code"]: a for a in api_client.get(BASE + "achievements/").json() if a["code"]}
    tiered = {code for code, a in body.items() if len(a["levels"]) > 1}
    assert tiered >= {"ranker", "streak-keeper", "scout"}
    ranker = body["ranker"]
    assert [level["name"] for level in ranker["levels"]] == ["Bronze", "Silver", "Gold"]
    assert (ranker["threshold"], ranker["points"]) == (
        ranker["levels"][0]["threshold"],
        ranker["levels"][0]["points"],
    )


def test_my_achievements_show_the_level_reached_and_the_next(user_client, user):
    scout = Achievement.objects.get(code="scout")
    UserAchievement.objects.create(
        user=user, achievement=scout, progress=7, level=1, unlocked_at=timezone.now()
    )
    [held] = [
        a
        for a in user_client.get(BASE + "me/achievements/").json()["unlocked"]
        if a["achievement"]["code"] == "scout"
    ]
    assert (held["level"], held["levels"], held["progress"]) == (1, 3, 7)
    assert held["next_level"] == scout.levels[1]
    assert held["threshold"] == scout.levels[1]["threshold"]


def test_a_hidden_tiered_achievement_hides_its_levels(api_client):
    Achievement.objects.filter(code="scout").update(is_hidden=True)
    body = api_client.get(BASE + "achievements/").json()
    assert "scout" not in json.dumps(body) and "Scout" not in json.dumps(body)
    assert all(a["levels"] is None for a in body if a["is_hidden"])


def test_ranking_submission_names_the_level_reached(user_client, user):
    products = [ProductFactory(category="phones") for _ in range(2)]
    Achievement.objects.filter(code="first-ranking").update(
        levels=[{"name": "Starter", "threshold": 1, "points": 10}]
    )
    new = submit(user_client, products)["new_achievements"]
    assert [(a["code"], a["level"], a["level_name"]) for a in new] == [
        ("first-ranking", 1, "Starter")
    ]
