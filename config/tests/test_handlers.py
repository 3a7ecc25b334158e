import asyncio
import json
import threading

import asgiref.sync
import pytest
from channels.testing import HttpCommunicator

from config.asgi import application, django_asgi_app

# Every request may touch the database: at its start Django checks the connection its worker
# thread kept open from an earlier request (the test database lives in memory on SQLite).
pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


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


async def test_an_api_read_through_rate_limits_and_drf_takes_no_more_crossings(crossings):
    response = await get("/api/products/categories/")

    assert response["status"] == 200
    assert crossings[0] == 3


async def test_requests_one_after_another_reuse_one_worker_thread(monkeypatch):
    threads = set()
    original = django_asgi_app.get_response

    def recording(request):
        threads.add(threading.get_ident())
        return original(request)

    monkeypatch.setattr(django_asgi_app, "get_response", recording)
    for _ in range(5):
        assert (await get("/healthz"))["status"] == 200
    assert len(threads) == 1


async def test_errors_are_still_answered_as_json():
    response = await get("/no-such-page")

    assert response["status"] == 404
    assert json.loads(response["body"])["code"] == "not_found"


async def test_a_slow_request_does_not_hold_up_the_next(monkeypatch):
    second_ran = threading.Event()
    original = django_asgi_app.get_response

    def first_waits_for_the_second(request):
        if request.GET.get("n") == "1":
            assert second_ran.wait(timeout=5), "the second request never ran"
        else:
            second_ran.set()
        return original(request)

    monkeypatch.setattr(django_asgi_app, "get_response", first_waits_for_the_second)
    first = asyncio.create_task(get("/healthz?n=1"))
    second = await get("/healthz?n=2")
    assert second["status"] == 200
    assert (await first)["status"] == 200


async def test_a_root_path_from_the_server_does_not_rewrite_links():
    # What daphne puts in the scope when a client sends `Daphne-Root-Path: /x`.
    communicator = HttpCommunicator(
        application, "GET", "/admin/", headers=[(b"host", b"testserver")]
    )
    communicator.scope["root_path"] = "/x"
    response = await communicator.get_response(timeout=5)
    await communicator.wait(timeout=5)

    assert response["status"] == 302
    location = dict(response["headers"])[b"Location"].decode()
    assert location.startswith("/admin/login/"), location
