"""The API describes itself (OpenAPI document, Swagger page served without any CDN) and answers unknown URLs and
methods in its own JSON error shape."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders

from tests.api.conftest import assert_error, strict_json

pytestmark = pytest.mark.django_db

MAIN_PATHS = [
    "/api/v1/experiments",
    "/api/v1/experiments/{ref}",
    "/api/v1/runs",
    "/api/v1/runs/{run_id}",
    "/api/v1/runs/{run_id}/log-batch",
    "/api/v1/runs/{run_id}/metrics/history",
    "/api/v1/runs/{run_id}/metrics/series",
    "/api/v1/runs/{run_id}/inputs",
    "/api/v1/runs/{run_id}/artifacts",
    "/api/v1/runs/{run_id}/artifacts/{path}",
    "/api/v1/datasets",
    "/api/v1/datasets/{dataset_id}",
    "/api/v1/models",
    "/api/v1/models/{name}",
    "/api/v1/models/{name}/versions",
    "/api/v1/models/{name}/versions/{version}",
    "/api/v1/models/{name}/versions/{version}/artifacts",
    "/api/v1/models/{name}/aliases",
    "/api/v1/models/{name}/aliases/{alias}",
    "/api/v1/resolve",
]


def test_openapi_json_lists_the_main_paths(api):
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    document = strict_json(response)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Model registry API"
    missing = [path for path in MAIN_PATHS if path not in document["paths"]]
    assert not missing, missing
    assert set(document["paths"]["/api/v1/runs/{run_id}/artifacts/{path}"]) == {"put", "get", "delete"}
    # Datasets travel with a "schema" field (the Python attribute is schema_).
    assert "schema" in document["components"]["schemas"]["DatasetOut"]["properties"]
    assert "schema" in document["components"]["schemas"]["DatasetIn"]["properties"]
    bearer = [s for s in document["components"]["securitySchemes"].values() if s.get("scheme") == "bearer"]
    assert bearer


def test_openapi_json_is_readable_without_a_token(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    json.loads(response.content)


def test_docs_page_uses_only_local_static_files(client, user):
    client.force_login(user)
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "http://" not in page and "https://" not in page
    assert "//cdn" not in page and "unpkg" not in page and "jsdelivr" not in page

    references = re.findall(r'<script[^>]+src="([^"]+)"', page) + re.findall(r'<link[^>]+href="([^"]+)"', page)
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert scripts, page
    assert re.search(r'<link[^>]+rel="stylesheet"[^>]+href="/static/', page) or re.search(
        r'<link[^>]+href="/static/[^"]+"[^>]+rel="stylesheet"', page
    )
    for reference in references:
        assert reference.startswith("/static/"), reference
        assert finders.find(reference.removeprefix("/static/")), f"{reference} is not among the static files"


def test_docs_page_is_reachable_without_signing_in(client):
    # The API's pages are exempt from the dashboard's login redirect; the page itself holds no data.
    response = client.get("/api/v1/docs")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope", "/api/v1/runs/", "/api/v1/models/a/b/c/d/e", "/api/v1/runs/abc/artifacts", "/api/v2/runs"],
)
def test_unknown_api_urls_are_json_404s(api, path):
    if path == "/api/v1/runs/abc/artifacts":
        assert_error(api.get(path), 404, contains="abc")
        return
    if path.startswith("/api/v2"):
        # Only /api/v1/ is the API's; other prefixes belong to the dashboard.
        assert api.client.get(path).status_code in (302, 404)
        return
    assert_error(api.get(path), 404, contains="No API endpoint")
    assert_error(api.post(path, {"x": 1}), 404)


def test_a_path_that_no_route_can_match_is_a_json_404(api, run_id):
    assert_error(api.get(f"/runs/{run_id}/artifacts/a%0ab"), 404)
    assert_error(api.get("/models/a%0ab"), 404)


def test_wrong_methods_are_json_405s(api, run_id):
    body = assert_error(api.post(f"/runs/{run_id}", {"name": "x"}), 405, code="method_not_allowed")
    assert "PATCH" in body["message"] and "GET" in body["message"]
    assert_error(api.delete("/runs"), 405)
    assert_error(api.put("/models", {"name": "x"}), 405)
