"""WebSocket sign-in with `?token=<api token>`, for clients that cannot send the cookie."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from accounts.models import User, UserSession
from accounts.services import token_hash, user_session_touch


@database_sync_to_async
def user_for_token(token: str) -> User | AnonymousUser:
    user_session = (
        UserSession.objects.select_related("user").filter(token_hash=token_hash(token)).first()
    )
    if user_session is None or not user_session.user.is_active:
        return AnonymousUser()
    user_session_touch(user_session_id=user_session.pk, last_seen_at=user_session.last_seen_at)
    return user_session.user


class TokenAuthMiddleware(BaseMiddleware):
    """Puts the token's user in scope["user"]; without a token the session's user stays."""

    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        tokens = query.get("token")
        if tokens:
            scope = dict(scope, user=await user_for_token(tokens[0]))
        return await super().__call__(scope, receive, send)
