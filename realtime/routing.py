from channels.auth import AuthMiddlewareStack
from django.urls import path

from realtime.auth import TokenAuthMiddleware
from realtime.consumers import LiveConsumer, MeConsumer

# /ws/live/ needs no user, so it skips the session lookup (a thread hop per connect).
websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/me/", AuthMiddlewareStack(TokenAuthMiddleware(MeConsumer.as_asgi()))),
]
