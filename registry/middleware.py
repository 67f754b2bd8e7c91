"""Refuse URLs that no database can look up: a NUL character in the path or the query string.

PostgreSQL text cannot hold NUL, so such a value reaching a query is a database error (a 500) rather than a "not
found". Refused here, before any view, for the dashboard and both APIs alike.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from registry.api.errors import plain_error_response
from registry.api.middleware import API_PREFIXES

MESSAGE = "The URL contains a NUL character (%00), which no name, id or path can hold."


class RefuseNulCharacters:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path_info or "%00" in request.META.get("QUERY_STRING", ""):
            if request.path_info.startswith(API_PREFIXES):
                return plain_error_response(400, MESSAGE)
            return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
