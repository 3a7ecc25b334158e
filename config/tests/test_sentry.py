import asyncio
import importlib
import logging
import re
import secrets
import shutil

import pytest
import sentry_sdk
from django.apps import apps
from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
from sentry_sdk.transport import Transport

from config.sentry import RELEASE_ENV_VARS, sentry_asgi_app, sentry_init, sentry_release

DSN = "https://public@o0.ingest.sentry.io/1"


@pytest.fixture
def sentry_off_afterwards():
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture
def no_release_env(monkeypatch):
    for name in RELEASE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def test_without_a_dsn_sentry_stays_off():
    assert sentry_init(dsn="", environment="production", traces_sample_rate=0.0) is False
    assert not sentry_sdk.get_client().is_active()


def test_with_a_dsn_sentry_starts_with_environment_release_and_no_personal_data(
    sentry_off_afterwards,
):
    assert sentry_init(dsn=DSN, environment="production", traces_sample_rate=0.25, release="abc123")
    client = sentry_sdk.get_client()
    assert client.is_active()
    assert client.options["dsn"] == DSN
    assert client.options["environment"] == "production"
    assert client.options["release"] == "abc123"
    assert client.options["traces_sample_rate"] == 0.25
    assert not sentry_sdk.scope.should_send_default_pii()
    assert client.options["data_collection"]["user_info"] is False
    assert client.options["data_collection"]["http_bodies"] == []
    assert {"django", "redis", "logging", "celery"} <= set(client.integrations)


def test_release_defaults_to_the_commit_named_by_the_platform(
    sentry_off_afterwards, no_release_env, monkeypatch
):
    monkeypatch.setenv("REPLIT_GIT_COMMIT", "0123abcd")
    sentry_init(dsn=DSN, environment="development", traces_sample_rate=0.0)
    assert sentry_sdk.get_client().options["release"] == "0123abcd"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_release_falls_back_to_the_checked_out_commit(no_release_env):
    assert re.fullmatch(r"[0-9a-f]{40}", sentry_release())


def test_release_is_unknown_outside_a_git_checkout(no_release_env, tmp_path):
    assert sentry_release(cwd=tmp_path) is None


def test_startup_logs_that_sentry_is_off_when_no_dsn_is_set(caplog, settings):
    settings.SENTRY_DSN = ""
    with caplog.at_level(logging.INFO, logger="rankly"):
        apps.get_app_config("config").ready()
    assert "Sentry monitoring off: SENTRY_DSN is not set" in caplog.text
    assert not sentry_sdk.get_client().is_active()


async def _websocket_app(scope, receive, send) -> None:
    raise RuntimeError("consumer failed")


def test_websocket_app_is_left_alone_while_sentry_is_off():
    assert sentry_asgi_app(_websocket_app) is _websocket_app


def test_websocket_app_reports_to_sentry_once_it_is_on(sentry_off_afterwards):
    sentry_init(dsn=DSN, environment="development", traces_sample_rate=0.0, release="r1")
    assert isinstance(sentry_asgi_app(_websocket_app), SentryAsgiMiddleware)


@pytest.fixture
def asgi_rebuilt_afterwards():
    """The next tests get config.asgi as built with Sentry off again."""
    yield
    import config.asgi

    importlib.reload(config.asgi)


def _asgi_application():
    """config.asgi built afresh, so it sees whether Sentry is on at this moment."""
    import config.asgi

    return importlib.reload(config.asgi).application


async def _websocket_to_unknown_path(application) -> None:
    scope = {
        "type": "websocket",
        "path": "/ws/no-such-route/",
        "headers": [(b"host", b"testserver"), (b"origin", b"http://testserver")],
        "query_string": b"",
        "subprotocols": [],
    }
    queue: asyncio.Queue = asyncio.Queue()
    await queue.put({"type": "websocket.connect"})

    async def send(message) -> None:
        pass

    with pytest.raises(ValueError, match="No route found"):
        await application(scope, queue.get, send)


class CapturingTransport(Transport):
    """Keeps what Sentry would send, instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes = []

    def capture_envelope(self, envelope) -> None:
        self.envelopes.append(envelope)


def test_a_websocket_error_reaches_sentry(asgi_rebuilt_afterwards, sentry_off_afterwards):
    transport = CapturingTransport()
    sentry_sdk.init(dsn=DSN, transport=transport, default_integrations=False)

    asyncio.run(_websocket_to_unknown_path(_asgi_application()))
    sentry_sdk.flush()

    events = [envelope.get_event() for envelope in transport.envelopes]
    errors = [
        event["exception"]["values"][-1] for event in events if event and "exception" in event
    ]
    assert [error["type"] for error in errors] == ["ValueError"]
    assert "No route found" in errors[0]["value"]


def test_a_failing_task_reaches_sentry_without_its_arguments(sentry_off_afterwards):
    from celery import shared_task

    @shared_task(name="config.tests.failing_task")
    def failing_task(*, code: str) -> None:
        raise RuntimeError("the task broke")

    sentry_init(dsn=DSN, environment="production", traces_sample_rate=0.0, release="abc123")
    transport = CapturingTransport()
    sentry_sdk.get_client().transport = transport
    # Made at run time: the source lines Sentry quotes must not contain it.
    code = secrets.token_hex(4)
    failing_task.apply(kwargs={"code": code})
    sentry_sdk.flush()

    events = [e.get_event() for e in transport.envelopes if e.get_event()]
    assert [event["exception"]["values"][-1]["value"] for event in events] == ["the task broke"]
    # Neither the frames' variables nor the task's context carry the arguments.
    assert code not in str(events[0])
