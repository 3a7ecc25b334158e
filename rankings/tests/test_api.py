import pytest
from django.db.models import Sum

from accounts.models import User
from accounts.tests.factories import UserFactory
from gamification.models import ActivityLog, Streak, UserAchievement
from products.models import ProductMetadata
from products.tests.factories import ProductFactory
from rankings.models import ProductRanking
from rankings.services import ranking_submit

pytestmark = pytest.mark.django_db

URL = "/api/rankings/"


@pytest.fixture
def phones(db):
    return [ProductFactory(category="phones") for _ in range(11)]


def test_submit_answers_201_with_rankings_points_streak_and_achievements(user_client, user, phones):
    response = user_client.post(
        URL, {"category": "phones", "product_ids": [phones[1].pk, phones[0].pk]}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [(r["product"], r["position"], r["points"]) for r in body["rankings"]] == [
        (phones[1].pk, 1, 10),
        (phones[0].pk, 2, 9),
    ]
    assert body["rankings"][0]["product_name"] == phones[1].name
    assert body["streak"]["current_length"] == 1
    assert [a["code"] for a in body["new_achievements"]] == ["first-ranking"]
    user.refresh_from_db()
    assert body["points_awarded"] == user.points == 22


def test_submit_needs_sign_in(api_client, phones):
    response = api_client.post(
        URL, {"category": "phones", "product_ids": [phones[0].pk]}, format="json"
    )
    assert response.status_code == 401
    assert not ProductRanking.objects.exists()


def state() -> tuple:
    return (
        list(ProductRanking.objects.order_by("pk").values_list("pk", "product_id", "position")),
        ActivityLog.objects.count(),
        list(User.objects.order_by("pk").values_list("pk", "points")),
        list(ProductMetadata.objects.order_by("pk").values_list("ranking_count", flat=True)),
        UserAchievement.objects.count(),
        list(Streak.objects.values_list("current_length", "last_active_date")),
    )


BAD_BODIES = {
    "missing category": ({"product_ids": ["P0"]}, "category"),
    "blank category": ({"category": "", "product_ids": ["P0"]}, "category"),
    "missing list": ({"category": "phones"}, "product_ids"),
    "not a list": ({"category": "phones", "product_ids": "P0"}, "list"),
    "object": ({"category": "phones", "product_ids": {"a": 1}}, "list"),
    "empty list": ({"category": "phones", "product_ids": []}, "at least one"),
    "over ten": ({"category": "phones", "product_ids": [f"P{i}" for i in range(11)]}, "at most 10"),
    "duplicates": ({"category": "phones", "product_ids": ["P0", "P1", "P0"]}, "repeated"),
    "string ids": ({"category": "phones", "product_ids": ["P0-as-string"]}, "integer"),
    "float ids": ({"category": "phones", "product_ids": [1.0]}, "integer"),
    "bool ids": ({"category": "phones", "product_ids": [True]}, "integer"),
    "null id": ({"category": "phones", "product_ids": [None]}, "product_ids"),
    "huge int": ({"category": "phones", "product_ids": [10**30]}, "less than or equal"),
    "negative": ({"category": "phones", "product_ids": [-1]}, "greater than or equal"),
    "unknown": ({"category": "phones", "product_ids": [10**15]}, "Unknown or inactive"),
    "inactive": ({"category": "phones", "product_ids": ["INACTIVE"]}, "Unknown or inactive"),
    "other category": ({"category": "phones", "product_ids": ["P0", "TV"]}, "not in category"),
    "category of none": ({"category": "nothing", "product_ids": ["P0"]}, "not in category"),
}


@pytest.mark.parametrize(("body", "message"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_submissions_are_400_and_change_nothing(user_client, user, phones, body, message):
    user_client.post(URL, {"category": "phones", "product_ids": [phones[5].pk]}, format="json")
    inactive = ProductFactory(category="phones", is_active=False)
    tv = ProductFactory(category="tvs")
    names = {"INACTIVE": inactive.pk, "TV": tv.pk, "P0-as-string": str(phones[0].pk)}
    names.update({f"P{i}": p.pk for i, p in enumerate(phones)})
    if isinstance(body.get("product_ids"), list):
        body = {**body, "product_ids": [names.get(i, i) for i in body["product_ids"]]}
    elif body.get("product_ids") == "P0":
        body = {**body, "product_ids": str(phones[0].pk)}
    before = state()
    response = user_client.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert message in error["detail"], error
    assert error["code"]
    assert state() == before


def test_malformed_json_is_400(user_client):
    response = user_client.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_mine_lists_the_users_rankings(user_client, phones):
    user_client.post(URL, {"category": "phones", "product_ids": [phones[2].pk]}, format="json")
    ranking_submit(user=UserFactory(), category="phones", product_ids=[phones[3].pk])
    response = user_client.get(URL + "mine/")
    assert response.status_code == 200
    assert [r["product"] for r in response.json()] == [phones[2].pk]


def test_category_stats_need_a_category(api_client):
    response = api_client.get(URL + "stats/")
    assert response.status_code == 400
    assert "category" in response.json()["detail"]


def test_category_stats_by_borda_score(api_client, user_client, phones):
    user_client.post(
        URL, {"category": "phones", "product_ids": [phones[0].pk, phones[1].pk]}, format="json"
    )
    response = api_client.get(URL + "stats/", {"category": "phones"})
    assert response.status_code == 200
    rows = response.json()
    assert [(r["product_id"], r["score"], r["rankers"]) for r in rows] == [
        (phones[0].pk, 10, 1),
        (phones[1].pk, 9, 1),
    ]
    assert rows[0]["name"] == phones[0].name
    assert rows[0]["first_place_votes"] == 1 and rows[0]["average_position"] == 1.0


def test_product_stats_and_product_detail_carry_ranking_stats(api_client, user_client, phones):
    user_client.post(URL, {"category": "phones", "product_ids": [phones[4].pk]}, format="json")
    stats = api_client.get(f"{URL}stats/{phones[4].pk}/").json()
    assert (stats["rankers"], stats["score"], stats["first_place_votes"]) == (1, 10, 1)
    detail = api_client.get(f"/api/products/{phones[4].pk}/").json()
    assert detail["ranking_stats"] == stats


def test_product_stats_of_unknown_product_is_404(api_client):
    assert api_client.get(f"{URL}stats/999999/").status_code == 404


def test_points_equal_ledger_after_many_submissions(user_client, user, phones):
    for i in range(7):
        response = user_client.post(
            URL, {"category": "phones", "product_ids": [phones[i].pk]}, format="json"
        )
        assert response.status_code == 201
    user.refresh_from_db()
    ledger = ActivityLog.objects.filter(user=user).aggregate(s=Sum("points"))["s"]
    assert user.points == ledger
    assert ActivityLog.objects.filter(user=user, kind="ranking_submitted", points=10).count() == 5


@pytest.mark.parametrize("body", ["[1, 2]", "null", '"phones"', "42"])
def test_non_object_bodies_are_400(user_client, body):
    response = user_client.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert not ProductRanking.objects.exists() and not ActivityLog.objects.exists()


def test_over_long_category_is_400(api_client, user_client):
    assert api_client.get(URL + "stats/", {"category": "x" * 101}).status_code == 400
    response = user_client.post(URL, {"category": "x" * 101, "product_ids": [1]}, format="json")
    assert response.status_code == 400


def test_a_submission_runs_a_fixed_number_of_sql_statements(
    user_client, phones, django_assert_max_num_queries
):
    # A new user's first submission also creates the streak and pays an unlock; each of its
    # two ledger writes moves the day, week and month totals in one statement.
    first = {"category": "phones", "product_ids": [p.pk for p in phones[:10]]}
    with django_assert_max_num_queries(22):
        assert user_client.post(URL, first, format="json").status_code == 201
    again = {"category": "phones", "product_ids": [p.pk for p in phones[1:11]]}
    with django_assert_max_num_queries(16):
        assert user_client.post(URL, again, format="json").status_code == 201
