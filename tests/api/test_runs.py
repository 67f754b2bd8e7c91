"""Experiments, runs, search, batched logging, metric history and series through the JSON API."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from registry.tracking.models import Experiment, MetricPoint, MetricSeries, Param, Run
from tests.api.conftest import assert_error, strict_json
from tests.builders import grant
from tests.factories import DatasetFactory, RunInputFactory

pytestmark = pytest.mark.django_db


def nothing_logged(run_id: str) -> bool:
    run = Run.objects.get(pk=run_id)
    return (
        not MetricSeries.objects.filter(run=run).exists()
        and not MetricPoint.objects.filter(series__run=run).exists()
        and not Param.objects.filter(run=run).exists()
        and run.tags == {}
    )


# --- Experiments ----------------------------------------------------------------------------------------------------


def test_experiment_create_get_list_update(api):
    created = api.post("/experiments", {"name": "fraud", "description": "Card fraud", "tags": {"team": "risk"}})
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["description"], body["tags"]) == ("fraud", "Card fraud", {"team": "risk"})

    assert api.get(f"/experiments/{body['id']}").json()["name"] == "fraud"
    assert api.get("/experiments/fraud").json()["id"] == body["id"]

    names = [e["name"] for e in api.get("/experiments").json()["items"]]
    assert names == sorted(names) and {"fraud", "Default"} <= set(names)
    assert [e["name"] for e in api.get("/experiments", query={"q": "card"}).json()["items"]] == ["fraud"]

    updated = api.patch("/experiments/fraud", {"description": "Card fraud, v2", "tags": {"team": "ml"}})
    assert updated.status_code == 200
    assert Experiment.objects.get(name="fraud").description == "Card fraud, v2"
    renamed = api.patch(f"/experiments/{body['id']}", {"name": "fraud-2024"}).json()
    assert renamed["name"] == "fraud-2024"


def test_experiment_paging(api):
    for i in range(3):
        api.post("/experiments", {"name": f"page-{i}"})
    first = api.get("/experiments", query={"q": "page-", "limit": 2}).json()
    assert [e["name"] for e in first["items"]] == ["page-0", "page-1"]
    assert first["next_offset"] == 2
    last = api.get("/experiments", query={"q": "page-", "limit": 2, "offset": 2}).json()
    assert [e["name"] for e in last["items"]] == ["page-2"] and last["next_offset"] is None
    assert_error(api.get("/experiments", query={"limit": 0}), 422)
    assert_error(api.get("/experiments", query={"offset": -1}), 422)


def test_experiment_duplicate_name_is_409(api):
    api.post("/experiments", {"name": "fraud"})
    assert_error(api.post("/experiments", {"name": "fraud"}), 409, code="already_exists", contains="fraud")
    api.post("/experiments", {"name": "churn"})
    assert_error(api.patch("/experiments/churn", {"name": "fraud"}), 409, contains="fraud")
    assert Experiment.objects.filter(name="churn").exists()


def test_experiment_named_like_a_number(api):
    created = api.post("/experiments", {"name": "2024"}).json()
    assert api.get("/experiments/2024").json()["id"] == created["id"]
    assert api.get(f"/experiments/{created['id']}").json()["name"] == "2024"
    run = api.post("/runs", {"experiment": "2024"}).json()
    assert [r["id"] for r in api.get("/runs", query={"experiment": "2024"}).json()["items"]] == [run["id"]]


def test_experiment_errors(api):
    assert_error(api.get("/experiments/nope"), 404)
    assert_error(api.get("/experiments/999999"), 404)
    assert_error(api.patch("/experiments/nope", {"description": "x"}), 404)
    assert_error(api.post("/experiments", {"name": ""}), 422)
    assert_error(api.post("/experiments", {"name": "x" * 257}), 422)
    assert_error(api.post("/experiments", {}), 422)


# --- Runs -----------------------------------------------------------------------------------------------------------


RUN_IN = {
    "experiment": "fraud",
    "name": "xgb-baseline",
    "code": {
        "git_remote": "git@example.com:acme/fraud.git",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "git_branch": "main",
        "git_dirty": False,
        "entry_point": "train.py",
    },
    "environment": {"python_version": "3.11.7", "platform": "Linux-x86_64", "packages": {"xgboost": "2.1.0"}},
    "image": "ghcr.io/acme/train@sha256:0123abcd",
    "tags": {"team": "risk"},
    "steps": [{"name": "fetch", "status": "succeeded"}, {"name": "train", "status": "running"}],
}


def test_run_create_with_code_environment_and_image(api, user):
    response = api.post("/runs", RUN_IN)
    assert response.status_code == 201
    run = response.json()
    assert len(run["id"]) == 32
    assert run["experiment"] == "fraud" and Experiment.objects.filter(name="fraud").exists()
    assert run["code"] == RUN_IN["code"]
    assert run["environment"] == RUN_IN["environment"]
    assert run["image"] == RUN_IN["image"]
    assert run["tags"] == {"team": "risk"}
    assert run["status"] == "running" and run["end_time"] is None
    assert run["user"] == user.username
    assert [(s["position"], s["name"], s["status"]) for s in run["steps"]] == [
        (1, "fetch", "succeeded"),
        (2, "train", "running"),
    ]
    fetched = api.get(f"/runs/{run['id']}").json()
    assert fetched == run
    # Run ids are case-insensitive hex.
    assert api.get(f"/runs/{run['id'].upper()}").json()["id"] == run["id"]


def test_run_in_the_default_experiment_or_by_id(api):
    assert api.post("/runs", {}).json()["experiment"] == "Default"
    experiment = api.post("/experiments", {"name": "by-id"}).json()
    assert api.post("/runs", {"experiment_id": experiment["id"]}).json()["experiment"] == "by-id"
    assert_error(api.post("/runs", {"experiment_id": 999999}), 404)


def test_run_with_an_over_long_experiment_name_is_422(api):
    assert_error(api.post("/runs", {"experiment": "x" * 257}), 422)
    assert not Run.objects.exists() and not Experiment.objects.filter(name__startswith="xxx").exists()


def test_run_get_unknown_is_404(api):
    assert_error(api.get("/runs/" + "0" * 32), 404)
    assert_error(api.get("/runs/not-a-run"), 404)


def test_run_patch_status_and_end_time(api, run_id):
    # Whole seconds: times travel with millisecond precision.
    end = Run.objects.get(pk=run_id).start_time.replace(microsecond=0) + timedelta(minutes=5)
    run = api.patch(f"/runs/{run_id}", {"status": "finished", "end_time": end.isoformat()}).json()
    assert run["status"] == "finished"
    assert datetime.fromisoformat(run["end_time"]) == end
    assert Run.objects.get(pk=run_id).end_time == end
    renamed = api.patch(f"/runs/{run_id}", {"name": "renamed", "tags": {"stage": "done"}}).json()
    assert (renamed["name"], renamed["tags"]) == ("renamed", {"stage": "done"})


def test_run_patch_status_alone_sets_end_time(api, run_id):
    run = api.patch(f"/runs/{run_id}", {"status": "failed"}).json()
    assert run["status"] == "failed" and run["end_time"] is not None


def test_run_end_before_start_is_a_clear_4xx_and_changes_nothing(api, run_id):
    start = Run.objects.get(pk=run_id).start_time
    before = (start - timedelta(hours=1)).isoformat()
    # 409: the body is well-formed; the run's own start time refuses it.
    body = assert_error(api.patch(f"/runs/{run_id}", {"status": "finished", "end_time": before}), 409)
    assert "before it started" in body["message"]
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.end_time) == ("running", None)


def test_run_end_time_without_a_time_zone_is_read_as_utc(api):
    run = api.post("/runs", {"start_time": "2024-01-01T10:00:00"}).json()
    assert datetime.fromisoformat(run["start_time"]) == datetime(2024, 1, 1, 10, tzinfo=UTC)
    patched = api.patch(f"/runs/{run['id']}", {"status": "finished", "end_time": "2024-01-01T11:00:00"})
    assert datetime.fromisoformat(patched.json()["end_time"]) == datetime(2024, 1, 1, 11, tzinfo=UTC)
    early = api.patch(f"/runs/{run['id']}", {"status": "finished", "end_time": "2024-01-01T09:00:00"})
    assert_error(early, 409, contains="before it started")


def test_run_end_time_on_a_running_run_is_refused_not_ignored(api, run_id):
    end = (Run.objects.get(pk=run_id).start_time + timedelta(minutes=1)).isoformat()
    assert_error(api.patch(f"/runs/{run_id}", {"end_time": end}), 409, contains="end_time")  # the run is running
    assert Run.objects.get(pk=run_id).end_time is None


def test_run_patch_refuses_unknown_status(api, run_id):
    assert_error(api.patch(f"/runs/{run_id}", {"status": "exploded"}), 422)
    assert Run.objects.get(pk=run_id).status == "running"


def test_run_patch_by_another_user_is_403_a_manager_may(client, api, run_id, other_token, staff_user, staff_token):
    from tests.api.conftest import Api

    assert_error(Api(client, other_token).patch(f"/runs/{run_id}", {"name": "hijacked"}), 403)
    assert_error(Api(client, staff_token).patch(f"/runs/{run_id}", {"name": "by-ops"}), 403)  # staff is not enough
    assert Run.objects.get(pk=run_id).name == "baseline"
    grant(Run.objects.get(pk=run_id).experiment, staff_user, "MANAGE")
    assert Api(client, staff_token).patch(f"/runs/{run_id}", {"name": "by-ops"}).status_code == 200


# --- Search ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def searchable(api):
    """Three runs in one experiment, each with a different mix of metrics, params, tags and datasets."""
    train = DatasetFactory(name="cards-train", digest="aaa111")
    holdout = DatasetFactory(name="cards-holdout", digest="bbb222")
    specs = {
        "alpha": ({"f1": 0.95, "loss": 0.1}, {"optimizer": "adam", "depth": "6"}, {"team": "vision"}, "finished"),
        "beta": ({"f1": 0.85, "loss": 0.3}, {"optimizer": "sgd", "depth": "8"}, {"team": "nlp"}, "failed"),
        "gamma": ({"loss": 0.2}, {"optimizer": "Adam"}, {}, "running"),
    }
    ids = {}
    for offset, (name, (metrics, params, tags, status)) in enumerate(specs.items()):
        start = (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=offset)).isoformat()
        run = api.post("/runs", {"experiment": "search", "name": name, "start_time": start}).json()
        ids[name] = run["id"]
        points = [{"key": k, "value": v} for k, v in metrics.items()]
        api.post(f"/runs/{run['id']}/log-batch", {"metrics": points, "params": params, "tags": tags})
        if status != "running":
            api.patch(f"/runs/{run['id']}", {"status": status})
    RunInputFactory(run=Run.objects.get(pk=ids["alpha"]), dataset=train, context="training")
    RunInputFactory(run=Run.objects.get(pk=ids["beta"]), dataset=train, context="training")
    RunInputFactory(run=Run.objects.get(pk=ids["beta"]), dataset=holdout, context="evaluation")
    return ids


def names(api, **query) -> list[str]:
    response = api.get("/runs", query={"experiment": "search", **query})
    assert response.status_code == 200, response.content
    return [run["name"] for run in response.json()["items"]]


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("metrics.f1 > 0.9", {"alpha"}),
        ("metrics.f1 >= 0.85", {"alpha", "beta"}),
        ("metrics.f1 < 0.9", {"beta"}),
        ("metrics.loss <= 0.2", {"alpha", "gamma"}),
        ("metrics.loss = 0.3", {"beta"}),
        ("metrics.f1 != 0.95", {"beta"}),
        ("metrics.loss IN (0.1, 0.2)", {"alpha", "gamma"}),
        ("metrics.loss NOT IN (0.1, 0.2)", {"beta"}),
        ("metrics.f1 IS NULL", {"gamma"}),
        ("metrics.f1 IS NOT NULL", {"alpha", "beta"}),
        ("params.optimizer = 'adam'", {"alpha"}),
        ("params.optimizer != 'adam'", {"beta", "gamma"}),
        ("params.optimizer LIKE 'a%'", {"alpha"}),
        ("params.optimizer ILIKE 'a%'", {"alpha", "gamma"}),
        ("params.optimizer IN ('adam', 'sgd')", {"alpha", "beta"}),
        ("params.optimizer NOT IN ('adam')", {"beta", "gamma"}),
        ("params.depth IS NULL", {"gamma"}),
        ("params.depth IS NOT NULL", {"alpha", "beta"}),
        ("params.depth > '6'", {"beta"}),
        ("tags.team = 'vision'", {"alpha"}),
        ("tags.team != 'vision'", {"beta"}),
        ("tags.team LIKE '%l%'", {"beta"}),
        ("tags.team ILIKE 'VIS%'", {"alpha"}),
        ("tags.team IN ('vision', 'nlp')", {"alpha", "beta"}),
        ("tags.team NOT IN ('vision')", {"beta"}),
        ("tags.team IS NULL", {"gamma"}),
        ("tags.team IS NOT NULL", {"alpha", "beta"}),
        ("attributes.status = 'FINISHED'", {"alpha"}),
        ("attributes.status IN ('finished', 'FAILED')", {"alpha", "beta"}),
        ("attributes.status != 'running'", {"alpha", "beta"}),
        ("attributes.run_name LIKE 'g%'", {"gamma"}),
        ("attributes.start_time > 1704153600000", {"gamma"}),
        ("attributes.start_time <= 1704153600000", {"alpha", "beta"}),
        ("attributes.end_time IS NULL", {"gamma"}),
        ("attributes.user = 'writer'", {"alpha", "beta", "gamma"}),
        ("datasets.name = 'cards-train'", {"alpha", "beta"}),
        ("datasets.digest IN ('bbb222')", {"beta"}),
        ("datasets.context = 'evaluation'", {"beta"}),
        ("datasets.name LIKE 'cards-%'", {"alpha", "beta"}),
        ("metrics.f1 > 0.8 AND params.optimizer = 'sgd' AND tags.team = 'nlp'", {"beta"}),
    ],
)
def test_search_filters(api, searchable, filter_, expected):
    assert set(names(api, filter=filter_)) == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.f1 DESC"], ["alpha", "beta", "gamma"]),
        (["metrics.f1"], ["beta", "alpha", "gamma"]),
        (["metrics.loss ASC"], ["alpha", "gamma", "beta"]),
        (["params.optimizer"], ["gamma", "alpha", "beta"]),
        (["tags.team DESC"], ["alpha", "beta", "gamma"]),
        (["attributes.start_time"], ["alpha", "beta", "gamma"]),
        (["-attributes.start_time"], ["gamma", "beta", "alpha"]),
        (["attributes.run_name DESC"], ["gamma", "beta", "alpha"]),
        (["params.depth DESC", "metrics.loss"], ["beta", "alpha", "gamma"]),
    ],
)
def test_search_order_by(api, searchable, order_by, expected):
    assert names(api, order_by=order_by) == expected


def test_search_default_order_newest_first_and_paging(api, searchable):
    assert names(api) == ["gamma", "beta", "alpha"]
    page = api.get("/runs", query={"experiment": "search", "limit": 2}).json()
    assert [r["name"] for r in page["items"]] == ["gamma", "beta"] and page["next_offset"] == 2
    rest = api.get("/runs", query={"experiment": "search", "limit": 2, "offset": 2}).json()
    assert [r["name"] for r in rest["items"]] == ["alpha"] and rest["next_offset"] is None
    assert names(api, status="failed") == ["beta"]


def test_search_pages_by_cursor_in_the_default_order(api, searchable):
    first = api.get("/runs", query={"experiment": "search", "limit": 1}).json()
    seen = [r["name"] for r in first["items"]]
    token = first["next_after"]
    while token:
        page = api.get("/runs", query={"experiment": "search", "limit": 1, "after": token}).json()
        assert page["next_offset"] is None
        seen += [r["name"] for r in page["items"]]
        token = page["next_after"]
    assert seen == ["gamma", "beta", "alpha"]
    assert_error(api.get("/runs", query={"after": "nonsense"}), 400, contains="next_after")
    assert_error(api.get("/runs", query={"after": first["next_after"], "offset": 1}), 400)
    assert_error(api.get("/runs", query={"after": first["next_after"], "order_by": "metrics.f1"}), 400)
    assert api.get("/runs", query={"order_by": "metrics.f1"}).json()["next_after"] is None


def test_search_results_carry_metrics_params_and_inputs(api, searchable):
    query = {"experiment": "search", "filter": "attributes.run_name = 'alpha'"}
    [alpha] = api.get("/runs", query=query).json()["items"]
    assert alpha["metrics"]["f1"]["value"] == 0.95
    assert alpha["params"] == {"optimizer": "adam", "depth": "6"}
    assert alpha["inputs"] == [{"dataset_id": alpha["inputs"][0]["dataset_id"], "name": "cards-train",
                                "digest": "aaa111", "context": "training"}]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"filter": "metrics.f1 >"}, "needs a value"),
        ({"filter": "f1 > 0.9"}, "needs an entity"),
        ({"filter": "metrics.f1 > 'high'"}, "compares with a number"),
        ({"filter": "metrics.f1 LIKE '0.9%'"}, "LIKE"),
        ({"filter": "metrics.f1 > 0.9 OR metrics.f1 < 0.1"}, "OR is not supported"),
        ({"filter": "bogus.f1 > 0.9"}, "Unknown entity"),
        ({"filter": "attributes.colour = 'red'"}, "Unknown run attribute"),
        ({"filter": "datasets.size = '1'"}, "Datasets are searched by"),
        ({"filter": "params.a = unquoted"}, "quoted string"),
        ({"filter": "params.a IN ()"}, "IN"),
        ({"filter": "attributes.start_time > 'yesterday'"}, "epoch milliseconds"),
        ({"filter": "metrics.f1 > 0.9 AND"}, "ends with AND"),
        ({"filter": "metrics.f1 > 0.9 metrics.f1 < 1"}, "AND"),
        ({"order_by": "datasets.name"}, "Cannot order by"),
        ({"order_by": "attributes.colour"}, "Cannot order by"),
        ({"order_by": ""}, "empty"),
    ],
)
def test_search_invalid_filter_or_order_is_400_with_a_message(api, query, message):
    body = assert_error(api.get("/runs", query=query), 400, code="invalid_search")
    assert message.lower() in body["message"].lower()


ENTITY_KEYS = ["metrics.f1", "params.optimizer", "tags.team", "attributes.status", "attributes.start_time",
               "attributes.end_time", "attributes.experiment_id", "attributes.run_id", "datasets.name"]  # fmt: skip
OPERATIONS = ["= 1", "!= 1", "< 1", "<= 1", "> 1", ">= 1", "= 'x'", "LIKE 'x%'", "ILIKE 'x%'", "IN ('x', 'y')",
              "NOT IN ('x')", "IN (1, 2)", "IS NULL", "IS NOT NULL", "> nan", "< inf", "= ''"]  # fmt: skip


@pytest.mark.parametrize("key", ENTITY_KEYS)
def test_search_never_fails_with_a_500_whatever_the_operator(api, searchable, key):
    for operation in OPERATIONS:
        response = api.get(
            "/runs", query={"filter": f"{key} {operation}", "order_by": [key.replace("datasets", "tags")]}
        )
        assert response.status_code in (200, 400), (key, operation, response.content)


# --- Batched logging ------------------------------------------------------------------------------------------------


def test_log_batch_of_ten_thousand_points_with_params_and_tags(api, run_id):
    points = [{"key": "loss", "value": 1.0 / (step + 1), "step": step, "timestamp": 1_700_000_000_000 + step}
              for step in range(5000)]  # fmt: skip
    points += [{"key": "accuracy", "value": step / 5000, "step": step} for step in range(5000)]
    payload = {"metrics": points, "params": {"lr": 0.01, "depth": 6, "optimizer": "adam"}, "tags": {"phase": "train"}}

    response = api.post(f"/runs/{run_id}/log-batch", payload)

    assert response.status_code == 200
    assert response.json() == {"metrics": 10_000, "params": 3, "tags": 1}
    assert MetricPoint.objects.filter(series__run_id=run_id).count() == 10_000
    run = api.get(f"/runs/{run_id}").json()
    assert run["metrics"]["loss"] | {"timestamp": 0} == {
        "value": 1 / 5000, "step": 4999, "timestamp": 0, "min": 1 / 5000, "max": 1.0, "count": 5000,
    }  # fmt: skip
    assert run["metrics"]["loss"]["timestamp"] == 1_700_000_000_000 + 4999
    assert run["metrics"]["accuracy"] | {"timestamp": 0} == {
        "value": 4999 / 5000, "step": 4999, "timestamp": 0, "min": 0.0, "max": 4999 / 5000, "count": 5000,
    }  # fmt: skip
    assert run["params"] == {"lr": "0.01", "depth": "6", "optimizer": "adam"}
    assert run["tags"] == {"phase": "train"}

    # A second batch extends the histories and the summaries.
    api.post(f"/runs/{run_id}/log-batch", {"metrics": [{"key": "loss", "value": 5.0, "step": 5000}]})
    loss = api.get(f"/runs/{run_id}").json()["metrics"]["loss"]
    assert (loss["value"], loss["max"], loss["count"]) == (5.0, 5.0, 5001)


@pytest.mark.parametrize(
    "bad_point",
    [
        {"key": "bad\x07key", "value": 1.0},
        {"key": "loss", "value": 1.0, "timestamp": 2**70},
    ],
)
def test_a_batch_with_one_invalid_metric_writes_nothing(api, run_id, bad_point):
    points = [{"key": "loss", "value": 0.5, "step": i} for i in range(100)] + [bad_point]
    payload = {"metrics": points, "params": {"lr": "0.1"}, "tags": {"phase": "train"}}
    body = assert_error(api.post(f"/runs/{run_id}/log-batch", payload), 422)
    assert [d["index"] for d in body["details"]] == [100]
    assert nothing_logged(run_id)


@pytest.mark.parametrize(
    "bad_point",
    [
        {"key": "loss", "value": "lots"},
        {"key": "loss", "value": True},
        {"key": "loss", "value": None},
        {"key": "", "value": 1.0},
        {"key": "loss", "value": 1.0, "step": 2**63},
        {"key": "loss", "value": 1.0, "step": 1.5},
        {"value": 1.0},
    ],
)
def test_a_batch_with_one_malformed_metric_writes_nothing(api, run_id, bad_point):
    points = [{"key": "loss", "value": 0.5, "step": i} for i in range(10)] + [bad_point]
    body = assert_error(api.post(f"/runs/{run_id}/log-batch", {"metrics": points, "params": {"lr": "0.1"}}), 422)
    # Per point: pydantic names the field (metrics.10.step), the service the index (64-bit bounds, keys).
    assert any("metrics.10" in d.get("field", "") or d.get("index") == 10 for d in body["details"]), body
    assert nothing_logged(run_id)


def test_per_item_error_details_list_every_bad_point(api, run_id):
    points = [
        {"key": "ok", "value": 1.0},
        {"key": "bad\nkey", "value": 1.0},
        {"key": "ok", "value": 2.0},
        {"key": "also\x1fbad", "value": 1.0},
    ]
    body = assert_error(api.post(f"/runs/{run_id}/log-batch", {"metrics": points}), 422)
    assert [(d["index"], d["key"]) for d in body["details"]] == [(1, "bad\nkey"), (3, "also\x1fbad")]
    assert all("control characters" in d["message"] for d in body["details"])
    assert "none were logged" in body["message"]
    assert nothing_logged(run_id)


def test_invalid_param_writes_nothing(api, run_id):
    payload = {
        "metrics": [{"key": "loss", "value": 0.5}],
        "params": {"lr": "0.1", "bad\tkey": "1", "blob": "x" * 6001},
        "tags": {"phase": "train"},
    }
    body = assert_error(api.post(f"/runs/{run_id}/log-batch", payload), 422)
    assert [d["key"] for d in body["details"]] == ["bad\tkey", "blob"]
    assert nothing_logged(run_id)
    nested = assert_error(api.post(f"/runs/{run_id}/log-batch", {"params": {"grid": [1, 2]}}), 422)
    assert "string or a number" in nested["details"][0]["message"]
    assert nothing_logged(run_id)


def test_invalid_tag_writes_nothing(api, run_id):
    payload = {"metrics": [{"key": "loss", "value": 0.5}], "params": {"lr": "0.1"}, "tags": {"ok": "1", "b\x1bad": "2"}}
    assert_error(api.post(f"/runs/{run_id}/log-batch", payload), 422)
    assert nothing_logged(run_id)


def test_param_conflict_is_409_and_writes_nothing_else(api, run_id):
    api.post(f"/runs/{run_id}/log-batch", {"params": {"lr": "0.1"}})
    # The same value again is fine (retries are idempotent).
    assert api.post(f"/runs/{run_id}/log-batch", {"params": {"lr": "0.1"}}).status_code == 200

    payload = {"params": {"lr": "0.2", "depth": "4"}, "metrics": [{"key": "loss", "value": 1.0}], "tags": {"t": "1"}}
    body = assert_error(api.post(f"/runs/{run_id}/log-batch", payload), 409, code="param_conflict")
    assert body["details"] == [{"key": "lr", "message": "Already logged as '0.1'; params cannot change."}]
    assert dict(Param.objects.filter(run_id=run_id).values_list("key", "value")) == {"lr": "0.1"}
    assert not MetricSeries.objects.filter(run_id=run_id).exists()
    assert Run.objects.get(pk=run_id).tags == {}


def test_log_batch_by_another_user_is_403(client, run_id, other_token):
    from tests.api.conftest import Api

    response = Api(client, other_token).post(f"/runs/{run_id}/log-batch", {"params": {"lr": "1"}})
    assert_error(response, 403)
    assert nothing_logged(run_id)


def test_log_batch_on_an_unknown_run_is_404(api):
    assert_error(api.post("/runs/" + "f" * 32 + "/log-batch", {"params": {"lr": "1"}}), 404)


# --- NaN and the infinities -----------------------------------------------------------------------------------------


def test_nan_and_infinities_round_trip_as_strings(api, run_id):
    points = [
        {"key": "weird", "value": 1.0, "step": 0},
        {"key": "weird", "value": "NaN", "step": 1},
        {"key": "weird", "value": "Infinity", "step": 2},
        {"key": "weird", "value": "-Infinity", "step": 3},
        {"key": "only_nan", "value": "NaN"},
        {"key": "pos_inf", "value": "inf"},
        {"key": "neg_inf", "value": "-Infinity"},
    ]
    assert api.post(f"/runs/{run_id}/log-batch", {"metrics": points}).json()["metrics"] == 7

    metrics = strict_json(api.get(f"/runs/{run_id}"))["metrics"]
    assert metrics["weird"]["value"] == "-Infinity"
    assert (metrics["weird"]["min"], metrics["weird"]["max"]) == ("-Infinity", "Infinity")
    assert (metrics["only_nan"]["value"], metrics["only_nan"]["min"], metrics["only_nan"]["max"]) == ("NaN",) * 3
    assert metrics["pos_inf"]["value"] == "Infinity"
    assert metrics["neg_inf"]["value"] == "-Infinity"

    history = strict_json(api.get(f"/runs/{run_id}/metrics/history", query={"key": "weird"}))
    assert history["values"] == [1.0, "NaN", "Infinity", "-Infinity"]
    series = strict_json(api.get(f"/runs/{run_id}/metrics/series", query={"key": "weird"}))
    assert series["values"] == [1.0, "NaN", "Infinity", "-Infinity"]

    listed = strict_json(api.get("/runs", query={"filter": "metrics.only_nan IS NOT NULL"}))
    assert listed["items"][0]["metrics"]["only_nan"]["value"] == "NaN"
    stored = MetricPoint.objects.filter(series__key="weird").order_by("step").values_list("value", flat=True)
    assert math.isnan(list(stored)[1]) and list(stored)[2:] == [math.inf, -math.inf]


# --- History and series ---------------------------------------------------------------------------------------------


def test_metric_history_pages(api, run_id):
    points = [{"key": "loss", "value": float(step), "step": step, "timestamp": 1000 + step} for step in range(250)]
    api.post(f"/runs/{run_id}/log-batch", {"metrics": points})

    seen, offset, pages = [], 0, 0
    while offset is not None:
        page = api.get(f"/runs/{run_id}/metrics/history", query={"key": "loss", "offset": offset, "limit": 100}).json()
        assert page["key"] == "loss"
        assert len(page["steps"]) == len(page["timestamps"]) == len(page["values"])
        seen += page["steps"]
        offset, pages = page["next_offset"], pages + 1
    assert seen == list(range(250)) and pages == 3

    whole = api.get(f"/runs/{run_id}/metrics/history", query={"key": "loss"}).json()
    assert whole["values"] == [float(s) for s in range(250)] and whole["timestamps"][0] == 1000
    assert whole["next_offset"] is None
    past_the_end = api.get(f"/runs/{run_id}/metrics/history", query={"key": "loss", "offset": 1000}).json()
    assert past_the_end["steps"] == [] and past_the_end["next_offset"] is None

    assert_error(api.get(f"/runs/{run_id}/metrics/history", query={"key": "loss", "limit": 0}), 422)
    assert_error(api.get(f"/runs/{run_id}/metrics/history", query={"key": "loss", "offset": -1}), 422)
    assert_error(api.get(f"/runs/{run_id}/metrics/history", query={"key": "nope"}), 404)
    assert_error(api.get(f"/runs/{run_id}/metrics/history"), 422)


def test_metric_series_downsamples_and_keeps_the_extremes(api, run_id):
    values = [math.sin(step / 50) for step in range(1000)]
    values[437], values[802] = 1e6, -1e6
    points = [{"key": "loss", "value": v, "step": s} for s, v in enumerate(values)]
    api.post(f"/runs/{run_id}/log-batch", {"metrics": points})

    series = api.get(f"/runs/{run_id}/metrics/series", query={"key": "loss", "max_points": 20}).json()
    assert series["total_points"] == 1000 and series["downsampled"] is True
    assert len(series["steps"]) == len(series["values"]) <= 20
    assert 1e6 in series["values"] and -1e6 in series["values"]
    assert {437, 802} <= set(series["steps"])
    assert series["steps"] == sorted(series["steps"])
    assert (series["steps"][0], series["steps"][-1]) == (0, 999)

    full = api.get(f"/runs/{run_id}/metrics/series", query={"key": "loss", "max_points": 5000}).json()
    assert full["downsampled"] is False and len(full["values"]) == 1000

    assert_error(api.get(f"/runs/{run_id}/metrics/series", query={"key": "loss", "max_points": 3}), 422)
    assert_error(api.get(f"/runs/{run_id}/metrics/series", query={"key": "nope"}), 404)


# --- Keys and content types -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"metrics": [{"key": "k" * 251, "value": 1.0}]},
        {"params": {"k" * 251: "1"}},
        {"tags": {"k" * 251: "1"}},
        {"metrics": [{"key": "a\x1fb", "value": 1.0}]},
        {"params": {"a\x7fb": "1"}},
        {"tags": {"a\rb": "1"}},
        {"metrics": [{"key": "a\x85b", "value": 1.0}]},
    ],
)
def test_long_or_control_character_keys_are_422_and_nothing_is_written(api, run_id, payload):
    payload = {"metrics": [], "params": {}, "tags": {}} | payload
    payload["metrics"] = [{"key": "fine", "value": 1.0}, *payload["metrics"]]
    payload["params"] = {"fine": "1", **payload["params"]}
    assert_error(api.post(f"/runs/{run_id}/log-batch", payload), 422)
    assert nothing_logged(run_id)


def test_run_and_experiment_tags_with_bad_keys_are_422(api):
    assert_error(api.post("/runs", {"tags": {"a\x01b": "1"}}), 422)
    assert_error(api.post("/runs", {"tags": {"a\x00b": "1"}}), 400, contains="NUL")  # refused before any handler
    assert_error(api.post("/runs", {"tags": {"k" * 251: "1"}}), 422)
    assert not Run.objects.exists()


def test_a_key_of_exactly_250_characters_is_fine(api, run_id):
    key = "k" * 250
    body = {"metrics": [{"key": key, "value": 1.0}], "params": {key: "1"}, "tags": {key: "1"}}
    assert api.post(f"/runs/{run_id}/log-batch", body).status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "name=from-a-form"),
        (
            "multipart/form-data; boundary=xyz",
            '--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--xyz--',
        ),
        ("text/plain", '{"name": "from-a-form"}'),
        ("application/octet-stream", '{"name": "from-a-form"}'),
    ],
)
def test_json_endpoints_refuse_other_content_types_with_415(api, run_id, content_type, body):
    calls = [
        ("POST", "/experiments"),
        ("PATCH", "/experiments/Default"),
        ("POST", "/runs"),
        ("PATCH", f"/runs/{run_id}"),
        ("POST", f"/runs/{run_id}/log-batch"),
        ("POST", "/datasets"),
        ("POST", "/models"),
        ("PUT", "/models/m/aliases/champion"),
    ]
    before = (Experiment.objects.count(), Run.objects.count(), Experiment.objects.get(name="Default").description)
    for method, path in calls:
        response = api.request(method, path, body=body, content_type=content_type)
        assert_error(response, 415, code="unsupported_media_type")
    assert (Experiment.objects.count(), Run.objects.count(), Experiment.objects.get(name="Default").description) == (
        before
    )
    assert nothing_logged(run_id)


def test_a_model_named_artifacts_gets_no_exemption_from_json(api):
    api.post("/models", {"name": "artifacts"})
    api.post("/models/artifacts/versions", {})
    response = api.request(
        "PUT", "/models/artifacts/aliases/champion", body="version=1", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415)


@pytest.mark.parametrize("body", ["{not json", "", "null", "[1, 2]", '"text"', "\xff\xfe"])
def test_a_non_json_body_with_the_json_content_type_is_4xx(api, run_id, body):
    response = api.request("POST", f"/runs/{run_id}/log-batch", body=body.encode("latin-1"))
    assert response.status_code in (400, 422), response.content
    response = api.request("POST", "/experiments", body=body.encode("latin-1"))
    assert response.status_code in (400, 422), response.content
    assert nothing_logged(run_id)


def test_broken_json_is_400(api):
    assert_error(
        api.request("POST", "/experiments", body=b"{not json"),
        400,
        contains="JSON object: key must be a string at line 1 column 2",
    )
    assert_error(api.request("POST", "/experiments", body=b"[]"), 400, contains="JSON object: got an array")
    assert_error(api.request("POST", "/experiments", body=b'{"name": "x",}'), 400)
    assert not Experiment.objects.filter(name="x").exists()


# --- Numbers no database column can hold ----------------------------------------------------------------------------

HUGE = 10**20


def test_huge_or_odd_numbers_are_4xx_not_500(api, run_id):
    assert_error(api.get(f"/experiments/{HUGE}"), 404)
    assert_error(api.get("/experiments/²"), 404)
    assert_error(api.post("/runs", {"experiment_id": HUGE}), 404)
    assert_error(api.get("/runs", query={"offset": HUGE}), 422)
    assert_error(api.get("/experiments", query={"offset": HUGE}), 422)
    assert_error(api.get("/runs", query={"limit": HUGE}), 422)  # at most 1,000 a page, as the document says
    api.post(f"/runs/{run_id}/log-batch", {"metrics": [{"key": "loss", "value": 1.0}]})
    assert_error(api.get(f"/runs/{run_id}/metrics/history", query={"key": "loss", "offset": HUGE}), 422)
    assert_error(api.post(f"/runs/{run_id}/inputs", {"dataset_id": HUGE}), 404)
    assert_error(api.get(f"/datasets/{HUGE}"), 404)
