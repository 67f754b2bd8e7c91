"""MLflow's error shape, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}, with MLflow's status codes.

Every refusal of bad input is a 4xx: the MLflow client retries 5xx answers for minutes, so a 500 for a typo would
hang a training script instead of telling its author what to fix.
"""

from __future__ import annotations

import json

from django.db import DataError, IntegrityError
from django.http import HttpResponse

from registry.catalog.errors import NoSuchFolder
from registry.lib.errors import AlreadyExists, Conflict, DomainError, Forbidden, NotFound
from registry.lib.names import NameError_
from registry.lib.paths import PathError
from registry.lib.references import ReferenceError_
from registry.lib.search import SearchError

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
INTERNAL_ERROR = "INTERNAL_ERROR"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"

# As in mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS.
STATUS = {
    INVALID_PARAMETER_VALUE: 400,
    RESOURCE_ALREADY_EXISTS: 400,
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    RESOURCE_CONFLICT: 409,
    PERMISSION_DENIED: 403,
    UNAUTHENTICATED: 401,
    INTERNAL_ERROR: 500,
    NOT_IMPLEMENTED: 501,
}


class MlflowError(Exception):
    def __init__(self, code: str, message: str, *, status: int | None = None, headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS[code]
        self.headers = headers or {}


def invalid(message: str) -> MlflowError:
    return MlflowError(INVALID_PARAMETER_VALUE, message)


def not_found(message: str) -> MlflowError:
    return MlflowError(RESOURCE_DOES_NOT_EXIST, message)


def denied(message: str) -> MlflowError:
    return MlflowError(PERMISSION_DENIED, message)


def json_response(body: dict, status: int = 200) -> HttpResponse:
    # allow_nan=False: NaN and the infinities are sent as strings by the translators; a float that slips through
    # is a bug to see, not invalid JSON to send.
    return HttpResponse(
        json.dumps(body, separators=(",", ":"), allow_nan=False), status=status, content_type="application/json"
    )


def error_response(error: MlflowError) -> HttpResponse:
    response = json_response({"error_code": error.code, "message": error.message}, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _details(exc) -> str:
    details = getattr(exc, "details", None) or []
    parts = []
    for item in details[:5]:
        if isinstance(item, dict) and item.get("message"):
            label = item.get("key") or item.get("gate") or item.get("index")
            parts.append(f"{label}: {item.get('message')}" if label is not None else str(item.get("message")))
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    return (" " + "; ".join(parts) + more) if parts else ""


def translate(exc: Exception) -> MlflowError | None:
    """The MLflow error for one of the domain's refusals, or None for an exception that is a bug."""
    if isinstance(exc, MlflowError):
        return exc
    if isinstance(exc, DomainError):
        if isinstance(exc, AlreadyExists):
            code = RESOURCE_ALREADY_EXISTS
        elif isinstance(exc, NoSuchFolder):
            code = INVALID_PARAMETER_VALUE  # MLflow's answer to a source it cannot use
        elif isinstance(exc, NotFound) or exc.status == 404:
            code = RESOURCE_DOES_NOT_EXIST
        elif isinstance(exc, Forbidden):
            code = PERMISSION_DENIED
        elif isinstance(exc, Conflict):
            code = RESOURCE_CONFLICT
        else:
            code = INVALID_PARAMETER_VALUE
        return MlflowError(code, exc.message + _details(exc))
    if isinstance(exc, PathError | SearchError | NameError_ | ReferenceError_):
        return invalid(str(exc))
    if isinstance(exc, DataError):
        # A value the database cannot hold (too long, out of range) that slipped past validation.
        return invalid(f"A value is out of range for this registry: {exc}".strip())
    if isinstance(exc, IntegrityError):
        return invalid(f"The change conflicts with existing data: {exc}".strip())
    return None
