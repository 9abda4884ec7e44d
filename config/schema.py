"""OpenAPI post-processing: the error answers every operation can give, documented.

Every error shares one body (``config.errors``): ``{"error": {"code", "message", "fields"}}``.
Each operation lists the 4xx it can answer: 400 for bad input (any operation with a body or
query parameters), 401 without valid credentials, 403 without the role (or without a second
factor), 404 for an object that is not there or not the caller's, 405 for a method the route
does not have, 409 for a conflict with the current state, 413 for a body over the size limit and
429 over the request budget.
"""

from __future__ import annotations

from typing import Any

ERROR_BODY = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "description": "A stable, machine-readable code."},
                "message": {"type": "string", "description": "For people, in their language."},
                "fields": {
                    "type": "object",
                    "description": "The fields at fault, each with its messages.",
                    "additionalProperties": True,
                },
            },
        }
    },
}

ERRORS = {
    "400": "Bad input: the fields at fault are named.",
    "401": "No valid credentials.",
    "403": "The caller's roles do not allow this (or the second factor is missing).",
    "404": "Not found, or not the caller's.",
    "405": "The route does not have this method.",
    "409": "Conflicts with the current state.",
    "413": "The body is over the size limit.",
    "429": "Over the request budget: retry after the time in Retry-After.",
}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    """drf-spectacular's postprocessing hook: the error body as a component, and the 4xx
    answers on every operation that has not documented them itself."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_BODY
    reference = {"$ref": "#/components/schemas/Error"}
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
