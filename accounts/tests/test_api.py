import re
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.utils import timezone as dj_timezone
from rest_framework.test import APIClient

from accounts.models import LoginCode, User, UserSession
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REQUEST_URL = "/api/customer/email-login"
VERIFY_URL = "/api/customer/email-login/verify"
ME_URL = "/api/customer/me"
LOGOUT_URL = "/api/customer/logout"
SESSIONS_URL = "/api/customer/sessions"


def sign_in(client: APIClient, email: str = "ada@example.com", device: str = "Firefox") -> dict:
    """The whole sign-in on `client`: it keeps the session cookie; the answer holds the token."""
    assert client.post(REQUEST_URL, {"email": email}, format="json").status_code == 202
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].subject).group(1)
    response = client.post(
        VERIFY_URL, {"email": email, "code": code}, format="json", HTTP_USER_AGENT=device
    )
    assert response.status_code == 200, response.content
    return response.json()


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def assert_error(response, status: int) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str) and body["code"]


# --- Requesting a code -----------------------------------------------------------------------


def test_the_request_answer_is_the_same_for_known_and_unknown_addresses(api_client):
    UserFactory(email="known@example.com")

    known = api_client.post(REQUEST_URL, {"email": "known@example.com"}, format="json")
    unknown = api_client.post(REQUEST_URL, {"email": "nobody@example.com"}, format="json")

    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert len(mail.outbox) == 2
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": ""},
        {"email": "not-an-address"},
        {"email": "a@"},
        {"email": 42},
        {"email": ["ada@example.com"]},
        {"email": {"x": 1}},
        {"email": None},
        {"email": "a" * 250 + "@example.com"},
        {"email": "ada\x00@example.com"},
        ["ada@example.com"],
        "ada@example.com",
        42,
        None,
    ],
)
def test_a_bad_request_for_a_code_is_refused_and_sends_nothing(api_client, body):
    response = api_client.post(REQUEST_URL, body, format="json")

    assert_error(response, 400)
    assert not mail.outbox
    assert not LoginCode.objects.exists()


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ('{"email": ', "application/json"),
        ("email=ada@example.com", "application/x-www-form-urlencoded"),
        ("\xff\xfe", "application/json"),
    ],
)
def test_a_body_that_is_not_json_is_refused(api_client, content, content_type):
    response = api_client.generic("POST", REQUEST_URL, content, content_type=content_type)

    assert response.status_code in (400, 415)
    assert_error(response, response.status_code)
    assert not LoginCode.objects.exists()


# --- Verifying a code ------------------------------------------------------------------------


def test_verifying_a_code_signs_in_with_a_token_and_a_cookie(api_client):
    body = sign_in(api_client, "New.Person@Example.com")

    assert body["user"]["email"] == "new.person@example.com"
    assert body["token"]
    assert api_client.get(ME_URL).status_code == 200
    assert token_client(body["token"]).get(ME_URL).json()["email"] == "new.person@example.com"
    assert UserSession.objects.get().device == "Firefox"
    assert "code_hash" not in str(body)


def test_the_second_sign_in_with_another_case_finds_the_same_account(api_client):
    first = sign_in(APIClient(), "ada@example.com")
    second = sign_in(APIClient(), "ADA@EXAMPLE.COM")

    assert first["user"]["id"] == second["user"]["id"]
    assert User.objects.count() == 1


def test_a_wrong_code_is_a_400_with_the_error_shape(api_client):
    api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].subject).group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    response = api_client.post(
        VERIFY_URL, {"email": "ada@example.com", "code": wrong}, format="json"
    )

    assert_error(response, 400)
    assert response.json()["code"] == "invalid_code"
    assert not User.objects.exists()
    assert LoginCode.objects.get().attempts == 1


def test_five_wrong_codes_over_the_api_kill_the_code(api_client):
    api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].subject).group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        api_client.post(VERIFY_URL, {"email": "ada@example.com", "code": wrong}, format="json")

    response = api_client.post(
        VERIFY_URL, {"email": "ada@example.com", "code": code}, format="json"
    )

    assert_error(response, 400)
    assert not User.objects.exists()


def test_wrong_codes_from_many_addresses_lock_the_target_address_with_a_429(api_client):
    def verify(code: str, ip: str):
        return api_client.post(
            VERIFY_URL, {"email": "ada@example.com", "code": code}, format="json", REMOTE_ADDR=ip
        )

    for ip, guesses in (("10.0.0.1", 4), ("10.0.0.2", 4), ("10.0.0.3", 2)):
        api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
        code = re.search(r"\b(\d{6})\b", mail.outbox[-1].subject).group(1)
        for _ in range(guesses):
            assert verify(f"{(int(code) + 1) % 1_000_000:06d}", ip).status_code == 400

    response = verify(code, "10.0.0.4")
    assert_error(response, 429)
    assert response.json()["code"] == "too_many_wrong_codes"
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert not User.objects.exists()


