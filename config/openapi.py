"""The OpenAPI schema's shared parts: the error answers of every operation, in one place, and
the employee-only operations left out of what the public is shown (in production).
"""

import json
import re
from typing import Any

from django.conf import settings

ERROR_COMPONENT = "Error"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
WRITE_METHODS = {"post", "put", "patch", "delete"}
EMPLOYEE_PREFIXES = ("/api/admin/", "/api/tools/")


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
        }
    return response


def _errors_for(path: str, method: str, operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    parameters = operation.get("parameters", [])
    errors = {
        # An unknown or revoked token is refused even where signing in is optional.
        "401": _error("Not signed in, or the token or session is no longer valid."),
        "429": _error("Rate limit of the path's group reached.", retry_after=True),
        "503": _error("The database is unavailable; try again shortly.", retry_after=True),
    }
    # Any operation: a control character in its path or in a query string is refused too.
    errors["400"] = _error(
        "Invalid input (field errors are listed under `errors`), or a control character in "
        "the path or query."
    )
    # Employees-only paths refuse customers; a write on a session cookie needs its CSRF token.
    if path.startswith(EMPLOYEE_PREFIXES) or method in WRITE_METHODS:
        errors["403"] = _error("Not allowed (employees only, or a missing CSRF token).")
    # DRF's pagination answers a page past the last one with 404 too.
    if any(p["in"] == "path" or (p["in"], p["name"]) == ("query", "page") for p in parameters):
        errors["404"] = _error("No such object, or no such page.")
    return errors


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the shared error answers of every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = {
        "type": "object",
        "properties": {
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "errors": {"description": "Field errors, when the input was invalid."},
        },
        "required": ["detail", "code"],
    }
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, response in _errors_for(path, method, operation).items():
                responses.setdefault(status, response)
    return result


def hide_employee_operations(
    result: dict[str, Any], request: Any = None, **kwargs: Any
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the admin and tools API only for employees' eyes.

    The components only those operations use go too, so their shapes are not described either.
    """
    user = getattr(request, "user", None)
    if settings.API_SCHEMA_EMPLOYEE_OPERATIONS_PUBLIC or getattr(user, "is_staff", False):
        return result
    result["paths"] = {
        path: operations
        for path, operations in result.get("paths", {}).items()
        if not path.startswith(EMPLOYEE_PREFIXES)
    }
    schemas = result.get("components", {}).get("schemas", {})
    used = _referenced(result["paths"], schemas)
    result["components"]["schemas"] = {n: s for n, s in schemas.items() if n in used}
    return result


_REF = re.compile(r'"#/components/schemas/([^"]+)"')


def _referenced(paths: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    """The component names the paths use, directly or through other components."""
    pending = set(_REF.findall(json.dumps(paths, default=str)))
    used: set[str] = set()
    while pending:
        name = pending.pop()
        if name in used or name not in schemas:
            continue
        used.add(name)
        pending |= set(_REF.findall(json.dumps(schemas[name], default=str)))
    return used
