"""The JSON API at /api/v1/: typed with django-ninja, documented at /api/v1/docs (served locally, no CDN)."""

from __future__ import annotations

from ninja import NinjaAPI

from registry.api import artifacts, catalog, errors, tracking
from registry.api.auth import TokenOrSession

api = NinjaAPI(
    title="Model registry API",
    version="1.0.0",
    description=(
        "Log runs (params, metrics, datasets, artifacts), register model versions, move aliases and resolve "
        "references such as `fraud-detector@production`.\n\n"
        "Authenticate with `Authorization: Bearer <token>` (create tokens on your profile page or with "
        "`manage.py createtoken USERNAME`). Errors are JSON: "
        '`{"error": CODE, "message": "...", "details": [...]}`. NaN and infinities travel as '
        '`"NaN"`, `"Infinity"` and `"-Infinity"`.'
    ),
    auth=TokenOrSession(),
    urls_namespace="api-1.0.0",
)
errors.install(api)
api.add_router("", tracking.router)
api.add_router("", artifacts.router)
api.add_router("", catalog.router)


def urls():
    """The API's URL patterns, exempt from the dashboard's login redirect: the API answers 401 itself."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        callback = getattr(pattern, "callback", None)
        if callback is not None:
            callback.login_required = False
    return patterns, app_name, namespace
