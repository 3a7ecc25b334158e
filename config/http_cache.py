"""HTTP caching of read endpoints: ETag, Cache-Control and 304 Not Modified.

Adopt it with one line on a viewset action (under `@action`, if any):

    @http_cache()                      # same answer for everyone: public
    @http_cache(per_user=True)         # answer depends on who asks: private, Vary on credentials

A Cache-Control header the view sets itself is kept (ETag and 304 still apply).

The read endpoints' caches keep their answers rendered (`RenderedJSON`: the JSON body and its
ETag), so a cache hit is sent as it is, with no serializer, renderer or hashing on the way:

    return rendered_response(caching.home_stats_cached())
"""

import functools
import hashlib
from collections.abc import Callable
from typing import Any, NamedTuple

from django.conf import settings
from django.http import HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.utils.http import quote_etag
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

Action = Callable[..., HttpResponse]


class RenderedJSON(NamedTuple):
    """A JSON answer rendered once, as DRF renders it, with its ETag."""

    body: bytes
    etag: str


def _etag(body: bytes) -> str:
    return quote_etag(hashlib.blake2b(body, digest_size=16).hexdigest())


def json_render(data: Any) -> RenderedJSON:
    body = JSONRenderer().render(data)
    return RenderedJSON(body=body, etag=_etag(body))


def json_object(base: RenderedJSON | None = None, /, **members: Any) -> RenderedJSON:
    """A JSON object: the members of `base` (a rendered object), then `members`, rendered ones
    copied as they are and other values rendered here."""
    body = b"{}" if base is None else base.body
    if not (body.startswith(b"{") and body.endswith(b"}")):
        raise ValueError("json_object extends a JSON object only")
    renderer = JSONRenderer()
    parts = [body[1:-1]] if body != b"{}" else []
    for name, value in members.items():
        if isinstance(value, RenderedJSON):
            rendered = value.body
        else:
            # DRF renders a None answer as an empty body; as a member it is null.
            rendered = b"null" if value is None else renderer.render(value)
        parts.append(renderer.render(name) + b":" + rendered)
    body = b"{" + b",".join(parts) + b"}"
    return RenderedJSON(body=body, etag=_etag(body))


def rendered_response(rendered: RenderedJSON) -> HttpResponse:
    """A 200 answer with a body rendered earlier; `http_cache` adds its caching headers."""
    response = HttpResponse(rendered.body, content_type="application/json")
    response["ETag"] = rendered.etag
    return response


def _conditional(
    request: Any, response: HttpResponse, *, max_age: int, per_user: bool
) -> HttpResponse:
    """Tag a rendered 200 answer, and answer 304 when the client already has it."""
    if response.status_code != 200:
        return response
    # A Cache-Control the view set for this answer (e.g. no-cache) wins.
    if not response.has_header("Cache-Control"):
        visibility = {"private": True} if per_user else {"public": True}
        patch_cache_control(response, max_age=max_age, **visibility)
    if per_user:
        patch_vary_headers(response, ("Authorization", "Cookie"))
    if not response.has_header("ETag"):
        response["ETag"] = _etag(response.content)
    # With a response given, Django returns it or a 304, never None.
    return (
        get_conditional_response(
            getattr(request, "_request", request), etag=response["ETag"], response=response
        )
        or response
    )


def _finish(
    request: Request, response: HttpResponse, *, max_age: int, per_user: bool
) -> HttpResponse:
    if not isinstance(response, Response):
        # Rendered already: finish it now.
        return _conditional(request, response, max_age=max_age, per_user=per_user)
    # A DRF Response is rendered after the view returns: finish it then.
    response.add_post_render_callback(
        lambda rendered: _conditional(request, rendered, max_age=max_age, per_user=per_user)
    )
    return response


def http_cache(*, max_age: int | None = None, per_user: bool = False) -> Callable[[Action], Action]:
    """Mark a GET action's 200 answers cacheable for `max_age` seconds and revalidatable."""

    def decorate(action: Action) -> Action:
        @functools.wraps(action)
        def wrapped(view: Any, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
            response: HttpResponse = action(view, request, *args, **kwargs)
            if request.method not in ("GET", "HEAD"):
                return response
            age = settings.HTTP_CACHE_MAX_AGE if max_age is None else max_age
            return _finish(request, response, max_age=age, per_user=per_user)

        return wrapped

    return decorate
