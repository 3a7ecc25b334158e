"""Rankly's ASGI handler for HTTP: Django's own, with each request's middleware and view run in
one call, on a worker thread kept from one request to the next.

Rankly's middleware and views are synchronous. Django's ASGI handler builds the middleware
chain in async mode, so a request crosses between the event loop and its worker thread at each
sync-only step: six crossings for an API read, each a thread handoff and a context copy. Here
the chain is built in sync mode and run as one synchronous call, as a WSGI server would run it,
which leaves three crossings: the request_started signal, the chain, and closing the response.

Django also starts a new worker thread for every request and joins it afterwards. Here a
request borrows an idle worker (asgiref's ThreadSensitiveContext with an executor) and gives it
back, as the threads of a threaded WSGI server are reused; it still has the thread to itself
while it runs, so a slow request does not hold up the others.

With `REQUEST_THREADS` set, at most that many requests run their chain at once; the others
wait on the event loop, holding no thread, until one ends. Their bodies are read before they
wait, so a slow client never holds a place. The platform's probes (`/healthz`, `/readyz`) never
wait: they tell whether the process answers and what it depends on, not how busy it is, and a
few requests stuck on a dead database must not get the instance restarted.

Everything else is Django's: request bodies are read and responses sent on the event loop, and
an async view, should one be added, still works (Django wraps it for the sync chain).
"""

# Pinned: Django==5.2.19, asgiref==3.13.0 (overrides ASGIHandler internals; requirements.txt).
import asyncio
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

# Idle workers kept for the next requests; more are started when more requests run at once,
# and the ones beyond this are let go when their request ends.
IDLE_WORKERS_MAX = 64

# Answered without waiting for a place among REQUEST_THREADS.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        # Only touched on the event loop's thread.
        self._idle_workers: list[ThreadPoolExecutor] = []
        # A semaphore serves one event loop: the server has one per process, tests one each.
        self._chains: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Mapping[str, Any]]],
        send: Callable[[Mapping[str, Any]], Awaitable[None]],
    ) -> None:
        worker = (
            self._idle_workers.pop()
            if self._idle_workers
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        )
        # daphne takes root_path from a client's Daphne-Root-Path header, which would let any
        # client rewrite the links of a page; Rankly is served at the root of its host.
        scope = {**scope, "root_path": ""}
        try:
            # Django's own context inside this one finds it set and uses this worker.
            async with ThreadSensitiveContext(executor=worker):
                await super().__call__(scope, receive, send)
        finally:
            if len(self._idle_workers) < IDLE_WORKERS_MAX:
                self._idle_workers.append(worker)
            else:
                worker.shutdown(wait=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        threads = settings.REQUEST_THREADS
        if not threads or request.path in PROBE_PATHS:
            return await sync_to_async(self.get_response)(request)
        loop = asyncio.get_running_loop()
        chains = self._chains.get(loop)
        if chains is None:
            self._chains = {loop: (chains := asyncio.Semaphore(threads))}
        async with chains:
            return await sync_to_async(self.get_response)(request)


def get_asgi_application() -> SyncChainASGIHandler:
    """What `django.core.asgi.get_asgi_application` does, with this handler."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
