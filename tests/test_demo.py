"""`manage.py demo`: really trained models, with everything the dashboard shows, created once."""

from __future__ import annotations

import io
import pickle
import platform
from collections import Counter

import pytest
from django.core.management import call_command
from django.db.models import Count

from registry.catalog.blobs import artifact_open, artifact_storage
from registry.catalog.models import ArtifactFile, ModelAlias, ModelCard, ModelVersion, RegisteredModel
from registry.governance.models import StageChange
from registry.governance.models import StageTransitionRequest as Request
from registry.tracking.models import Dataset, MetricPoint, MetricSeries, Param, Run, RunInput, RunStep
from tests.factories import RegisteredModelFactory

pytest.importorskip("sklearn")

pytestmark = pytest.mark.django_db


def run_demo(**options) -> str:
    out = io.StringIO()
    call_command("demo", size="small", stdout=out, **options)
    return out.getvalue()


def counts() -> dict[str, int]:
    tables = [RegisteredModel, ModelVersion, Run, Param, MetricSeries, MetricPoint, Dataset, RunInput, RunStep]
    tables += [ArtifactFile, StageChange, ModelAlias, Request]
    return {table.__name__: table.objects.count() for table in tables}


def test_demo_trains_and_registers_models_once():
    output = run_demo()

    models = list(RegisteredModel.objects.annotate(n=Count("versions")).order_by("name"))
    assert len(models) >= 3
    assert all(model.n >= 6 for model in models), [(m.name, m.n) for m in models]
    assert "Created iris-classifier with 6 versions." in output

    check_runs()
    check_datasets()
    check_artifacts_load_into_working_estimators()
    check_stages_aliases_and_the_pending_request(models)

    before = counts()
    again = run_demo()
    assert counts() == before
    assert "Skipped iris-classifier" in again


def check_runs():
    versions = list(ModelVersion.objects.select_related("model", "run__experiment", "created_by"))
    runs = [v.run for v in versions]
    assert all(runs) and len({r.pk for r in runs}) == len(versions), "each version comes from its own run"
    demo_user = versions[0].created_by
    assert demo_user.username == "demo"
    assert not demo_user.is_superuser and not demo_user.has_usable_password()
    assert {v.created_by_id for v in versions} == {demo_user.pk}

    for version in versions:
        run = version.run
        assert run.experiment.name == version.model.name, "one experiment per model"
        assert run.status == Run.Status.FINISHED and run.end_time >= run.start_time
        assert run.user_id == demo_user.pk
        assert run.python_version == platform.python_version()
        assert run.platform == platform.platform()
        assert "scikit-learn" in run.packages and "Django" in run.packages
        assert run.entry_point.startswith("registry/demo/")
        assert run.image
        assert run.tags["demo"] == "true"
        steps = list(run.steps.all())
        assert [s.name for s in steps] == ["load data", "train", "evaluate", "log model"]
        assert all(s.status == "succeeded" and s.started_at <= s.ended_at for s in steps)
        # The MLmodel the demo writes gives each version its signature; each model has a card for reviewers.
        assert version.signature["source"] == "MLmodel" and version.signature["inputs"]
        card = ModelCard.objects.get(model=version.model, version__isnull=True)
        assert card.sections["intended_use"] and card.sections["limitations"]

    # Hyperparameters differ between the versions of a model.
    iris_runs = Run.objects.filter(model_versions__model__name="iris-classifier")
    configurations = {
        tuple(sorted(run.params.filter(key__in=["loss", "alpha", "learning_rate", "eta0"]).values_list("key", "value")))
        for run in iris_runs
    }
    assert len(configurations) == iris_runs.count() == 6

    # Every run logged histories of at least 100 steps, and the summaries agree with the points.
    histories = MetricSeries.objects.filter(count__gte=100)
    assert set(histories.values_list("run", flat=True)) == {r.pk for r in runs}
    iris_history = histories.filter(run__in=iris_runs, key="val_accuracy").first()
    assert iris_history.points.count() == iris_history.count == 100
    assert sorted(iris_history.points.values_list("step", flat=True)) == list(range(1, 101))
    assert {"train_loss", "val_loss", "val_f1"} <= set(
        histories.filter(run=iris_history.run).values_list("key", flat=True)
    )
    assert MetricSeries.objects.filter(key="test_accuracy", count=1).exists()
    assert MetricSeries.objects.filter(key="val_rmse", count__gte=100).exists()
    assert MetricSeries.objects.filter(key__in=["test_rmse", "test_mae", "test_r2"]).count() == 18


