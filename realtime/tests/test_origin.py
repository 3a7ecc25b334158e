"""The Origin of a WebSocket must match an allowed origin in scheme, host and port."""

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("realtime")]


@pytest.fixture
def allowed(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "rankly.example"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.cdn.example"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


async def accepted(headers: list[tuple[bytes, bytes]]) -> bool:
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await communicator.connect()
    if connected:
        await communicator.disconnect()
    return connected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.0.0.1:9999", False),
        ("https://127.0.0.1:8000", False),
        ("http://127.0.0.1", False),
        ("http://localhost:8000", False),
        ("https://app.example.com", True),
        ("https://app.example.com:443", True),
        ("https://app.example.com:8443", False),
        ("http://app.example.com", False),
        ("https://eu.cdn.example", True),
        ("https://cdn.example.evil.test", False),
        ("null", False),
        ("http://127.0.0.1:notaport", False),
    ],
)
@pytest.mark.usefixtures("allowed")
async def test_origin_must_match_in_scheme_host_and_port(origin, expected):
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", origin.encode())]
    assert await accepted(headers) is expected


@pytest.mark.usefixtures("allowed")
async def test_the_pages_own_https_origin_behind_a_tls_proxy_is_allowed():
    headers = [
        (b"host", b"rankly.example"),
        (b"x-forwarded-proto", b"https"),
        (b"origin", b"https://rankly.example"),
    ]
    assert await accepted(headers)
    assert not await accepted(headers[:1] + headers[2:])


@pytest.mark.usefixtures("allowed")
async def test_an_origin_for_a_host_not_allowed_is_refused_even_as_the_requests_own():
    assert not await accepted([(b"host", b"evil.test"), (b"origin", b"http://evil.test")])


async def test_no_origin_is_refused_unless_every_host_is_allowed(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    assert not await accepted([(b"host", b"127.0.0.1")])
    settings.ALLOWED_HOSTS = ["*"]
    assert await accepted([(b"host", b"127.0.0.1")])
