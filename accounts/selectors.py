"""Reads of the accounts app."""

from datetime import timedelta

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User, UserSession


def sessions_for_user(*, user: User) -> QuerySet[UserSession]:
    """A user's signed-in devices, most recently seen first (index usersession_user_seen)."""
    return UserSession.objects.filter(user=user).order_by("-last_seen_at")


def current_user_session_id(*, request: HttpRequest, auth: object) -> int | None:
    """The UserSession of this request: the token's, or the one stored in the cookie session."""
    if isinstance(auth, UserSession):
        return auth.pk
    return request.session.get("user_session_id")


def users_seen_since(*, minutes: int) -> int:
    """Distinct users seen in the last minutes (index usersession_seen_user)."""
    since = timezone.now() - timedelta(minutes=minutes)
    return UserSession.objects.filter(last_seen_at__gte=since).values("user_id").distinct().count()
