"""Lineage graphs (registry.lib.lineage, registry.web.lineage): what a version and a dataset are linked to, links on
every node, only what the user may read, the text list beside the SVG, and a constant number of queries."""

from __future__ import annotations

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.catalog import artifact_files
from registry.catalog import services as catalog
from registry.catalog.models import Stage
from registry.lib.lineage import Graph, Node
from registry.mlflow_compat import services as mlflow
from registry.tracking import services as tracking
from tests.builders import alias_set, dataset_register, run_input_add, version_stage_set
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings):
    """olga's run read "train" and "holdout", logged a model and was registered as churn v1 (Production,
    @champion), as churn v2, and as "secret" v1, a model only olga may read; rhea may read churn and the experiment."""
    settings.REGISTRY_DEFAULT_PERMISSION = 0
    olga, rhea = UserFactory(username="olga"), UserFactory(username="rhea")
    experiment = tracking.experiment_create(name="churn-training", by=olga)
    run = tracking.run_create(experiment=experiment, by=olga, name="gbm")
    artifact_files.artifact_store(owner=run, path="model/model.pkl", stream=io.BytesIO(b"w"), by=olga)
    train = dataset_register(name="train", digest="a" * 64)
    run_input_add(run=run, dataset=train, context="training")
    run_input_add(run=run, dataset=dataset_register(name="holdout", digest="b" * 64), context="evaluation")
    logged = mlflow.logged_model_create(
        by=olga, experiment=experiment, run=run, name="gbm-model", model_type="", tags={}, params={}
    )
    churn = catalog.model_create(name="churn", by=olga)
    v1 = catalog.version_create(model=churn, by=olga, run=run, artifact_path="model", source=f"models:/{logged.pk}")
    catalog.version_create(model=churn, by=olga, run=run, artifact_path="model")
    secret = catalog.model_create(name="secret", by=olga)
    catalog.version_create(model=secret, by=olga, run=run, artifact_path="model")
    version_stage_set(version=v1, stage=Stage.PRODUCTION)
    alias_set(model=churn, alias="champion", version=v1)
    catalog.model_grant_set(model=churn, by=olga, user=rhea, level="READ")
    tracking.experiment_grant_set(experiment=experiment, by=olga, user=rhea, level="READ")
    return {"olga": olga, "rhea": rhea, "run": run, "train": train, "logged": logged}


def labels(response) -> dict[str, list[str]]:
    graph = response.context["graph"]
    return {
        kind: sorted(n.label for n in graph.of_kind(kind))
        for kind in ("dataset", "run", "logged_model", "version", "alias", "stage")
    }


def test_a_version_graph_runs_from_its_data_to_its_aliases_and_stages(client, world):
    client.force_login(world["olga"])
    response = client.get("/models/churn/versions/1/lineage/")
    assert response.status_code == 200
    assert labels(response) == {
        "dataset": ["holdout", "train"],
        "run": ["gbm"],
        "logged_model": ["gbm-model"],
        "version": ["churn v1", "churn v2", "secret v1"],
        "alias": ["@champion"],
        "stage": ["Production"],
    }
    graph = response.context["graph"]
    edges = {(e.source.label, e.target.label) for e in graph.edges}
    assert {("train", "gbm"), ("gbm", "gbm-model"), ("gbm-model", "churn v1"), ("gbm", "churn v2")} <= edges
    assert {("churn v1", "@champion"), ("churn v1", "Production")} <= edges
    assert [n.label for n in graph.nodes.values() if n.focus] == ["churn v1"]
    body = response.content.decode()
    # Drawn as SVG with a link on every node, and the same graph as a list of real links.
    assert body.count('tabindex="-1">') == len(graph.nodes) == 9
    assert '<a href="/models/churn/versions/1/" tabindex="-1">' in body
    assert f'<a href="/datasets/{world["train"].pk}/">train</a>' in body
    assert 'aria-hidden="true"' in body and "<script" not in body.split("<main", 1)[-1].split("</main>")[0]


