import json

import asgiref.sync
import pytest
from channels.testing import HttpCommunicator

from config.asgi import application

pytestmark = pytest.mark.asyncio


@pytest.fixture
def crossings(monkeypatch):
    """How many times requests moved from the event loop to a worker thread."""
    count = [0]
    original = asgiref.sync.SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        count[0] += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counted)
    return count


async def get(path: str) -> dict:
    communicator = HttpCommunicator(application, "GET", path, headers=[(b"host", b"testserver")])
    response = await communicator.get_response(timeout=5)
    await communicator.wait(timeout=5)  # the application has closed the response
    return response


async def test_a_request_runs_its_whole_middleware_chain_in_one_crossing(crossings):
    response = await get("/healthz")

    assert response["status"] == 200
    # request_started, the middleware chain with its view, and closing the response.
    assert crossings[0] == 3


@pytest.mark.django_db(transaction=True)
async def test_an_api_read_through_rate_limits_and_drf_takes_no_more_crossings(crossings):
    response = await get("/api/products/categories/")

    assert response["status"] == 200
    assert crossings[0] == 3


async def test_errors_are_still_answered_as_json():
    response = await get("/no-such-page")

    assert response["status"] == 404
    assert json.loads(response["body"])["code"] == "not_found"
