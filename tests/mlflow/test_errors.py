"""Errors in MLflow's shape and with MLflow's status codes; bad input is never a 5xx (the client retries those)."""

from __future__ import annotations

import json

import pytest
from mlflow.exceptions import MlflowException

from registry.mlflow_compat.views import ROUTES
from registry.tracking.models import Experiment, MetricPoint, Param
from tests.mlflow.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)


def expect(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == code, body
    return body


def test_unknown_experiment_name_is_a_json_404(rest, client):
    response = rest.api("GET", "experiments/get-by-name", params={"experiment_name": "nowhere"})
    body = expect(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert "nowhere" in body["message"]
    assert client.get_experiment_by_name("nowhere") is None


def test_unknown_rows_are_404_resource_does_not_exist(client):
    for call in (
        lambda: client.get_run("0" * 32),
        lambda: client.get_experiment("123456"),
        lambda: client.get_registered_model("nope"),
        lambda: client.get_model_version("nope", "1"),
        lambda: client.get_logged_model("m-" + "0" * 32),
    ):
        with pytest.raises(MlflowException) as missing:
            call()
        assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"
        assert missing.value.get_http_status_code() == 404


def test_already_exists_is_400(client, rest):
    client.create_experiment("twice")
    with pytest.raises(MlflowException) as again:
        client.create_experiment("twice")
    assert error_code(again) == "RESOURCE_ALREADY_EXISTS"
    expect(rest.api("POST", "experiments/create", json={"name": "twice"}), 400, "RESOURCE_ALREADY_EXISTS")


def test_unknown_endpoints_and_methods(rest):
    expect(rest.api("GET", "runs/nope"), 404, "ENDPOINT_NOT_FOUND")
    response = expect(rest.api("GET", "runs/create"), 405, "ENDPOINT_NOT_FOUND")
    assert response["message"].endswith("use POST.")
    expect(rest("GET", "/api/3.0/mlflow/nope"), 404, "ENDPOINT_NOT_FOUND")
    expect(rest("POST", "/api/2.0/mlflow-artifacts/mpu/nope/x", json={}), 404, "ENDPOINT_NOT_FOUND")
    # mpu/create exists (tests/mlflow/test_direct_transfers.py); a path outside any run is not found
    expect(rest("POST", "/api/2.0/mlflow-artifacts/mpu/create/x", json={}), 404, "RESOURCE_DOES_NOT_EXIST")
    info = rest("GET", "/api/3.0/mlflow/server-info", token=None)
    assert info.status_code == 200 and info.json()["multipart_uploads_enabled"] is False


@pytest.fixture
def run_id(client) -> str:
    return client.create_run(client.create_experiment("limits")).info.run_id


def metric(i: int) -> dict:
    return {"key": "m", "value": i / 10, "timestamp": 1_700_000_000_000 + i, "step": i}


def test_batch_limits_are_invalid_parameter_value(rest, run_id):
    ok = rest.api("POST", "runs/log-batch", json={"run_id": run_id, "metrics": [metric(i) for i in range(1000)]})
    assert ok.status_code == 200 and ok.json() == {}
    for field, items, limit in (
        ("metrics", [metric(i) for i in range(1001)], "1000 metrics"),
        ("params", [{"key": f"p{i}", "value": "1"} for i in range(101)], "100 params"),
        ("tags", [{"key": f"t{i}", "value": "1"} for i in range(101)], "100 tags"),
    ):
        body = expect(
            rest.api("POST", "runs/log-batch", json={"run_id": run_id, field: items}), 400, "INVALID_PARAMETER_VALUE"
        )
        assert limit in body["message"]
    assert MetricPoint.objects.count() == 1000 and not Param.objects.exists()


def test_request_over_one_megabyte_is_invalid_parameter_value(rest, run_id):
    big = {"run_id": run_id, "params": [{"key": "blob", "value": "x" * (1024 * 1024)}]}
    body = expect(rest.api("POST", "runs/log-batch", json=big), 400, "INVALID_PARAMETER_VALUE")
    assert "1 MB" in body["message"]
    assert not Param.objects.exists()


def test_a_batch_is_all_or_nothing(rest, run_id):
    bad = {"run_id": run_id, "params": [{"key": "p", "value": "1"}], "metrics": [metric(0), {"key": "m", "value": "x"}]}
    expect(rest.api("POST", "runs/log-batch", json=bad), 400, "INVALID_PARAMETER_VALUE")
    assert not Param.objects.exists() and not MetricPoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"a string"', "application/json"),
        (b'{"run_id": NaN}', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b'{"run_id": "' + b"a" * 10 + b'", "key": "k\\u0000", "value": "1"}', "application/json"),
        (b'{"run_id": "x", "key": "\\ud800", "value": "1"}', "application/json"),
    ],
)
def test_unreadable_bodies_are_400(rest, run_id, body, content_type):
    response = rest.api("POST", "runs/log-parameter", data=body, headers={"Content-Type": content_type})
    expect(response, 400, "INVALID_PARAMETER_VALUE")


