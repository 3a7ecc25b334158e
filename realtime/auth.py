"""WebSocket sign-in with `?token=<api token>`, for clients that cannot send the cookie."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from accounts.models import User, UserSession
from accounts.services import token_hash, user_session_touch


@database_sync_to_async
def user_for_token(token: str) -> tuple[User | AnonymousUser, int | None]:
    """The token's user and UserSession id (for revocation), or an anonymous user."""
    user_session = (
        UserSession.objects.select_related("user").filter(token_hash=token_hash(token)).first()
    )
    if user_session is None or not user_session.user.is_active:
        return AnonymousUser(), None
    user_session_touch(user_session_id=user_session.pk, last_seen_at=user_session.last_seen_at)
    return user_session.user, user_session.pk


class TokenAuthMiddleware(BaseMiddleware):
    """Puts the token's user in scope["user"] and its UserSession id in
    scope["user_session_id"]; without a token the session's user stays."""

    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        tokens = query.get("token")
        if tokens:
            user, user_session_id = await user_for_token(tokens[0])
            scope = dict(scope, user=user, user_session_id=user_session_id)
        return await super().__call__(scope, receive, send)
