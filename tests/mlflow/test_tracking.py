"""MLflow's fluent API and MlflowClient against the registry: what they log is the rows our own API writes."""

from __future__ import annotations

import json
import math

import mlflow
import pandas as pd
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from registry.accounts.models import ApiToken
from registry.tracking import services as tracking
from registry.tracking.models import Experiment, MetricPoint, MetricSeries, Run, RunInput
from tests.mlflow.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)


def our_api_run(run_id: str, token: str) -> dict:
    """The run as our own JSON API (/api/v1) shows it."""
    response = Client().get(f"/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    return response.json()


def test_fluent_run_is_stored_as_our_rows(client, trainer, trainer_token):
    mlflow.set_experiment("fraud")
    frame = pd.DataFrame({"amount": [1.5, 2.5, 9.0], "label": [0, 1, 0]})
    with mlflow.start_run(run_name="baseline") as active:
        mlflow.log_param("optimizer", "adam")
        mlflow.log_params({"lr": 0.01, "depth": 6})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"f1": 0.8, "auc": 0.91}, step=4)
        mlflow.set_tag("team", "risk")
        mlflow.log_input(mlflow.data.from_pandas(frame, name="transactions"), context="training")
    run_id = active.info.run_id

    run = Run.objects.select_related("experiment", "user").get(pk=run_id)
    assert run.experiment.name == "fraud"
    assert run.name == "baseline"
    assert run.user == trainer
    assert run.status == Run.Status.FINISHED and run.end_time is not None
    assert run.tags["team"] == "risk"
    # MLflow's system tags live in the run's columns, not among its tags.
    assert "mlflow.runName" not in run.tags and "mlflow.user" not in run.tags
    assert dict(run.params.values_list("key", "value")) == {"optimizer": "adam", "lr": "0.01", "depth": "6"}
    loss = MetricSeries.objects.get(run=run, key="loss")
    assert (loss.count, loss.last_step, loss.last_value, loss.min_value, loss.max_value) == (5, 4, 0.2, 0.2, 1.0)
    assert MetricPoint.objects.filter(series=loss).count() == 5
    run_input = RunInput.objects.select_related("dataset").get(run=run)
    assert run_input.context == "training"
    assert run_input.dataset.name == "transactions"
    assert [c["name"] for c in run_input.dataset.schema] == ["amount", "label"]
    assert run_input.dataset.profile["num_rows"] == 3

    # Our own API shows the same run: same params, metrics, tags and inputs.
    ours = our_api_run(run_id, trainer_token)
    assert ours["experiment"] == "fraud" and ours["name"] == "baseline" and ours["user"] == "trainer"
    assert ours["status"] == "finished"
    assert ours["params"] == {"optimizer": "adam", "lr": "0.01", "depth": "6"}
    assert ours["metrics"]["loss"]["count"] == 5 and ours["metrics"]["f1"]["value"] == 0.8
    assert ours["inputs"] == [
        {
            "dataset_id": run_input.dataset_id,
            "name": "transactions",
            "digest": run_input.dataset.digest,
            "context": "training",
        }
    ]
    assert ours["tags"] == {"team": "risk", "mlflow.source.type": "LOCAL"}
    assert ours["code"]["entry_point"] == run.entry_point != ""  # from mlflow.source.name

    # And MLflow reads back what it wrote, system tags included.
    fetched = client.get_run(run_id)
    assert fetched.info.run_name == "baseline" and fetched.info.status == "FINISHED"
    assert fetched.info.user_id == "trainer"
    assert fetched.info.artifact_uri == f"mlflow-artifacts:/runs/{run_id}/artifacts"
    assert fetched.data.params == {"optimizer": "adam", "lr": "0.01", "depth": "6"}
    assert fetched.data.metrics == {"loss": 0.2, "f1": 0.8, "auc": 0.91}
    assert fetched.data.tags["mlflow.runName"] == "baseline"
    assert fetched.data.tags["mlflow.user"] == "trainer"
    assert fetched.data.tags["team"] == "risk"
    [dataset_input] = fetched.inputs.dataset_inputs
    assert dataset_input.dataset.name == "transactions"
    assert dataset_input.dataset.digest == run_input.dataset.digest
    assert [(t.key, t.value) for t in dataset_input.tags] == [("mlflow.data.context", "training")]
    assert '"amount"' in dataset_input.dataset.schema


def test_run_lives_in_the_default_experiment_without_set_experiment(client):
    with mlflow.start_run() as active:
        mlflow.log_metric("x", 1)
    run = Run.objects.select_related("experiment").get(pk=active.info.run_id)
    assert run.experiment.name == Experiment.DEFAULT_NAME
    assert client.get_experiment("0").name == Experiment.DEFAULT_NAME


