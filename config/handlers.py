"""Rankly's ASGI handler for HTTP: Django's own, with each request's middleware and view run in
one call on a worker thread.

Rankly's middleware and views are synchronous. Django's ASGI handler builds the middleware
chain in async mode, so a request crosses between the event loop and its worker thread at each
sync-only step: six crossings for an API read, each a thread handoff and a context copy. Here
the chain is built in sync mode and run as one synchronous call, as a WSGI server would run it,
which leaves three crossings: the request_started signal, the chain, and closing the response.
Everything else is Django's: each request still has a worker thread of its own (Django's
ThreadSensitiveContext), request bodies are read and responses sent on the event loop, and an
async view, should one be added, still works (Django wraps it for the sync chain).
"""

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response)(request)


def get_asgi_application() -> SyncChainASGIHandler:
    """What `django.core.asgi.get_asgi_application` does, with this handler."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
