"""Refuse request paths and query strings holding control characters, before any view runs.

A NUL reaches PostgreSQL as a string parameter and fails there (500); no control character has
a use in a path or a query parameter, so they all get the API's usual 400.
"""

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

# C0 controls, DEL and C1 controls, decoded from any %-escape.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _has_control_character(request: HttpRequest) -> bool:
    if CONTROL_CHARACTER.search(request.path):
        return True
    return any(
        CONTROL_CHARACTER.search(key) or any(CONTROL_CHARACTER.search(v) for v in values)
        for key, values in request.GET.lists()
    )


class ControlCharacterMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_control_character(request):
            return JsonResponse(
                {
                    "detail": "The path or a query parameter holds a control character.",
                    "code": "control_character",
                },
                status=400,
            )
        return self.get_response(request)
