import os

from config.settings import default_settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", default_settings_module())

from config.handlers import get_asgi_application

# Django first, so the app registry is ready before the consumers import models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.sentry import sentry_asgi_app  # noqa: E402
from realtime.origin import OriginValidator  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Django reports HTTP errors to Sentry itself; WebSocket errors need the middleware.
        "websocket": sentry_asgi_app(OriginValidator(URLRouter(websocket_urlpatterns))),
    }
)