def test_non_json_bodies_are_refused_before_any_view(rest, trainer_token):
    """The API-wide JsonOnlyMiddleware answers these (in our API's error shape), before MLflow's views run."""
    response = rest.session.post(
        f"{rest.base_url}/api/2.0/mlflow/experiments/create",
        data={"name": "form"},
        headers={"Authorization": f"Bearer {trainer_token}"},
    )
    assert response.status_code == 415
    assert not Experiment.objects.filter(name="form").exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"key": "m", "value": "not a number"},
        {"key": "m", "value": True},
        {"key": "m", "value": 10**400},
        {"key": "m", "value": 1.0, "step": 2**64},
        {"key": "m", "value": 1.0, "step": "²"},
        {"key": "m", "value": 1.0, "timestamp": "9" * 5000},
        {"key": "m", "value": 1.0, "step": 1.5},
        {"key": "", "value": 1.0},
        {"key": "k" * 251, "value": 1.0},
        {"key": ["list"], "value": 1.0},
        {"key": "m\x01", "value": 1.0},
    ],
)
def test_bad_metric_values_are_400(rest, run_id, payload):
    response = rest.api("POST", "runs/log-metric", json={"run_id": run_id, **payload})
    expect(response, 400, "INVALID_PARAMETER_VALUE")
    assert not MetricPoint.objects.exists()


@pytest.mark.parametrize(
    ("endpoint", "method", "payload"),
    [
        ("runs/create", "POST", {"experiment_id": "9" * 40}),
        ("runs/create", "POST", {"experiment_id": "abc"}),
        ("runs/create", "POST", {"run_name": "n" * 300}),
        ("runs/create", "POST", {"start_time": -(10**30)}),
        ("runs/create", "POST", {"start_time": 10**18}),
        ("runs/create", "POST", {"tags": [{"key": "k", "value": {"nested": 1}}]}),
        ("runs/create", "POST", {"tags": "not a list"}),
        ("runs/update", "POST", {"run_id": "r", "status": "DONE"}),
        ("experiments/create", "POST", {"name": "e" * 300}),
        ("experiments/create", "POST", {"name": ""}),
        ("experiments/create", "POST", {"name": "x", "artifact_location": "s3://elsewhere"}),
        ("experiments/search", "POST", {"max_results": 0}),
        ("experiments/search", "POST", {"max_results": 10**9}),
        ("experiments/search", "POST", {"page_token": "garbage"}),
        ("experiments/search", "POST", {"view_type": "SOMETIMES"}),
        ("experiments/search", "POST", {"filter": "name = "}),
        ("experiments/search", "POST", {"order_by": ["nope DESC"]}),
        ("runs/search", "POST", {"experiment_ids": ["x"]}),
        ("runs/search", "POST", {"order_by": ["attributes.artifact_uri"]}),
        ("metrics/get-history", "GET", {"run_id": "0" * 32}),
        ("registered-models/create", "POST", {"name": "a/b"}),
        ("registered-models/create", "POST", {"name": " padded "}),
        ("registered-models/search", "GET", {"filter": "metrics.x > 1"}),
        ("model-versions/get", "GET", {"name": "m", "version": "one"}),
        ("model-versions/get", "GET", {"name": "m", "version": "9" * 30}),
        ("model-versions/search", "GET", {"filter": "name = 'a' OR name = 'b'"}),
        ("model-versions/create", "POST", {"name": "m", "source": "file:///etc/passwd"}),
        ("logged-models", "POST", {"experiment_id": "1", "source_run_id": "z" * 32}),
        ("logged-models/search", "POST", {"filter": "metrics.acc > 1"}),
    ],
)
def test_bad_parameters_are_4xx(rest, endpoint, method, payload):
    kwargs = {"params": payload} if method == "GET" else {"json": payload}
    response = rest.api(method, endpoint, **kwargs)
    assert 400 <= response.status_code < 500


def test_no_route_answers_garbage_with_a_5xx(rest, run_id):
    """Every route, fed nothing, nonsense and wrong types: the answer is 2xx or 4xx, never 5xx."""
    payloads = [
        {},
        {"name": 1, "run_id": 2, "experiment_id": [], "key": {}, "value": None, "version": -1},
        {"name": "x" * 5000, "run_id": run_id, "experiment_id": "0", "key": "k", "value": "v", "version": "1"},
        {"filter": "((", "order_by": "x", "max_results": "many", "page_token": "%%%", "stages": "x"},
        {"experiment_ids": [{"a": 1}], "tags": [1, 2], "metrics": [None], "params": [[]], "datasets": [{}]},
    ]
    for route in ROUTES:
        endpoint = (
            route.pattern.pattern.strip("^$")
            .replace("(?P<model_id>m-[0-9a-f]{32})", "m-" + "0" * 32)
            .replace("(?P<tag_key>.+)", "key")
        )
        for payload in payloads:
            if route.method in ("GET",):
                params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
                rest.api(route.method, endpoint, params=params)
            else:
                rest.api(route.method, endpoint, json=payload)
