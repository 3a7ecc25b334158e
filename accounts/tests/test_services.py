import re
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.utils import timezone

from accounts import services
from accounts.models import LoginCode, User, UserSession, normalize_email
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def requested_code(email: str) -> str:
    services.login_code_request(email=email)
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].subject).group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def at(moment):
    return mock.patch("django.utils.timezone.now", return_value=moment)


def test_the_code_is_mailed_and_only_its_hash_is_stored():
    code = requested_code("ada@example.com")
    login_code = LoginCode.objects.get()

    assert mail.outbox[-1].to == ["ada@example.com"]
    assert code in mail.outbox[-1].body
    assert len(login_code.code_hash) == 64
    assert code not in login_code.code_hash
    assert login_code.code_hash != services._code_hash("ada@example.com", wrong(code))


def test_a_code_works_for_ten_minutes_and_not_after():
    start = timezone.now()
    with at(start):
        code = requested_code("ada@example.com")

    with at(start + timedelta(minutes=10, seconds=1)), pytest.raises(services.InvalidLoginCode):
        services.login_code_verify(email="ada@example.com", code=code)
    with at(start + timedelta(minutes=9, seconds=59)):
        user = services.login_code_verify(email="ada@example.com", code=code)

    assert user.email == "ada@example.com"


def test_five_wrong_tries_kill_the_code_even_if_the_sixth_is_right():
    code = requested_code("ada@example.com")
    for _ in range(5):
        with pytest.raises(services.InvalidLoginCode):
            services.login_code_verify(email="ada@example.com", code=wrong(code))

    with pytest.raises(services.InvalidLoginCode):
        services.login_code_verify(email="ada@example.com", code=code)
    assert not User.objects.exists()


def test_four_wrong_tries_leave_the_code_usable():
    code = requested_code("ada@example.com")
    for _ in range(4):
        with pytest.raises(services.InvalidLoginCode):
            services.login_code_verify(email="ada@example.com", code=wrong(code))

    assert services.login_code_verify(email="ada@example.com", code=code).email == (
        "ada@example.com"
    )


def test_a_used_code_cannot_be_used_again():
    code = requested_code("ada@example.com")
    services.login_code_verify(email="ada@example.com", code=code)

    with pytest.raises(services.InvalidLoginCode):
        services.login_code_verify(email="ada@example.com", code=code)


def test_a_strangers_request_for_a_new_code_does_not_cancel_mine():
    mine = requested_code("ada@example.com")
    requested_code("ada@example.com")

    assert services.login_code_verify(email="ada@example.com", code=mine)


def test_only_the_newest_three_codes_work():
    first, second, *_newer = (requested_code("ada@example.com") for _ in range(4))

    with pytest.raises(services.InvalidLoginCode):
        services.login_code_verify(email="ada@example.com", code=first)
    assert services.login_code_verify(email="ada@example.com", code=second)


def test_signing_in_with_one_live_code_ends_the_others():
    first = requested_code("ada@example.com")
    second = requested_code("ada@example.com")
    services.login_code_verify(email="ada@example.com", code=second)

    with pytest.raises(services.InvalidLoginCode):
        services.login_code_verify(email="ada@example.com", code=first)


def test_each_live_code_has_its_own_five_tries():
    first = requested_code("ada@example.com")
    for _ in range(4):
        with pytest.raises(services.InvalidLoginCode):
            services.login_code_verify(email="ada@example.com", code=wrong(first))
    second = requested_code("ada@example.com")
    for _ in range(3):
        with pytest.raises(services.InvalidLoginCode):
            services.login_code_verify(email="ada@example.com", code="999999")

    # The first code's fifth wrong try killed it; this is the second code's fourth.
    with pytest.raises(services.InvalidLoginCode):
        services.login_code_verify(email="ada@example.com", code=first)
    assert services.login_code_verify(email="ada@example.com", code=second)


def test_ten_wrong_codes_lock_the_address_for_fifteen_minutes_then_a_fresh_code_works():
    start = timezone.now()
    with at(start):
        for _ in range(2):
            code = requested_code("ada@example.com")
            for _ in range(5):
                with pytest.raises(services.InvalidLoginCode):
                    services.login_code_verify(email="ada@example.com", code=wrong(code))
        code = requested_code("ada@example.com")
        with pytest.raises(services.LoginCodeLocked) as locked:
            services.login_code_verify(email="ada@example.com", code=code)
    assert locked.value.retry_after == 15 * 60

    with at(start + timedelta(minutes=15, seconds=1)):
        fresh = requested_code("ada@example.com")
        assert services.login_code_verify(email="ada@example.com", code=fresh)


