"""Endpoints do a fixed number of queries whatever the page or batch size: counted at 1 row and at 50 rows."""

from __future__ import annotations

import pytest
from django.db import connection

from registry.catalog.models import Stage
from tests.factories import (
    ArtifactFileFactory,
    DatasetFactory,
    ExperimentFactory,
    MetricSeriesFactory,
    ModelAliasFactory,
    ModelVersionFactory,
    ParamFactory,
    RegisteredModelFactory,
    RunFactory,
    RunInputFactory,
    RunStepFactory,
)

pytestmark = pytest.mark.django_db

SIZES = [1, 50]


@pytest.fixture
def warm_api(api):
    """The token's first use records last_used_at (one UPDATE); later calls within the minute do not."""
    assert api.get("/experiments", query={"limit": 1}).status_code == 200
    return api


def full_run(experiment, user):
    run = RunFactory(experiment=experiment, user=user)
    ParamFactory(run=run, key="lr")
    ParamFactory(run=run, key="depth")
    MetricSeriesFactory(run=run, key="f1", last_value=0.9)
    MetricSeriesFactory(run=run, key="loss", last_value=0.1)
    RunStepFactory(run=run, position=1)
    RunInputFactory(run=run, dataset=DatasetFactory())
    return run


@pytest.mark.parametrize("n", SIZES)
def test_models_list(warm_api, django_assert_num_queries, user, n):
    for _ in range(n):
        model = RegisteredModelFactory(owner=user)
        version = ModelVersionFactory(model=model, stage=Stage.PRODUCTION)
        ModelVersionFactory(model=model, stage=Stage.STAGING)
        ModelAliasFactory(model=model, version=version)
    # 1. the token, with its user
    # 2. the page of models, with their owners and the latest version number (a subquery)
    # 3. their aliases, with the version each points at
    # 4. their versions in Staging or Production
    with django_assert_num_queries(4):
        items = warm_api.get("/models", query={"limit": 100}).json()["items"]
    assert len(items) == n and all(m["aliases"] and m["versions_by_stage"]["Production"] for m in items)


@pytest.mark.parametrize("n", SIZES)
def test_versions_list(warm_api, django_assert_num_queries, user, n):
    model = RegisteredModelFactory(name="fraud", owner=user)
    experiment = ExperimentFactory()
    for _ in range(n):
        version = ModelVersionFactory(model=model, run=full_run(experiment, user), created_by=user)
        ModelAliasFactory(model=model, version=version)
    # 1. the token, with its user
    # 2. the model, by name
    # 3. the page of versions, with their model, creator and run
    # 4. their aliases
    # 5. those runs' metric summaries
    with django_assert_num_queries(5):
        items = warm_api.get("/models/fraud/versions", query={"limit": 100}).json()["items"]
    assert len(items) == n and all(v["metrics"] == {"f1": 0.9, "loss": 0.1} and v["aliases"] for v in items)


@pytest.mark.parametrize("n", SIZES)
def test_runs_list(warm_api, django_assert_num_queries, user, n):
    experiment = ExperimentFactory(name="counted")
    for _ in range(n):
        full_run(experiment, user)
    # 1. the token, with its user
    # 2. the experiment, by name
    # 3. the user's grants on it (whether they may read it)
    # 4. the page of runs the user may read, with their experiment and user
    # 5. their params
    # 6. their metric summaries
    # 7. their steps
    # 8. their inputs, with the datasets
    with django_assert_num_queries(8):
        items = warm_api.get("/runs", query={"experiment": "counted", "limit": 100}).json()["items"]
    assert len(items) == n and all(len(r["params"]) == 2 and r["inputs"] and r["steps"] for r in items)


@pytest.mark.parametrize("n", SIZES)
def test_runs_search_with_filter_and_order(warm_api, django_assert_num_queries, user, n):
    experiment = ExperimentFactory(name="counted")
    for _ in range(n):
        full_run(experiment, user)
    # The same eight: filters and orders are subqueries inside query 4.
    with django_assert_num_queries(8):
        response = warm_api.get(
            "/runs",
            query={"experiment": "counted", "filter": "metrics.f1 > 0.5 AND params.lr = '1'", "order_by": "metrics.f1"},
        )
    assert len(response.json()["items"]) == n


