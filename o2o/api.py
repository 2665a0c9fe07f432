"""Shared API pieces: pagination and the one error format.

Every API error looks like {"error": {"code": "...", "message": "...", "fields": {...}}}.
Exceptions the handler below does not know (a bug, a database that does not answer) go on to
Django's handler500, o2o.error_views.server_error, which answers in the same shape: a 500
"server_error", or a 503 "unavailable" with Retry-After.
"""

import copy

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


def _first_message(detail) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        msg = _first_message(value)
        return msg if key in ("non_field_errors", "detail") else f"{key}: {msg}"
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    body: dict = {
        "code": getattr(exc, "default_code", "error"),
        "message": _first_message(detail),
    }
    if isinstance(exc, exceptions.ValidationError):
        body["code"] = "invalid"
        body["fields"] = detail if isinstance(detail, dict) else {"non_field_errors": detail}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            body["code"] = codes
    response.data = {"error": body}
    return response


def error_response(code: str, message: str, http_status: int = status.HTTP_400_BAD_REQUEST):
    return Response({"error": {"code": code, "message": message}}, status=http_status)


# --- OpenAPI: the one error format on every operation --------------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "description": 'Every API error: `{"error": {"code", "message", "fields"?}}`.',
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "What went wrong, for programs."},
                "message": {"type": "string", "description": "What went wrong, for people."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {},
                    "description": "400 `invalid` only: the messages by field name.",
                },
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
# Answers any operation can give, in the one format (o2o.api.exception_handler).
COMMON_ERRORS = {
    "400": "Invalid input (`invalid`: `error.fields` names what to fix).",
    "401": "Not logged in, or a bad token.",
    "403": "Logged in, but not allowed to do this.",
    "404": "No such thing (or no such page of a list), or not yours.",
    "429": "Too many requests: wait for Retry-After.",
    # o2o.error_views.server_error: the database (or another service) did not answer.
    "503": "A service did not answer: try again after Retry-After.",
}
OTHER_ERRORS = {
    **COMMON_ERRORS,
    "409": "A conflict: the thing changed meanwhile, or is not in a state that allows this.",
}
_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


def _statement_downloads(paths: dict) -> None:
    """`/api/statements/{id}.csv|.pdf` (a format-suffix route, which the generator skips)."""
    base = paths.get("/api/statements/{settlement_id}/", {}).get("get")
    if base is None:
        return
    for fmt, media_type in (("csv", "text/csv"), ("pdf", "application/pdf")):
        op = {
            **copy.deepcopy(base),
            # The suffix picks the format: no `?format=`.
            "parameters": [p for p in base.get("parameters", []) if p.get("name") != "format"],
            "operationId": f"statements_download_{fmt}",
            "description": f"The statement as a {fmt.upper()} file.",
            "responses": {
                "200": {
                    "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
                    "description": f"The statement, as {fmt.upper()}.",
                },
                **{
                    code: copy.deepcopy(r) for code, r in base["responses"].items() if code != "200"
                },
            },
        }
        paths[f"/api/statements/{{settlement_id}}.{fmt}"] = {"get": op}


def schema_postprocess(result, generator, request, public):
    """drf-spectacular postprocessing hook: the statement downloads, and the `Error` component
    on every operation's 4xx/5xx answers (400/401/403/404/429/503 everywhere, and any other
    error code an operation documents, such as 409)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    paths = result.get("paths", {})
    _statement_downloads(paths)
    for item in paths.values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in COMMON_ERRORS.items():
                responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                if int(code) >= 400 and "content" not in response:
                    response["content"] = error_content
                    if response.get("description") in (None, "", "No response body"):
                        response["description"] = OTHER_ERRORS.get(code, "An error.")
    return result