def test_nan_and_infinities_round_trip(client):
    with mlflow.start_run() as active:
        mlflow.log_metrics({"nan": math.nan, "pos": math.inf, "neg": -math.inf}, step=1)
    metrics = client.get_run(active.info.run_id).data.metrics
    assert math.isnan(metrics["nan"]) and metrics["pos"] == math.inf and metrics["neg"] == -math.inf
    [point] = client.get_metric_history(active.info.run_id, "neg")
    assert point.value == -math.inf and point.step == 1
    [point] = client.get_metric_history(active.info.run_id, "nan")
    assert math.isnan(point.value)
    series = MetricSeries.objects.get(run_id=active.info.run_id, key="nan")
    assert math.isnan(series.last_value)


def test_log_batch_and_metric_history_pages_of_25000(client, rest):
    run = client.create_run(client.create_experiment("long"))
    run_id = run.info.run_id
    points = [Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(60_000)]
    client.log_batch(run_id, metrics=points, params=[Param("p", "1")], tags=[RunTag("t", "v")])
    assert MetricSeries.objects.get(run_id=run_id, key="loss").count == 60_000

    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(60_000))
    assert history[59_999].value == pytest.approx(1 / 60_000)

    # The raw pages: 25,000 at most, a token to follow, no token at the end.
    first = rest.api(
        "GET", "metrics/get-history", params={"run_id": run_id, "metric_key": "loss", "max_results": 25_000}
    ).json()
    assert len(first["metrics"]) == 25_000 and first["next_page_token"]
    second = rest.api(
        "GET",
        "metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss", "max_results": 25_000, "page_token": first["next_page_token"]},
    ).json()
    assert second["metrics"][0]["step"] == 25_000
    last = rest.api(
        "GET",
        "metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss", "max_results": 25_000, "page_token": second["next_page_token"]},
    ).json()
    assert len(last["metrics"]) == 10_000 and "next_page_token" not in last
    for token in ("garbage", "eyJhZnRlciI6IFsxXX0=", first["next_page_token"][:-4]):
        response = rest.api(
            "GET", "metrics/get-history", params={"run_id": run_id, "metric_key": "loss", "page_token": token}
        )
        assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert client.get_metric_history(run_id, "never-logged") == []


def test_update_delete_restore_run_and_tags(client):
    experiment_id = client.create_experiment("lifecycle")
    run = client.create_run(experiment_id, run_name="draft", tags={"keep": "1", "drop": "2"})
    run_id = run.info.run_id
    client.set_tag(run_id, "mlflow.runName", "renamed")
    client.set_tag(run_id, "mlflow.source.git.commit", "a" * 40)
    client.delete_tag(run_id, "drop")
    client.set_terminated(run_id, status="FAILED")
    stored = Run.objects.get(pk=run_id)
    assert (stored.name, stored.git_commit, stored.status) == ("renamed", "a" * 40, "failed")
    assert stored.tags == {"keep": "1"}
    fetched = client.get_run(run_id)
    assert fetched.data.tags["mlflow.source.git.commit"] == "a" * 40 and "drop" not in fetched.data.tags

    client.delete_run(run_id)
    assert Run.objects.get(pk=run_id).deleted_at is not None
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([experiment_id]) == []
    assert len(client.search_runs([experiment_id], run_view_type=mlflow.entities.ViewType.DELETED_ONLY)) == 1
    with pytest.raises(MlflowException) as refused:
        client.log_param(run_id, "late", "1")
    assert error_code(refused) == "INVALID_PARAMETER_VALUE"
    client.restore_run(run_id)
    client.log_param(run_id, "late", "1")
    assert client.get_run(run_id).data.params == {"late": "1"}


def test_params_cannot_change(client):
    run = client.create_run(client.create_experiment("params"))
    client.log_param(run.info.run_id, "lr", "0.1")
    client.log_param(run.info.run_id, "lr", "0.1")  # the same value again is fine
    with pytest.raises(MlflowException) as refused:
        client.log_param(run.info.run_id, "lr", "0.2")
    assert error_code(refused) == "INVALID_PARAMETER_VALUE"
    assert "cannot change" in refused.value.message


