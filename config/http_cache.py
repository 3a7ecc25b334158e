"""HTTP caching of read endpoints: ETag, Cache-Control and 304 Not Modified.

Adopt it with one line on a viewset action (under `@action`, if any):

    @http_cache()                      # same answer for everyone: public
    @http_cache(per_user=True)         # answer depends on who asks: private, Vary on credentials

A Cache-Control header the view sets itself is kept (ETag and 304 still apply).
"""

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.utils.http import quote_etag
from rest_framework.request import Request
from rest_framework.response import Response

Action = Callable[..., Response]


def _finish(request: Request, response: Response, *, max_age: int, per_user: bool) -> Any:
    """After rendering: tag the body, and answer 304 when the client already has it."""

    def callback(rendered: HttpResponse) -> HttpResponse | None:
        if rendered.status_code != 200:
            return None
        # A Cache-Control the view set for this answer (e.g. no-cache) wins.
        if not rendered.has_header("Cache-Control"):
            visibility = {"private": True} if per_user else {"public": True}
            patch_cache_control(rendered, max_age=max_age, **visibility)
        if per_user:
            patch_vary_headers(rendered, ("Authorization", "Cookie"))
        rendered["ETag"] = quote_etag(hashlib.blake2b(rendered.content, digest_size=16).hexdigest())
        return get_conditional_response(
            getattr(request, "_request", request), etag=rendered["ETag"], response=rendered
        )

    response.add_post_render_callback(callback)
    return response


def http_cache(*, max_age: int | None = None, per_user: bool = False) -> Callable[[Action], Action]:
    """Mark a GET action's 200 answers cacheable for `max_age` seconds and revalidatable."""

    def decorate(action: Action) -> Action:
        @functools.wraps(action)
        def wrapped(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            response = action(view, request, *args, **kwargs)
            if request.method not in ("GET", "HEAD") or not isinstance(response, Response):
                return response
            age = settings.HTTP_CACHE_MAX_AGE if max_age is None else max_age
            return _finish(request, response, max_age=age, per_user=per_user)

        return wrapped

    return decorate
