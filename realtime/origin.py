"""Which pages may open a WebSocket: the Origin's scheme, host and port must all match.

An Origin is allowed when it is one of CSRF_TRUSTED_ORIGINS (`https://*.example.com` covers
the subdomains, as Django's CSRF check reads it), or when it is the request's own origin,
the same scheme, host and port as the Host it was sent to, and that host is in ALLOWED_HOSTS.
So a bare ALLOWED_HOSTS entry allows the page the server itself serves and nothing else: with
`127.0.0.1` allowed, a socket to `127.0.0.1:8000` accepts `http://127.0.0.1:8000`, never
`http://127.0.0.1:9999` nor `https://127.0.0.1:8000`. A request without an Origin (not a
browser) is allowed only when ALLOWED_HOSTS is `*`.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import validate_host

Origin = tuple[str, str, int]

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_parse(value: str) -> Origin | None:
    """(scheme, host, port) of an http(s) origin, the port made explicit; None if malformed."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin1")
    return None


def request_origin(scope: dict) -> Origin | None:
    """The origin the socket was opened on: its Host, and https for wss or behind a proxy
    that says so in SECURE_PROXY_SSL_HEADER."""
    host = _header(scope, b"host")
    if not host:
        return None
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name = proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        if _header(scope, name) == proxy[1]:
            scheme = "https"
    return origin_parse(f"{scheme}://{host}")


def _trusted(origin: Origin, trusted: str) -> bool:
    scheme, host, port = origin
    if "://*." in trusted:
        wildcard = origin_parse(trusted.replace("://*.", "://", 1))
        return wildcard is not None and (
            (scheme, port) == (wildcard[0], wildcard[2]) and host.endswith("." + wildcard[1])
        )
    return origin_parse(trusted) == origin


def origin_allowed(*, origin: str | None, scope: dict) -> bool:
    if origin is None:
        return "*" in settings.ALLOWED_HOSTS
    parsed = origin_parse(origin)
    if parsed is None:
        return False
    if any(_trusted(parsed, trusted) for trusted in settings.CSRF_TRUSTED_ORIGINS):
        return True
    return parsed == request_origin(scope) and validate_host(parsed[1], settings.ALLOWED_HOSTS)


class OriginValidator:
    """Refuses the handshake (403) of a WebSocket from an origin that is not allowed."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(
            origin=_header(scope, b"origin"), scope=scope
        ):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
