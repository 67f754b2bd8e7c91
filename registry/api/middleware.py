"""JSON endpoints accept JSON only: a form post or text body from a browser page elsewhere is refused (415)."""

from __future__ import annotations

import json

from django.http import HttpResponse

API_PREFIXES = ("/api/",)
# Raw artifact bodies are streamed with PUT to .../artifacts/<path>; everything else that writes sends JSON.
RAW_BODY_MARKERS = ("/artifacts/",)


class JsonOnlyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if (
            path.startswith(API_PREFIXES)
            and request.method in ("POST", "PUT", "PATCH")
            and not (request.method == "PUT" and any(marker in path for marker in RAW_BODY_MARKERS))
            and request.content_type != "application/json"
            and (request.headers.get("Content-Length", "0") not in ("", "0") or "Transfer-Encoding" in request.headers)
        ):
            body = {
                "error": "unsupported_media_type",
                "message": f"Send JSON with 'Content-Type: application/json' (got {request.content_type or 'none'!r}).",
                "details": [],
            }
            return HttpResponse(json.dumps(body), status=415, content_type="application/json")
        return self.get_response(request)