@pytest.mark.parametrize("n", SIZES)
def test_experiments_list(warm_api, django_assert_num_queries, n):
    for i in range(n):
        ExperimentFactory(name=f"counted-{i:02}")
    # 1. the token, with its user
    # 2. the page of experiments
    with django_assert_num_queries(2):
        items = warm_api.get("/experiments", query={"q": "counted", "limit": 100}).json()["items"]
    assert len(items) == n


# --- The hot write and resolve paths: constant whatever the batch, the files or the metrics ---------------------------


@pytest.mark.parametrize("n", SIZES)
def test_log_batch(warm_api, django_assert_num_queries, run_id, n):
    metrics = [{"key": f"m{k}", "value": 0.5, "step": s} for k in range(n) for s in range(3)]
    params = {f"p{k}": str(k) for k in range(n)}
    # 1. the token, with its user        2. the run
    # (the transaction is a savepoint inside the test's: SAVEPOINT and RELEASE)
    # 3. params: insert the new ones (answering with their keys: none was logged before, so none is read back)
    # 4. the series rows: created or their summaries updated, one upsert     5. the points (COPY or executemany)
    # 6. the run's tags, locked          7. the tags written
    with django_assert_num_queries(9):
        response = warm_api.post(
            f"/runs/{run_id}/log-batch", {"metrics": metrics, "params": params, "tags": {"phase": "train"}}
        )
    assert response.status_code == 200 and response.json() == {"metrics": 3 * n, "params": n, "tags": 1}


@pytest.mark.parametrize("n", SIZES)
def test_register_version(warm_api, django_assert_num_queries, user, n):
    run = RunFactory(user=user, experiment=ExperimentFactory(owner=user))
    for k in range(n):
        ArtifactFileFactory(run=run, path=f"model/part-{k}.bin")
        MetricSeriesFactory(run=run, key=f"metric-{k}", last_value=0.5)
    RegisteredModelFactory(name="fraud", owner=user)
    # 1. the token, with its user   2. the model, by name, with the user's level on it   3. the run, with the
    # user's level on its experiment
    # (the transaction is a savepoint inside the test's: SAVEPOINT and RELEASE)
    # 4. next version number (UPDATE ... RETURNING)   5. the version (on PostgreSQL 4 and 5 are one statement)
    # 6. the run's files under the folder copied, one INSERT ... SELECT   7. their scan verdicts (an unsafe one is
    # told now; the answer shows them)   8. the audit event   9. active webhooks
    # 10. the run's metric values
    with django_assert_num_queries(11 if connection.vendor == "postgresql" else 12):
        response = warm_api.post("/models/fraud/versions", {"run_id": run.pk, "artifact_path": "model"})
    body = response.json()
    assert response.status_code == 201 and body["version"] == 1
    assert len(body["artifacts"]) == n and len(body["metrics"]) == n and body["aliases"] == []


@pytest.mark.parametrize("n", SIZES)
def test_resolve(warm_api, django_assert_num_queries, user, n):
    run = RunFactory(user=user)
    version = ModelVersionFactory(model=RegisteredModelFactory(name="fraud"), run=run, created_by=user)
    for k in range(n):
        ArtifactFileFactory(run=None, version=version, path=f"part-{k}.bin")
        MetricSeriesFactory(run=run, key=f"metric-{k}", last_value=0.5)
    ModelAliasFactory(model=version.model, version=version, alias="champion")
    # 1. the token, with its user   2. the version, with its model and creator
    # 3. the run's metric values    4. the version's files   5. its aliases   6. the files' scan verdicts
    with django_assert_num_queries(6):
        response = warm_api.get("/resolve", query={"ref": "fraud@champion"})
    body = response.json()
    assert response.status_code == 200 and body["version"] == version.version and body["aliases"] == ["champion"]
    assert len(body["artifacts"]) == n and len(body["metrics"]) == n and body["created_by"] == user.username
