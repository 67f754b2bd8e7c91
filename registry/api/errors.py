"""One error shape for the whole API: {"error": CODE, "message": "...", "details": [...]} with a real status."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from registry.catalog.services import AlreadyExists, ArtifactTooLarge, CatalogError
from registry.lib.paths import PathError
from registry.lib.search import SearchError
from registry.tracking.services import ParamConflict, TrackingError

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, details: list | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details or []


def error_response(api: NinjaAPI, request: HttpRequest, status: int, message: str, *, code=None, details=None):
    body = {"error": code or _CODES.get(status, "error"), "message": message, "details": details or []}
    return api.create_response(request, body, status=status)


def _validation_details(errors: list[dict]) -> list[dict]:
    details = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload", "query", "path")]
        details.append({"field": ".".join(loc), "message": error.get("msg", "invalid")})
    return details


def install(api: NinjaAPI) -> None:
    def handle(exc_class, status, message=None, code=None):
        def handler(request, exc):
            details = getattr(exc, "details", None)
            return error_response(api, request, status, message or str(exc), code=code, details=details)

        api.add_exception_handler(exc_class, handler)

    api.add_exception_handler(
        ApiError,
        lambda request, exc: error_response(api, request, exc.status, exc.message, code=exc.code, details=exc.details),
    )
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
    api.add_exception_handler(HttpError, lambda request, exc: error_response(api, request, exc.status_code, str(exc)))
    handle(
        AuthenticationError,
        401,
        "Authentication required: send 'Authorization: Bearer <token>' (create a token on your profile page).",
    )
    handle(PermissionDenied, 403, "You do not have permission to do that.")
    handle(Http404, 404)
    handle(RequestDataTooBig, 413, "The request body is too large.")
    handle(ParamConflict, 409, code="param_conflict")
    handle(AlreadyExists, 409, code="already_exists")
    handle(ArtifactTooLarge, 413)
    handle(TrackingError, 422)
    handle(CatalogError, 400)
    handle(PathError, 400, code="invalid_path")
    handle(SearchError, 400, code="invalid_search")
    api.add_exception_handler(
        DjangoValidationError,
        lambda request, exc: error_response(api, request, 400, "; ".join(exc.messages)),
    )
