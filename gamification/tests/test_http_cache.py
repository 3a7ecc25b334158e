import pytest

pytestmark = pytest.mark.django_db

PUBLIC = [
    "/api/gamification/leaderboard/",
    "/api/gamification/home-stats/",
    "/api/rankings/stats/?category=phones",
]


@pytest.mark.parametrize("url", PUBLIC)
def test_public_game_reads_answer_304_to_a_matching_etag(api_client, url):
    first = api_client.get(url)
    assert first.status_code == 200
    assert "public" in first["Cache-Control"]

    again = api_client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert again.status_code == 304
    assert again.content == b""


def test_achievement_definitions_are_private_to_who_asks(user_client):
    response = user_client.get("/api/gamification/achievements/")

    assert "private" in response["Cache-Control"]
    assert "Authorization" in response["Vary"]


def test_a_users_position_is_private_and_revalidates(user_client):
    first = user_client.get("/api/gamification/leaderboard/position/")
    assert first.status_code == 200
    assert "private" in first["Cache-Control"]

    assert (
        user_client.get(
            "/api/gamification/leaderboard/position/", HTTP_IF_NONE_MATCH=first["ETag"]
        ).status_code
        == 304
    )