def test_experiments_create_get_search_rename_delete(client):
    first = client.create_experiment("alpha", tags={"team": "vision", "mlflow.note.content": "About alpha"})
    client.create_experiment("beta", tags={"team": "nlp"})
    assert Experiment.objects.get(pk=first).description == "About alpha"
    assert client.get_experiment(first).tags == {"team": "vision", "mlflow.note.content": "About alpha"}
    assert client.get_experiment_by_name("beta").tags == {"team": "nlp"}
    assert client.get_experiment_by_name("nope") is None

    names = {e.name for e in client.search_experiments(filter_string="name LIKE 'al%'")}
    assert names == {"alpha"}
    assert {e.name for e in client.search_experiments(filter_string="tags.team = 'nlp'")} == {"beta"}
    ordered = [e.name for e in client.search_experiments(order_by=["name DESC"]) if e.name != "Default"]
    assert ordered == ["beta", "alpha"]
    page = client.search_experiments(max_results=1, order_by=["name ASC"])
    assert len(page) == 1 and page.token
    assert len(client.search_experiments(max_results=1, order_by=["name ASC"], page_token=page.token)) == 1

    client.set_experiment_tag(first, "stage", "dev")
    client.rename_experiment(first, "alpha-2")
    client.delete_experiment(first)
    assert client.get_experiment(first).lifecycle_stage == "deleted"
    assert "alpha-2" not in {e.name for e in client.search_experiments()}
    with pytest.raises(MlflowException, match="deleted"):
        mlflow.set_experiment("alpha-2")
    client.restore_experiment(first)
    assert Experiment.objects.get(pk=first).tags == {"team": "vision", "stage": "dev"}


@pytest.fixture
def searchable(client):
    """Four runs in one experiment, each with a metric, a param, a tag, a status and a dataset."""
    experiment_id = client.create_experiment("search")
    runs = {}
    for index, (name, f1, optimizer, team, status, context) in enumerate(
        [
            ("r1", 0.9, "adam", "vision", "FINISHED", "training"),
            ("r2", 0.7, "sgd", "nlp", "FINISHED", "evaluation"),
            ("r3", 0.5, "adam", "vision", "FAILED", "training"),
            ("r4", 0.95, "rmsprop", "speech", "RUNNING", "validation"),
        ]
    ):
        run = client.create_run(experiment_id, run_name=name, start_time=1_700_000_000_000 + index * 1000)
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric("f1", f1, 0, 0)],
            params=[Param("optimizer", optimizer)],
            tags=[RunTag("team", team)],
        )
        dataset = Dataset(name=f"data-{name}", digest=f"d{index}", source_type="code", source="{}")
        client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", context)])])
        if status != "RUNNING":
            client.set_terminated(run_id, status=status)
        runs[name] = run_id
    return experiment_id, runs


# Each filter against the four runs of `searchable`, and the runs it finds. The cases share one set of runs (made
# through the live server, about a second), so they are one test that names every filter that found the wrong runs.
FILTERS = [
    ("metrics.f1 > 0.8", {"r1", "r4"}),
    ("metrics.f1 >= 0.9", {"r1", "r4"}),
    ("metrics.f1 < 0.7", {"r3"}),
    ("metrics.f1 <= 0.7", {"r2", "r3"}),
    ("metrics.f1 = 0.7", {"r2"}),
    ("metrics.f1 != 0.7", {"r1", "r3", "r4"}),
    ("params.optimizer = 'adam'", {"r1", "r3"}),
    ("params.optimizer != 'adam'", {"r2", "r4"}),
    ("params.optimizer LIKE 'ad%'", {"r1", "r3"}),
    ("params.optimizer ILIKE 'ADA%'", {"r1", "r3"}),
    ("params.optimizer IN ('sgd', 'rmsprop')", {"r2", "r4"}),
    ("params.optimizer NOT IN ('sgd', 'rmsprop')", {"r1", "r3"}),
    ("params.missing IS NULL", {"r1", "r2", "r3", "r4"}),
    ("params.optimizer IS NOT NULL", {"r1", "r2", "r3", "r4"}),
    ("tags.team = 'vision'", {"r1", "r3"}),
    ("tags.team LIKE '%ee%'", {"r4"}),
    ("tags.`mlflow.runName` = 'r2'", {"r2"}),
    ("tags.mlflow.runName IN ('r1', 'r4')", {"r1", "r4"}),
    ("attributes.status = 'FINISHED'", {"r1", "r2"}),
    ("attributes.status IN ('FAILED', 'RUNNING')", {"r3", "r4"}),
    ("attributes.run_name LIKE 'r%' AND attributes.status != 'FINISHED'", {"r3", "r4"}),
    ("attributes.start_time > 1700000001500", {"r3", "r4"}),
    ("datasets.name = 'data-r2'", {"r2"}),
    ("datasets.context = 'training'", {"r1", "r3"}),
    ("datasets.context IN ('evaluation', 'validation')", {"r2", "r4"}),
    ("metrics.f1 > 0.6 AND params.optimizer = 'adam' AND tags.team = 'vision'", {"r1"}),
]


