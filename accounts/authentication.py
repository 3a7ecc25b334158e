"""How API requests prove who they are: `Authorization: Token <key>` or the session cookie."""

from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import User, UserSession
from accounts.services import token_hash, user_session_touch


class SessionTokenAuthentication(authentication.TokenAuthentication):
    """A token issued at sign-in; `request.auth` is its UserSession."""

    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[User, UserSession]:
        user_session = (
            UserSession.objects.select_related("user").filter(token_hash=token_hash(key)).first()
        )
        if user_session is None or not user_session.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if user_session_touch(
            user_session_id=user_session.pk, last_seen_at=user_session.last_seen_at
        ):
            user_session.last_seen_at = timezone.now()
        return user_session.user, user_session


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser's session cookie (with CSRF), keeping its UserSession's last-seen time."""

    def authenticate(self, request: Request) -> tuple[User, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        session = request._request.session
        user_session_id = session.get("user_session_id")
        if user_session_id is not None:
            seen = session.get("seen_at")
            last_seen = datetime.fromisoformat(seen) if seen else None
            if user_session_touch(user_session_id=user_session_id, last_seen_at=last_seen):
                session["seen_at"] = timezone.now().isoformat()
        return result


class SessionAuthenticationScheme(SessionScheme):
    """The session cookie in the OpenAPI schema; drf-spectacular matches the exact class."""

    target_class = "accounts.authentication.SessionAuthentication"


def request_user(request: HttpRequest | Request) -> User:
    """The signed-in user of a request that its view's permissions have already let through."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


def request_user_or_none(request: HttpRequest | Request) -> User | None:
    """The signed-in user of a request, or None for an anonymous one."""
    user = request.user
    return user if isinstance(user, User) else None
