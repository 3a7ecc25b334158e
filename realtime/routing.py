from channels.auth import AuthMiddlewareStack
from django.urls import path

from realtime.auth import TokenAuthMiddleware
from realtime.consumers import LiveConsumer, MeConsumer
from realtime.events import STREAM_PATHS

# /ws/live/ needs no user, so it skips the session lookup (a thread hop per connect).
websocket_urlpatterns = [
    path(STREAM_PATHS["live"].lstrip("/"), LiveConsumer.as_asgi()),
    path(
        STREAM_PATHS["me"].lstrip("/"),
        AuthMiddlewareStack(TokenAuthMiddleware(MeConsumer.as_asgi())),
    ),
]
