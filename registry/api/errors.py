"""One error shape for the whole API: {"error": CODE, "message": "...", "details": [...]} with a real status."""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from registry.governance.errors import ApprovalRequired
from registry.lib.errors import DomainError
from registry.lib.paths import PathError
from registry.lib.search import SearchError

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid",
    429: "too_many_attempts",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: list | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def get_or_404(queryset, message: str, **lookup):
    """The one row matching `lookup`, or a 404 whose message says what was not found (a model, a queryset)."""
    if isinstance(queryset, type):
        queryset = queryset._default_manager.all()
    try:
        return queryset.get(**lookup)
    except queryset.model.DoesNotExist:
        raise ApiError(404, message) from None


def error_body(status: int, message: str, *, code: str | None = None, details: list | None = None) -> dict:
    return {"error": code or _CODES.get(status, "error"), "message": message, "details": details or []}


def error_response(api: NinjaAPI, request: HttpRequest, status: int, message: str, *, code=None, details=None):
    return api.create_response(request, error_body(status, message, code=code, details=details), status=status)


def plain_error_response(status: int, message: str, **headers: str) -> HttpResponse:
    """The same shape for answers given outside ninja's handlers (unknown URLs, wrong methods, middleware)."""
    response = HttpResponse(json.dumps(error_body(status, message)), status=status, content_type="application/json")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _api_error(api: NinjaAPI, request: HttpRequest, exc: ApiError) -> HttpResponse:
    response = error_response(api, request, exc.status, exc.message, code=exc.code, details=exc.details)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def _validation_details(errors: list[dict]) -> list[dict]:
    details = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload", "query", "path")]
        details.append({"field": ".".join(loc), "message": error.get("msg", "invalid")})
    return details


def _message(exc: HttpError) -> str:
    # ninja reports an unreadable body as "Cannot parse request body" and keeps the reason as the cause.
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body") and exc.__cause__ is not None:
        return f"The request body could not be read as a JSON object: {exc.__cause__}."
    return str(exc)


def _domain_error(api: NinjaAPI, request: HttpRequest, exc: DomainError) -> HttpResponse:
    """A service's refusal, answered with its own status and code (registry.lib.errors)."""
    details = list(exc.details)
    if isinstance(exc, ApprovalRequired):
        details = [{**d, "url": request.build_absolute_uri(f"/approvals/?request={exc.request.pk}")} for d in details]
    return error_response(api, request, exc.status, exc.message, code=exc.code, details=details)


def install(api: NinjaAPI) -> None:
    def handle(exc_class, status, message=None, code=None):
        def handler(request, exc):
            details = getattr(exc, "details", None)
            return error_response(api, request, status, message or str(exc), code=code, details=details)

        api.add_exception_handler(exc_class, handler)

    api.add_exception_handler(ApiError, lambda request, exc: _api_error(api, request, exc))
    api.add_exception_handler(
        ValidationError,
        lambda request, exc: error_response(
            api,
            request,
            422,
            "The request does not match the schema; see details.",
            details=_validation_details(exc.errors),
        ),
    )
    api.add_exception_handler(
        HttpError, lambda request, exc: error_response(api, request, exc.status_code, _message(exc))
    )
    handle(
        AuthenticationError,
        401,
        "Authentication required: send 'Authorization: Bearer <token>' (create a token on your profile page).",
    )
    handle(PermissionDenied, 403, "You do not have permission to do that.")
    handle(Http404, 404)
    handle(RequestDataTooBig, 413, "The request body is too large.")
    api.add_exception_handler(DomainError, lambda request, exc: _domain_error(api, request, exc))
    handle(PathError, 400, code="invalid_path")
    handle(SearchError, 400, code="invalid_search")
    # A value the database cannot store (PostgreSQL refuses NUL in text): the caller's input, not a server fault.
    handle(DataError, 400, "A value in the request cannot be stored (text must not contain NUL characters).")
    api.add_exception_handler(
        DjangoValidationError,
        lambda request, exc: error_response(api, request, 400, "; ".join(exc.messages)),
    )
