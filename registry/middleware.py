"""Middleware of the whole site.

Give every request an id for the logs and time it for the metrics (RequestIdAndTiming).

Read what a refused request's body still holds, so the connection stays usable (DrainUnreadBody).

Refuse URLs that no database can look up: a NUL character in the path or the query string.

PostgreSQL text cannot hold NUL, so such a value reaching a query is a database error (a 500) rather than a "not
found". Refused here, before any view, for the dashboard and both APIs alike.
"""

from __future__ import annotations

import time
from functools import partial

from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

from registry.api.errors import plain_error_response
from registry.api.middleware import API_PREFIXES
from registry.lib.errors import DomainError
from registry.lib.logs import current_request_id, request_id_from
from registry.lib.metrics import REQUEST_LATENCY

MESSAGE = "The URL contains a NUL character (%00), which no name, id or path can hold."


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestIdAndTiming:
    """First in the chain: every request gets an id (the caller's X-Request-ID when it is a plausible id, else a new
    one), which the log lines written while serving it carry and the response returns in X-Request-ID; its server
    time is observed in the latency histogram under its URL route (the pattern, so the label set stays small)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        match = request.resolver_match
        REQUEST_LATENCY.labels(
            match.route if match else "unmatched",
            request.method if request.method in _METHODS else "other",
            f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        response["X-Request-ID"] = request_id
        return response


# Most of an unread body read and thrown away to keep a connection open: a JSON request (a log-batch of 100,000
# points is about 6 MB) fits; a refused upload larger than this is cut off with its connection instead. A client that
# trickles its body gets DRAIN_SECONDS in all (gunicorn's own bound for its drain), then the same.
DRAIN_MAX = 16 * 1024 * 1024
DRAIN_SECONDS = 5.0


class DrainUnreadBody:
    """Outermost: once the answer is sent, read and discard what the request's body still holds.

    A request refused before its body was read (MLflow's 401 or unknown endpoint, the dashboard's 404, a view that
    stopped partway through an upload) leaves the body on the socket. gunicorn reads at most 64 KB of it after
    answering; past that it closes the connection that its answer has just announced as keep-alive, and the client's
    next request on it fails ("Remote end closed connection without response"). The request's stream (Django's
    LimitedStream, until `request.body` replaces it) knows how much is left. The reading happens when the server
    closes the response, after the last byte of the answer went out, so a slow sender never delays its own answer.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        stream = getattr(request, "_stream", None)  # Django's own reader of the body; a BytesIO once it was read
        if isinstance(stream, LimitedStream) and 0 < stream.limit - stream._pos <= DRAIN_MAX:
            # Django calls these closers from response.close(), which the WSGI server calls after sending it.
            response._resource_closers.append(partial(_drain, stream, request.META.get("gunicorn.socket")))
        return response


def _drain(stream: LimitedStream, sock) -> None:
    deadline = time.monotonic() + DRAIN_SECONDS
    previous = sock.gettimeout() if sock is not None else None
    try:
        while (left := deadline - time.monotonic()) > 0:
            if sock is not None:
                sock.settimeout(left)
            if not stream.read(64 * 1024):
                return
    except OSError:  # a timeout or a reset: gunicorn finds the body unfinished and closes the connection
        return
    finally:
        if sock is not None:
            sock.settimeout(previous)


class RefuseNulCharacters:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path_info or "%00" in request.META.get("QUERY_STRING", ""):
            if request.path_info.startswith(API_PREFIXES):
                return plain_error_response(400, MESSAGE)
            return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class DomainErrorPages:
    """The dashboard's answer to a service's refusal that a view let through: the 404 page for NotFound (what the
    user may not read looks like what does not exist), the 403 page for Forbidden, the 400 page for bad input; each
    in the site's layout with the message that says what to do. The APIs translate refusals themselves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DomainError) or request.path_info.startswith(API_PREFIXES):
            return None
        status = exception.status if exception.status in (403, 404, 409) else 400
        template = {403: "403.html", 404: "404.html"}.get(status, "400.html")
        response = render(request, template, {"message": exception.message, "exception": exception}, status=status)
        return response