def test_a_code_cannot_be_used_twice_over_the_api(api_client):
    api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].subject).group(1)
    body = {"email": "ada@example.com", "code": code}

    assert api_client.post(VERIFY_URL, body, format="json").status_code == 200
    assert_error(APIClient().post(VERIFY_URL, body, format="json"), 400)
    assert UserSession.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "ada@example.com"},
        {"code": "123456"},
        {"email": "ada@example.com", "code": "12345"},
        {"email": "ada@example.com", "code": "1234567"},
        {"email": "ada@example.com", "code": "abcdef"},
        {"email": "ada@example.com", "code": 123456},
        {"email": "ada@example.com", "code": ["123456"]},
        {"email": "ada@example.com", "code": "١٢٣٤٥٦"},
        {"email": "bad", "code": "123456"},
        {"email": "ada@example.com", "code": "9" * 5000},
        [{"email": "ada@example.com", "code": "123456"}],
        "123456",
    ],
)
def test_a_bad_verification_is_refused_and_changes_nothing(api_client, body):
    api_client.post(REQUEST_URL, {"email": "ada@example.com"}, format="json")

    response = api_client.post(VERIFY_URL, body, format="json")

    assert_error(response, 400)
    assert LoginCode.objects.get().attempts == 0
    assert not User.objects.exists()
    assert not UserSession.objects.exists()


# --- Logout and sessions ---------------------------------------------------------------------


