"""The JSON API at /api/v1/: typed with django-ninja, documented at /api/v1/docs (served locally, no CDN)."""

from __future__ import annotations

import functools

import pydantic_core
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.parser import Parser

from registry.api import access, artifacts, cards, catalog, errors, governance, tracking
from registry.api.auth import TokenOrSession
from registry.api.errors import plain_error_response

_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


class JsonObjectParser(Parser):
    """Every body this API reads is a JSON object; `null`, `[...]` or `"..."` would otherwise validate as an empty
    payload (every field has a default) and be answered 200 having done nothing. ninja turns the error into a 400."""

    def parse_body(self, request: HttpRequest) -> dict:
        # pydantic's parser: the same JSON as the standard library's (NaN and Infinity included), twice as fast on
        # the large batches that training jobs send.
        data = pydantic_core.from_json(request.body)
        if not isinstance(data, dict):
            raise ValueError(f"got {_JSON_KINDS.get(type(data), 'null')}")
        return data


api = NinjaAPI(
    title="Model registry API",
    version="1.0.0",
    description=(
        "Log runs (params, metrics, datasets, artifacts), register model versions, move aliases and resolve "
        "references such as `fraud-detector@production`.\n\n"
        "Authenticate with `Authorization: Bearer <token>` (create tokens on your profile page or with "
        "`manage.py createtoken USERNAME`). Errors are JSON: "
        '`{"error": CODE, "message": "...", "details": [...]}`. NaN and infinities travel as '
        '`"NaN"`, `"Infinity"` and `"-Infinity"`. No text may contain NUL (U+0000): a request holding one, in '
        "the URL or anywhere in a JSON body, is refused with 400 (PostgreSQL cannot store it)."
    ),
    auth=TokenOrSession(),
    urls_namespace="api-1.0.0",
    parser=JsonObjectParser(),
)
errors.install(api)
api.add_router("", tracking.router)
api.add_router("", artifacts.router)
api.add_router("", catalog.router)
api.add_router("", cards.router)
api.add_router("", governance.router)
api.add_router("", access.router)


def _json_method_not_allowed(view):
    """ninja answers a known path with an unsupported method by a plain-text 405; give it the API's error shape."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response.get("Allow", "")
            message = f"{request.method} is not allowed here; use {allowed}." if allowed else "Method not allowed."
            return plain_error_response(405, message, Allow=allowed)
        return response

    return wrapper


@csrf_exempt
def not_found(request: HttpRequest) -> HttpResponse:
    return plain_error_response(404, f"No API endpoint at {request.path!r}; see /api/v1/docs for the endpoints.")


not_found.login_required = False


def urls():
    """The API's URL patterns, exempt from the dashboard's login redirect: the API answers 401 itself.

    Any other URL under the prefix (including ones no route can match, such as a path holding a newline) is a JSON
    404 rather than the dashboard's HTML page.
    """
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        callback = getattr(pattern, "callback", None)
        if callback is not None:
            callback.login_required = False
            pattern.callback = _json_method_not_allowed(callback)
    return [*patterns, re_path(r"^", not_found)], app_name, namespace
