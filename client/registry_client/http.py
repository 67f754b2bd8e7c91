"""HTTP to the registry's JSON API: bearer auth, JSON in and out, error answers as RegistryError, retries.

Retries (with exponential backoff) happen only where repeating cannot hurt more than giving up: when the connection
could not be made or broke, and on 502/503/504 from the server or a proxy in front of it. A 4xx is the caller's
mistake and is raised at once; a read timeout is raised too, since the server may still be doing the work.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from os import PathLike
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from registry_client import __version__
from registry_client.errors import RegistryError

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({502, 503, 504})
_STATUS_CODES = {
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
    500: "server_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}
_MAX_BACKOFF_SECONDS = 30.0


def quote_path(path: str) -> str:
    """Quote each segment of a URL path, keeping the slashes between them."""
    return "/".join(quote(part, safe="") for part in path.split("/"))


def to_json(payload: Any) -> bytes:
    """JSON bytes; numpy scalars, dates and paths are converted, NaN and infinities must already be strings."""
    return json.dumps(payload, allow_nan=False, default=_json_default, separators=(",", ":")).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PathLike):
        return str(value)
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if hasattr(value, "tolist"):  # numpy array
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_float(value: float) -> float | str:
    """A float as the API carries it: NaN and the infinities as "NaN", "Infinity", "-Infinity"."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class Http:
    """One authenticated session against a registry at `url` (e.g. https://registry.example.com)."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30, retries: int = 4):
        url = (url or "").strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"The registry URL must start with http:// or https:// (got {url!r}).")
        if url.endswith(API_PREFIX):
            url = url[: -len(API_PREFIX)]
        self.url = url
        self.api = url + API_PREFIX
        self.timeout = timeout
        self.retries = max(int(retries), 0)
        self.session = requests.Session()
        # requests reads the proxy variables (scanning the whole environment twice) and ~/.netrc again on every
        # call, about a quarter of a millisecond each time; a client that talks to one registry reads them once per
        # host instead. Also, a .netrc entry for the registry's host can no longer replace the bearer token.
        self.session.trust_env = False
        self._verify: str | bool = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._proxies: dict[str, dict[str, str]] = {}
        self.session.headers["User-Agent"] = f"registry-client/{__version__}"
        self.session.headers["Accept"] = "application/json"
        self._token = (token or "").strip()
        if any(c.isspace() or not c.isprintable() for c in self._token):
            raise ValueError("The token holds white space or control characters; copy it again from your profile.")
        if self._token:
            self.session.headers["Authorization"] = f"Bearer {self._token}"

    def absolute(self, path_or_url: str) -> str:
        """The URL of an API path (`/runs`), or `path_or_url` itself if it is already absolute."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.api + path_or_url

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxies the environment (HTTPS_PROXY, NO_PROXY, ...) sets for `url`'s host, read once per host."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._proxies:
            self._proxies[origin] = requests.utils.get_environ_proxies(origin)
        return self._proxies[origin]

    # --- JSON calls -------------------------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, payload: Any = None) -> Any:
        return self.call("POST", path, payload=payload)

    def put(self, path: str, payload: Any = None) -> Any:
        return self.call("PUT", path, payload=payload)

    def patch(self, path: str, payload: Any = None) -> Any:
        return self.call("PATCH", path, payload=payload)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def call(self, method: str, path: str, *, payload: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Send JSON, return the decoded JSON answer (None for an empty body)."""
        body = None if payload is None else to_json(payload)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = self.request(method, path, params=params, headers=headers, body=lambda: body)
        if not response.content:
            return None
        return response.json()

    def pages(self, path: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None) -> list[dict]:
        """All items of a paged list (`{"items": [...], "next_offset": n}`), or the first `limit` of them."""
        query = dict(params or {})
        query.setdefault("limit", 1000 if limit is None else min(limit, 1000))
        items: list[dict] = []
        offset = 0
        while True:
            page = self.get(path, {**query, "offset": offset})
            items.extend(page["items"])
            offset = page.get("next_offset")
            if offset is None or (limit is not None and len(items) >= limit):
                return items if limit is None else items[:limit]

    # --- Raw requests -----------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Callable[[], Any] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send a request, retrying as the module says; return a 2xx answer, raise RegistryError for any other.

        `body` is called once per attempt for a fresh body, so that a file can be reopened after a failed try.
        """
        url = self.absolute(path)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    headers=dict(headers or {}),
                    data=body() if body is not None else None,
                    stream=stream,
                    timeout=self.timeout,
                    proxies=self.proxies_for(url),
                    verify=self._verify,
                )
            except requests.ConnectionError as exc:  # includes ConnectTimeout
                if last:
                    message = f"Cannot reach the registry at {self.url}: {_short(exc)}"
                    raise RegistryError(None, "connection_failed", message) from exc
                time.sleep(backoff(attempt))
                continue
            except requests.Timeout as exc:
                message = f"{method} {url} got no answer within {self.timeout} s."
                raise RegistryError(None, "timeout", message) from exc
            except requests.RequestException as exc:
                raise RegistryError(None, "request_failed", f"{method} {url} failed: {_short(exc)}") from exc
            if response.status_code in RETRY_STATUSES and not last:
                delay = _retry_after(response)
                response.close()
                time.sleep(backoff(attempt) if delay is None else delay)
                continue
            if not response.ok:
                raise error_from_response(response)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")


def backoff(attempt: int) -> float:
    """0.5 s, 1 s, 2 s, ... (capped), with jitter so that many clients do not retry in step."""
    return min(0.5 * 2**attempt, _MAX_BACKOFF_SECONDS) * random.uniform(0.8, 1.2)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), _MAX_BACKOFF_SECONDS) if value.isdigit() else None


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def error_from_response(response: requests.Response) -> RegistryError:
    """The server's `{"error", "message", "details"}` as a RegistryError; any other body summarised."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        details = body.get("details") if isinstance(body.get("details"), list) else []
        code = str(body.get("error") or _STATUS_CODES.get(status, "error"))
        return RegistryError(status, code, body["message"], details)
    try:
        text = " ".join(response.text.split())[:200]
    except (RuntimeError, requests.RequestException):  # a streamed body that is gone
        text = ""
    reason = response.reason or "error"
    message = f"{response.request.method} {response.url} answered {status} {reason}" + (f": {text}" if text else "")
    return RegistryError(status, _STATUS_CODES.get(status, "error"), message)
