"""The periodic sign-in housekeeping: old login codes and idle sessions go."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.models import LoginCode, LoginFailure, UserSession
from accounts.tasks import sign_in_housekeeping

pytestmark = pytest.mark.django_db


def test_old_codes_wrong_code_records_and_idle_sessions_are_deleted(user, settings):
    now = timezone.now()
    old_code = LoginCode.objects.create(
        email="a@example.com", code_hash="x", expires_at=now - timedelta(days=1, minutes=1)
    )
    recent_code = LoginCode.objects.create(
        email="a@example.com", code_hash="y", expires_at=now - timedelta(hours=23)
    )
    age = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    idle = UserSession.objects.create(user=user, token_hash="idle", last_seen_at=now - age * 1.1)
    active = UserSession.objects.create(user=user, token_hash="live", last_seen_at=now - age * 0.9)
    _, window = settings.LOGIN_FAILURES_PER_ADDRESS
    LoginFailure.objects.create(email="a@example.com", created_at=now - window * 1.1)
    recent_failure = LoginFailure.objects.create(email="a@example.com", created_at=now)
    Session.objects.create(session_key="gone", session_data="", expire_date=now - timedelta(1))
    Session.objects.create(session_key="kept", session_data="", expire_date=now + timedelta(1))

    assert sign_in_housekeeping.apply().get() == {
        "login_codes": 1,
        "login_failures": 1,
        "sessions": 1,
    }
    assert list(LoginFailure.objects.values_list("pk", flat=True)) == [recent_failure.pk]
    assert list(LoginCode.objects.values_list("pk", flat=True)) == [recent_code.pk]
    assert list(UserSession.objects.values_list("pk", flat=True)) == [active.pk]
    assert list(Session.objects.values_list("session_key", flat=True)) == ["kept"]
    assert not LoginCode.objects.filter(pk=old_code.pk).exists()
    assert not UserSession.objects.filter(pk=idle.pk).exists()
