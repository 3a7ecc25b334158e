import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.db import connections, transaction
from django.test import Client

from accounts.models import UserSession
from accounts.services import token_hash
from accounts.tests.factories import UserFactory
from config.asgi import application
from gamification.tests.conftest import events  # noqa: F401
from realtime import hub as hub_module
from realtime.events import event_send

ORIGIN = (b"origin", b"http://testserver")
HOST = (b"host", b"testserver")


@pytest_asyncio.fixture
async def realtime():
    """A fresh channel layer and hub on this test's event loop, stopped afterwards."""
    channel_layers.backends.clear()
    yield
    # The consumers' database thread keeps its connection; close it so the test database
    # can be dropped at the end of the run.
    await sync_to_async(connections.close_all)()
    hub = hub_module._hub
    if hub is not None:
        await hub.stop()
        hub_module._hub = None
    for layer in channel_layers.backends.values():
        await layer.flush()
    channel_layers.backends.clear()


async def socket_open(path: str, *, headers=(ORIGIN,)) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=[HOST, *headers])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@database_sync_to_async
def user_with_token():
    user = UserFactory()
    token = f"token-{user.pk}"
    UserSession.objects.create(user=user, token_hash=token_hash(token))
    return user, token


@database_sync_to_async
def session_cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@database_sync_to_async
def committed_event(*, group: str, event_type: str, data: dict) -> None:
    with transaction.atomic():
        event_send(group=group, event_type=event_type, data=data)


@pytest.fixture
def make_user():
    return database_sync_to_async(UserFactory)
