"""What every API view shares: the error shape, pagination and the JSON fallbacks."""

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponseBase, JsonResponse
from rest_framework import exceptions, pagination, parsers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "A service Rankly depends on is unavailable; try again shortly."
    default_code = "service_unavailable"


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is larger than Rankly accepts."
    default_code = "request_too_large"


def _first_error(detail: Any, codes: Any) -> tuple[str, str]:
    """The first message and code of a nested DRF error, prefixed with its field name."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        message, code = _first_error(value, codes[field])
        return (message if field == "non_field_errors" else f"{field}: {message}"), code
    if isinstance(detail, list):
        return _first_error(detail[0], codes[0])
    return str(detail), str(codes)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error as {"detail": "...", "code": "..."}; field errors also under "errors"."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, (OperationalError, InterfaceError)):
        exc = ServiceUnavailable()
    elif isinstance(exc, DatabaseError):
        return None
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc.detail, (dict, list)):
        message, code = _first_error(exc.detail, exc.get_codes())
        response.data = {"detail": message, "code": code, "errors": exc.detail}
    else:
        response.data = {"detail": str(exc.detail), "code": exc.get_codes()}
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = "5"
    return response


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering a document nested too deeply to decode with 400, not 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request: Request) -> int:
        """The asked size within the bounds, else the default: never None, pages always apply."""
        return super().get_page_size(request) or self.page_size


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal server error.", "code": "server_error"}, status=500)


def json_bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)


ERROR_CODES = {
    400: "bad_request",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    500: "server_error",
}
# Headers of Django's own error answers that a client needs to act on.
KEPT_HEADERS = ("Allow", "Retry-After")


def json_error(status: int, detail: str | None = None, code: str | None = None) -> JsonResponse:
    return JsonResponse(
        {
            "detail": detail or f"{HTTPStatus(status).phrase}.",
            "code": code or ERROR_CODES.get(status, "error"),
        },
        status=status,
    )


def _body_too_large(request: HttpRequest) -> bool:
    """A declared body over the limit; multipart file parts are exempt, as Django exempts them."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None or request.content_type == "multipart/form-data":
        return False
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > limit
    except ValueError:
        return False


class ApiErrorsAsJsonMiddleware:
    """Under /api/, the errors Django answers by itself (unknown routes, oversized bodies, debug
    pages) come out in the API's JSON shape, DEBUG or not; other paths keep Django's pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        # Refused before any middleware reads the body, so it never reaches a debug page.
        if _body_too_large(request):
            return json_error(413, RequestTooLarge.default_detail)
        response = self.get_response(request)
        if (
            response.status_code < 400
            or response.streaming
            or "json" in response.get("Content-Type", "")
        ):
            return response
        answer = json_error(response.status_code)
        for header in KEPT_HEADERS:
            if header in response:
                answer[header] = response[header]
        return answer