def check_datasets():
    datasets = list(Dataset.objects.all())
    assert datasets
    assert len({d.digest for d in datasets}) == len(datasets)
    for dataset in datasets:
        assert dataset.num_rows > 0
        assert dataset.schema and set(dataset.profile["columns"]) == {c["name"] for c in dataset.schema}
    iris_train = Dataset.objects.filter(name="iris-train").first()
    petal = iris_train.profile["columns"]["petal length (cm)"]
    assert sum(petal["histogram"]["counts"]) == iris_train.num_rows
    assert {t["value"] for t in iris_train.profile["columns"]["species"]["top"]} == {
        "setosa",
        "versicolor",
        "virginica",
    }

    # Each run names its training, validation and evaluation data; versions of a model share them...
    contexts = Counter(RunInput.objects.values_list("context", flat=True))
    assert contexts["training"] == contexts["evaluation"] == ModelVersion.objects.count()
    # ...except one iris version, evaluated on another split: a different digest under the same name.
    iris_tests = RunInput.objects.filter(context="evaluation", dataset__name="iris-test")
    per_digest = Counter(iris_tests.values_list("dataset__digest", flat=True))
    assert sorted(per_digest.values()) == [1, 5]


def check_artifacts_load_into_working_estimators():
    from registry.demo.recipes import load_split

    storage = artifact_storage()
    for model in RegisteredModel.objects.all():
        for version in model.versions.all():
            paths = set(version.artifacts.values_list("path", flat=True))
            assert {"model.pkl", "MLmodel", "requirements.txt"} <= paths
        version = model.versions.get(stage="Production")
        artifact = version.artifacts.get(path="model.pkl")
        assert storage.exists(artifact.storage_key)
        with artifact_open(artifact) as handle:
            estimator = pickle.load(handle)
        with artifact_open(version.artifacts.get(path="MLmodel")) as handle:
            assert b"sklearn_version" in handle.read()
        data = load_split(version.run.tags["dataset"])
        predictions = estimator.predict(data.test.X)
        assert len(predictions) == len(data.test.y)
        if data.classes is not None:
            assert set(predictions) <= set(data.classes)
            assert (predictions == data.test.y).mean() > 0.7


def check_stages_aliases_and_the_pending_request(models):
    for model in models:
        stages = Counter(model.versions.values_list("stage", flat=True))
        assert stages["Production"] == 1 and stages["Staging"] == 1 and stages["Archived"] >= 1
        production = model.versions.get(stage="Production")
        staging = model.versions.get(stage="Staging")
        aliases = dict(model.aliases.values_list("alias", "version"))
        assert aliases == {"champion": production.pk, "challenger": staging.pk}
        # The archived version was in Production before the champion replaced it.
        archived = model.versions.get(stage="Archived")
        history = list(archived.stage_changes.order_by("changed_at", "id").values_list("to_stage", "kind"))
        assert history == [("Staging", "direct"), ("Production", "approval"), ("Archived", "archive_existing")]
        assert production.stage_changes.filter(to_stage="Production").exists()

    pending = Request.objects.get(status=Request.Status.PENDING)
    assert pending.from_stage == pending.version.stage
    assert pending.to_stage in ("Production", "Staging")
    assert pending.requested_by.username == "demo"
    assert pending.comment
    assert pending.evidence["metrics"]["test_accuracy"] > 0


def test_if_empty_does_nothing_when_the_registry_has_a_model():
    RegisteredModelFactory(name="someone-elses-model")
    output = run_demo(if_empty=True)
    assert "no demo data added" in output
    assert RegisteredModel.objects.count() == 1
    assert not Run.objects.exists()