def test_search_runs_filter_grammar(client, searchable):
    experiment_id, _ = searchable
    found = {
        filter_string: {r.info.run_name for r in client.search_runs([experiment_id], filter_string=filter_string)}
        for filter_string, _ in FILTERS
    }
    assert {f: found[f] for f, expected in FILTERS if found[f] != expected} == {}


def test_search_runs_by_run_id_and_order_and_pages(client, searchable):
    experiment_id, runs = searchable
    found = client.search_runs([experiment_id], f"attributes.run_id = '{runs['r2']}'")
    assert [r.info.run_name for r in found] == ["r2"]
    by_f1 = client.search_runs([experiment_id], order_by=["metrics.f1 DESC"])
    assert [r.info.run_name for r in by_f1] == ["r4", "r1", "r2", "r3"]
    by_param = client.search_runs([experiment_id], order_by=["params.optimizer ASC", "metrics.f1 ASC"])
    assert [r.info.run_name for r in by_param] == ["r3", "r1", "r4", "r2"]
    newest_first = client.search_runs([experiment_id])
    assert [r.info.run_name for r in newest_first] == ["r4", "r3", "r2", "r1"]

    seen, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], max_results=3, order_by=["attributes.start_time ASC"], page_token=token
        )
        seen += [r.info.run_name for r in page]
        token = page.token
        if not token:
            break
    assert seen == ["r1", "r2", "r3", "r4"]
    assert [
        r.info.run_name
        for r in mlflow.search_runs([experiment_id], output_format="list", filter_string="metrics.f1 > 0.8")
    ] in (
        ["r4", "r1"],
        ["r1", "r4"],
    )


REFUSED_FILTERS = [
    "metrics.f1 > 'high'",
    "metrics.f1 LIKE '0.%'",
    "params.optimizer = 'adam' OR params.optimizer = 'sgd'",
    "bogus.key = '1'",
    "attributes.nope = '1'",
    "attributes.status = 'DONE'",
    "params.optimizer =",
    "(metrics.f1 > 0.1)",
]


def test_search_runs_bad_filters_are_invalid_parameter_value(client, searchable):
    experiment_id, _ = searchable
    answers = {}
    for filter_string in REFUSED_FILTERS:
        try:
            client.search_runs([experiment_id], filter_string=filter_string)
            answers[filter_string] = "accepted"
        except MlflowException as refused:
            answers[filter_string] = refused.error_code
    assert answers == dict.fromkeys(REFUSED_FILTERS, "INVALID_PARAMETER_VALUE")


def test_read_only_token_reads_mlflow_runs(client, trainer, as_token):
    with mlflow.start_run() as active:
        mlflow.log_metric("m", 1.0)
    _, raw = ApiToken.issue(user=trainer, name="reader", scope=ApiToken.Scope.READ)
    as_token(raw)
    assert client.get_run(active.info.run_id).data.metrics == {"m": 1.0}
    assert len(client.search_runs([active.info.experiment_id])) == 1


def test_search_runs_costs_the_same_queries_for_1_or_20_runs(trainer, trainer_token):
    """Runs come with params, metrics, tags, inputs and outputs: one query per relation, whatever the page size."""
    experiment = tracking.experiment_create(name="counted", by=trainer)
    dataset = tracking.dataset_register(name="d", digest="abc", by=trainer)

    def add_runs(count: int) -> None:
        for i in range(count):
            run = tracking.run_create(experiment=experiment, by=trainer, name=f"r{i}", tags={"t": "v"})
            tracking.params_log(run=run, by=trainer, params={"a": "1", "b": "2"})
            points = [tracking.Point("m", 0.5, 0), tracking.Point("n", 1.0, 0)]
            tracking.metrics_log(run=run, by=trainer, points=points)
            tracking.run_input_add(run=run, by=trainer, dataset=dataset, context="training")

    browser = Client(headers={"Authorization": f"Bearer {trainer_token}"})
    body = json.dumps({"experiment_ids": [str(experiment.pk)], "filter": "metrics.m > 0.1"})

    def search() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = browser.post("/api/2.0/mlflow/runs/search", body, content_type="application/json")
        assert response.status_code == 200
        return len(response.json()["runs"]), len(queries)

    add_runs(1)
    search()  # the token's last-used time is written on first use only
    one = search()
    add_runs(19)
    many = search()
    assert (one[0], many[0]) == (1, 20)
    assert one[1] == many[1], (one, many)