def test_copies_in_models_the_user_may_not_read_stay_hidden(client, world):
    client.force_login(world["rhea"])
    response = client.get("/models/churn/versions/1/lineage/")
    assert labels(response)["version"] == ["churn v1", "churn v2"]
    assert "secret" not in response.content.decode()
    assert client.get("/models/secret/versions/1/lineage/").status_code == 404


def test_a_dataset_graph_shows_everything_it_fed(client, world):
    client.force_login(world["rhea"])
    response = client.get(f"/datasets/{world['train'].pk}/lineage/")
    assert response.status_code == 200
    found = labels(response)
    assert found["dataset"] == ["train"] and found["run"] == ["gbm"]
    assert found["version"] == ["churn v1", "churn v2"] and found["alias"] == ["@champion"]
    outsider = UserFactory(username="otto")
    client.force_login(outsider)
    assert client.get(f"/datasets/{world['train'].pk}/lineage/").status_code == 404


def _many_more(world, n: int) -> None:
    """n more runs that read "train", each registered as two versions with an alias."""
    olga = world["olga"]
    experiment = world["run"].experiment
    churn = catalog.model_create(name=f"wide-{n}", by=olga)
    for i in range(n):
        run = tracking.run_create(experiment=experiment, by=olga, name=f"r{i}")
        artifact_files.artifact_store(owner=run, path="m/x", stream=io.BytesIO(b"w"), by=olga)
        run_input_add(run=run, dataset=world["train"], context="training")
        for _ in range(2):
            version = catalog.version_create(model=churn, by=olga, run=run, artifact_path="m")
        alias_set(model=churn, alias=f"a{i}", version=version)


@pytest.mark.parametrize("extra", [0, 30])
def test_the_dataset_graph_costs_the_same_queries_whatever_its_size(client, world, extra):
    _many_more(world, extra)
    client.force_login(world["olga"])
    url = f"/datasets/{world['train'].pk}/lineage/"
    # session, user, the dataset (readable), then inputs with runs, logged models, versions, aliases.
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert len(queries) <= 8, [q["sql"][:120] for q in queries]
    assert len(response.context["graph"].of_kind("version")) == 3 + min(2 * extra, 37)


@pytest.mark.parametrize("extra", [0, 30])
def test_the_version_graph_costs_the_same_queries_whatever_its_size(
    client, world, django_assert_max_num_queries, extra
):
    olga = world["olga"]
    model = catalog.model_create(name="copies", by=olga)
    for i in range(extra):
        version = catalog.version_create(model=model, by=olga, run=world["run"], artifact_path="model")
        alias_set(model=model, alias=f"c{i}", version=version)
    client.force_login(olga)
    # session, user, the version (model, run, experiment joined) and olga's level, then inputs with datasets,
    # logged models, versions, aliases.
    with django_assert_max_num_queries(8):
        response = client.get("/models/churn/versions/1/lineage/")
    assert len(response.context["graph"].of_kind("version")) == min(3 + extra, 40)


def test_more_than_the_bound_is_said_not_drawn(client, world):
    _many_more(world, 25)
    client.force_login(world["olga"])
    response = client.get(f"/datasets/{world['train'].pk}/lineage/")
    assert "Large lineage" in response.content.decode()


def test_layout_orders_columns_by_their_sources_and_leaves_empty_ones_out():
    graph = Graph()
    for name in ("a", "b"):
        graph.add(Node(f"dataset:{name}", "dataset", name))
    graph.add(Node("version:2", "version", "v2"))
    graph.add(Node("version:1", "version", "v1"))
    graph.link("dataset:a", "version:1")
    graph.link("dataset:b", "version:2")
    graph.layout()
    assert [title for title, _ in graph.columns] == ["Datasets", "Versions"]
    assert graph.nodes["version:1"].y < graph.nodes["version:2"].y  # follows its source, a, which is above b
    assert graph.width == 2 * 12 + 2 * 184 + 64
    [edge, _] = graph.edges
    assert edge.path.startswith(f"M{12 + 184},")