def test_the_wrong_code_budget_is_per_address():
    code = requested_code("eve@example.com")
    for _ in range(10):
        with pytest.raises(services.InvalidLoginCode):
            services.login_code_verify(email="eve@example.com", code=wrong(code))

    assert services.login_code_verify(
        email="ada@example.com", code=requested_code("ada@example.com")
    )


def test_a_code_only_signs_in_the_address_it_was_sent_to():
    code = requested_code("ada@example.com")
    requested_code("eve@example.com")

    with pytest.raises(services.InvalidLoginCode):
        services.login_code_verify(email="eve@example.com", code=code)


def test_first_sign_in_creates_the_account_and_email_case_does_not_matter():
    code = requested_code("  Ada.Lovelace@Example.COM ")
    created = services.login_code_verify(email="ada.lovelace@example.com", code=code)
    again = services.login_code_verify(
        email="ADA.LOVELACE@example.com", code=requested_code("ada.lovelace@EXAMPLE.com")
    )

    assert created.email == "ada.lovelace@example.com"
    assert again.pk == created.pk
    assert User.objects.count() == 1
    assert not created.has_usable_password()


def test_a_disabled_account_cannot_sign_in():
    UserFactory(email="gone@example.com", is_active=False)
    code = requested_code("gone@example.com")

    with pytest.raises(services.InvalidLoginCode):
        services.login_code_verify(email="gone@example.com", code=code)


def test_ending_a_session_deletes_its_token_and_its_cookie_session():
    user = UserFactory()
    store = SessionStore()
    store["user_session_id"] = 1
    store.create()
    user_session = UserSession.objects.create(
        user=user, token_hash="a" * 64, session_key=store.session_key
    )

    services.user_session_end(user_session=user_session)

    assert not UserSession.objects.filter(pk=user_session.pk).exists()
    assert not SessionStore().exists(store.session_key)


def test_a_session_is_touched_at_most_once_a_minute():
    user_session = UserSession.objects.create(user=UserFactory(), token_hash="b" * 64)
    recent = timezone.now() - timedelta(seconds=30)
    stale = timezone.now() - timedelta(minutes=2)

    assert not services.user_session_touch(user_session_id=user_session.pk, last_seen_at=recent)
    assert services.user_session_touch(user_session_id=user_session.pk, last_seen_at=stale)


def test_user_update_changes_only_the_given_fields():
    user = UserFactory(display_name="Ada", timezone="UTC")

    services.user_update(user=user, leaderboard_opt_out=True)
    user.refresh_from_db()

    assert (user.display_name, user.timezone, user.leaderboard_opt_out) == ("Ada", "UTC", True)


def test_user_update_schedules_a_zone_change_instead_of_applying_it():
    user = UserFactory(timezone="UTC")
    noon = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    services.user_update(user=user, timezone="Europe/Berlin", now=noon)
    user.refresh_from_db()

    assert (user.timezone, user.pending_timezone) == ("UTC", "Europe/Berlin")
    assert user.pending_from == datetime(2026, 6, 2, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "email",
    [
        "jane\u2024doe@example.com",
        "jane\uff0edoe@example.com",
        "ja\u200bne@example.com",
        "ja\x00ne@example.com",
        '"jane"@example.com',
    ],
)
def test_an_address_with_a_look_alike_or_control_character_cannot_make_an_account(email):
    with pytest.raises(ValueError):
        User.objects.create_user(email)
    assert not User.objects.exists()


def test_the_canonical_address_has_the_domain_in_ascii_and_lower_case():
    assert normalize_email(" Jane.Doe@Bücher.Example ") == "jane.doe@xn--bcher-kva.example"


def test_an_account_stored_before_the_address_rules_can_still_change_its_profile():
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(email='"legacy"@example.com')
    user.refresh_from_db()

    services.user_update(user=user, display_name="Still here")

    assert User.objects.get(pk=user.pk).display_name == "Still here"