def test_logout_kills_the_token_and_the_cookie(api_client):
    token = sign_in(api_client)["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert api_client.post(LOGOUT_URL).status_code == 204

    assert_error(token_client(token).get(ME_URL), 401)
    api_client.credentials()
    assert_error(api_client.get(ME_URL), 401)
    assert not UserSession.objects.exists()


def test_logout_with_the_cookie_alone_kills_the_token_too(api_client):
    token = sign_in(api_client)["token"]
    csrf = api_client.cookies["csrftoken"].value

    assert api_client.post(LOGOUT_URL, HTTP_X_CSRFTOKEN=csrf).status_code == 204

    assert_error(token_client(token).get(ME_URL), 401)
    assert_error(api_client.get(ME_URL), 401)


def test_logout_needs_a_signed_in_user(api_client):
    assert_error(api_client.post(LOGOUT_URL), 401)


def test_sessions_lists_my_devices_and_marks_the_current_one():
    laptop = sign_in(APIClient(), device="Laptop")
    sign_in(APIClient(), device="Phone")
    sign_in(APIClient(), "someone.else@example.com", device="Other")

    listing = token_client(laptop["token"]).get(SESSIONS_URL)

    assert listing.status_code == 200
    devices = {row["device"]: row["current"] for row in listing.json()}
    assert devices == {"Laptop": True, "Phone": False}


def test_revoking_a_device_signs_only_that_device_out():
    phone_client, laptop_client = APIClient(), APIClient()
    phone = sign_in(phone_client, device="Phone")
    laptop = sign_in(laptop_client, device="Laptop")
    phone_session = UserSession.objects.get(device="Phone")

    response = token_client(laptop["token"]).delete(f"{SESSIONS_URL}/{phone_session.pk}")

    assert response.status_code == 204
    assert_error(token_client(phone["token"]).get(ME_URL), 401)
    assert_error(phone_client.get(ME_URL), 401)
    assert not SessionStore().exists(phone_session.session_key)
    assert token_client(laptop["token"]).get(ME_URL).status_code == 200
    assert laptop_client.get(ME_URL).status_code == 200


@pytest.mark.parametrize("session_id", ["999999", "abc", "99999999999999999999", "-1", "1.5"])
def test_revoking_an_unknown_session_is_a_404(user_client, session_id):
    before = UserSession.objects.count()

    response = user_client.delete(f"{SESSIONS_URL}/{session_id}")

    assert_error(response, 404)
    assert UserSession.objects.count() == before


def test_nobody_can_revoke_another_users_session(user_client):
    other = sign_in(APIClient(), "other@example.com")
    other_session = UserSession.objects.get(user__email="other@example.com")

    response = user_client.delete(f"{SESSIONS_URL}/{other_session.pk}")

    assert_error(response, 404)
    assert token_client(other["token"]).get(ME_URL).status_code == 200


# --- CSRF --------------------------------------------------------------------------------------


def test_cookie_session_writes_need_the_csrf_token():
    client = APIClient(enforce_csrf_checks=True)
    sign_in(client)

    refused = client.patch(ME_URL, {"display_name": "Ada"}, format="json")
    accepted = client.patch(
        ME_URL,
        {"display_name": "Ada"},
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )

    assert_error(refused, 403)
    assert accepted.status_code == 200
    assert User.objects.get().display_name == "Ada"


def test_token_writes_need_no_csrf_token():
    token = sign_in(APIClient())["token"]
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = client.patch(ME_URL, {"display_name": "Ada"}, format="json")

    assert response.status_code == 200
    assert response.json()["display_name"] == "Ada"


# --- me ----------------------------------------------------------------------------------------


def test_me_needs_a_signed_in_user(api_client):
    assert_error(api_client.get(ME_URL), 401)
    assert_error(api_client.patch(ME_URL, {"display_name": "x"}, format="json"), 401)


@pytest.mark.parametrize(
    "header", ["Token", "Token ", "Token not-a-token", "Token a b", "Bearer abc", "Token \u00e9"]
)
def test_a_bad_token_is_a_401(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get(ME_URL)

    assert_error(response, 401)


def test_me_shows_the_profile(user, user_client):
    response = user_client.get(ME_URL)

    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert response.json()["points"] == 0


def test_me_updates_display_name_and_opt_out_and_schedules_the_zone(user, user_client):
    response = user_client.patch(
        ME_URL,
        {
            "display_name": "Ada L.",
            "timezone": "Asia/Tokyo",
            "day_start_hour": 3,
            "leaderboard_opt_out": True,
        },
        format="json",
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.display_name, user.leaderboard_opt_out) == ("Ada L.", True)
    # The zone and day start wait for the end of the user's day: the next midnight in UTC.
    midnight = (dj_timezone.now() + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    body = response.json()
    assert (body["timezone"], body["day_start_hour"]) == ("UTC", 0)
    assert body["pending_day"] == {
        "timezone": "Asia/Tokyo",
        "day_start_hour": 3,
        "effective_at": midnight.isoformat().replace("+00:00", "Z"),
    }
    assert user.pending_from == midnight


@pytest.mark.parametrize("hour", [-1, 5, "3am", None])
def test_me_refuses_a_day_start_hour_outside_0_to_4(user, user_client, hour):
    response = user_client.patch(ME_URL, {"day_start_hour": hour}, format="json")

    assert_error(response, 400)
    user.refresh_from_db()
    assert user.pending_from is None


def test_me_ignores_fields_a_user_may_not_change(user, user_client):
    response = user_client.patch(
        ME_URL,
        {"display_name": "Ada", "points": 10**6, "is_staff": True, "email": "x@example.com"},
        format="json",
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.points, user.is_staff, user.email) == (0, False, user.email)
    assert user.email != "x@example.com"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"timezone": "Mars/Olympus"},
        {"timezone": ""},
        {"timezone": 7},
        {"timezone": "utc"},
        {"display_name": "x" * 51},
        {"display_name": None},
        {"display_name": ["Ada"]},
        {"display_name": {"first": "Ada"}},
        {"leaderboard_opt_out": "maybe"},
        {"leaderboard_opt_out": None},
        {"points": 100},
        ["display_name"],
        "Ada",
        None,
    ],
)
def test_a_bad_profile_update_is_refused_and_changes_nothing(user, user_client, body):
    before = User.objects.values().get(pk=user.pk)

    response = user_client.patch(ME_URL, body, format="json")

    assert_error(response, 400)
    assert User.objects.values().get(pk=user.pk) == before


def test_a_malformed_profile_update_is_refused(user, user_client):
    response = user_client.generic(
        "PATCH", ME_URL, '{"display_name": "Ada"', content_type="application/json"
    )

    assert_error(response, 400)
    user.refresh_from_db()
    assert user.display_name != "Ada"


def test_unknown_customer_paths_are_json_404s(user_client):
    assert_error(user_client.get("/api/customer/nope"), 404)


# --- One mailbox, one account ----------------------------------------------------------------


def test_a_unicode_domain_and_its_ascii_form_are_one_account(api_client):
    first = sign_in(api_client, email="user@bücher.example")
    second = sign_in(APIClient(), email="user@xn--bcher-kva.example")

    assert first["user"]["id"] == second["user"]["id"]
    assert User.objects.get().email == "user@xn--bcher-kva.example"
    assert mail.outbox[0].to == ["user@xn--bcher-kva.example"]


@pytest.mark.parametrize(
    "email", ['"jane.doe"@example.com', '"jane\\u0001"@example.com', '"a b"@example.com']
)
def test_a_quoted_address_is_refused_and_sends_nothing(api_client, email):
    response = api_client.post(REQUEST_URL, {"email": email}, format="json")

    assert_error(response, 400)
    assert mail.outbox == []
    assert not LoginCode.objects.exists()
