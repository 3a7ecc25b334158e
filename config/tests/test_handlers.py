import asyncio
import json
import threading
import time

import asgiref.sync
import pytest
from channels.testing import ApplicationCommunicator, HttpCommunicator

from config.asgi import application, django_asgi_app
from config.handlers import SyncChainASGIHandler

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


async def get(path: str, app=application) -> dict:
    communicator = HttpCommunicator(app, "GET", path, headers=[(b"host", b"testserver")])
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


async def test_request_threads_caps_the_requests_running_django_at_once(monkeypatch, settings):
    settings.REQUEST_THREADS = 2
    handler = SyncChainASGIHandler()
    running, most = [0], [0]
    lock = threading.Lock()
    release = threading.Event()
    original = handler.get_response

    def held(request):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            assert release.wait(timeout=5), "never released"
            return original(request)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(handler, "get_response", held)
    requests = [
        asyncio.create_task(get(f"/api/products/categories/?n={n}", app=handler)) for n in range(5)
    ]
    deadline = asyncio.get_running_loop().time() + 5
    while running[0] < 2 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    # The others wait for a place while two hold theirs.
    await asyncio.sleep(0.2)
    assert running[0] == 2
    release.set()
    responses = await asyncio.gather(*requests)

    assert [r["status"] for r in responses] == [200] * 5
    assert most[0] == 2


async def test_no_request_threads_limit_lets_every_request_in(monkeypatch, settings):
    settings.REQUEST_THREADS = 0
    handler = SyncChainASGIHandler()
    arrived = threading.Barrier(5, timeout=5)
    original = handler.get_response

    def meet(request):
        arrived.wait()  # breaks, failing the request, unless all five run at once
        return original(request)

    monkeypatch.setattr(handler, "get_response", meet)
    responses = await asyncio.gather(
        *(get(f"/api/products/categories/?n={n}", app=handler) for n in range(5))
    )

    assert [r["status"] for r in responses] == [200] * 5


async def test_the_probes_answer_while_every_place_is_taken(monkeypatch, settings):
    settings.REQUEST_THREADS = 1
    handler = SyncChainASGIHandler()
    release = threading.Event()
    original = handler.get_response

    def stuck(request):
        if request.path.startswith("/api/"):
            assert release.wait(timeout=5), "never released"
        return original(request)

    monkeypatch.setattr(handler, "get_response", stuck)
    stuck_request = asyncio.create_task(get("/api/products/categories/", app=handler))
    try:
        await asyncio.sleep(0.2)
        assert (await get("/healthz", app=handler))["status"] == 200
        assert (await get("/readyz", app=handler))["status"] in (200, 503)
        # Anything else waits for the stuck request's place.
        waiting = asyncio.create_task(get("/api/products/categories/?again=1", app=handler))
        await asyncio.sleep(0.3)
        assert not waiting.done()
    finally:
        release.set()
    assert (await stuck_request)["status"] == 200
    assert (await waiting)["status"] == 200


async def test_one_handler_caps_requests_on_each_event_loop_it_serves(monkeypatch, settings):
    settings.REQUEST_THREADS = 1
    handler = SyncChainASGIHandler()
    original = handler.get_response

    def slow(request):
        time.sleep(0.05)  # long enough for the next request to wait for the place
        return original(request)

    monkeypatch.setattr(handler, "get_response", slow)

    async def three_at_once():
        paths = [f"/api/products/categories/?n={n}" for n in range(3)]
        return [r["status"] for r in await asyncio.gather(*(get(p, app=handler) for p in paths))]

    # This test's loop, then a loop of its own in another thread (as the next test's would be).
    assert await three_at_once() == [200] * 3
    assert await asyncio.to_thread(asyncio.run, three_at_once()) == [200] * 3


async def test_a_client_still_sending_its_body_holds_no_place(settings):
    settings.REQUEST_THREADS = 1
    handler = SyncChainASGIHandler()
    slow = ApplicationCommunicator(
        handler,
        {
            "type": "http",
            "http_version": "1.1",
            "method": "POST",
            "path": "/api/products/categories/",
            "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"content-length", b"2")],
            "client": ("127.0.0.1", 40000),
            "server": ("testserver", 80),
        },
    )
    await slow.send_input({"type": "http.request", "body": b"{", "more_body": True})
    await asyncio.sleep(0.1)

    # The one place is free while the slow client has sent half its body.
    assert (await get("/api/products/categories/", app=handler))["status"] == 200

    await slow.send_input({"type": "http.request", "body": b"}", "more_body": False})
    start = await slow.receive_output(timeout=5)
    assert start["type"] == "http.response.start"
    await slow.wait(timeout=5)
