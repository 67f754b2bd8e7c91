"""Every invariant the database holds, proved by writing a row that breaks it past the Python layer.

Rows go in through `.objects.create` / `bulk_create`, which skip model validation, so only the database can refuse
them. Each refusal is checked to come from the named constraint, not from some unrelated NOT NULL or foreign key.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from registry.catalog.models import ArtifactFile, ModelAlias, ModelVersion, RegisteredModel, Stage
from registry.governance.models import StageChange, StageTransitionRequest
from registry.tracking.models import PARAM_VALUE_MAX, Dataset, MetricSeries, Param, Run, RunInput
from tests.factories import (
    ABC_SHA256,
    ArtifactFileFactory,
    DatasetFactory,
    ModelAliasFactory,
    ModelVersionFactory,
    ParamFactory,
    RegisteredModelFactory,
    RunFactory,
    StageTransitionRequestFactory,
)

pytestmark = pytest.mark.django_db


@contextmanager
def refused_by(constraint: str, *, unique_columns: tuple[str, ...] = ()):
    """Expect the block to raise IntegrityError from `constraint`, leaving the test's transaction usable.

    PostgreSQL names the constraint in every message. SQLite names check constraints but reports a unique
    violation by its columns ("UNIQUE constraint failed: table.a, table.b"), so unique constraints pass those.
    """
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        yield
    message = str(excinfo.value)
    if connection.vendor == "sqlite" and unique_columns:
        assert "UNIQUE constraint failed" in message, message
        for column in unique_columns:
            assert f".{column}" in message, message
    else:
        assert constraint in message, message


# --- Model versions -------------------------------------------------------------------------------------------------


def test_model_version_number_is_unique_per_model():
    version = ModelVersionFactory()
    with refused_by("model_version_unique", unique_columns=("model_id", "version")):
        ModelVersion.objects.create(model=version.model, version=version.version)
    # The same number under another model is fine.
    other = ModelVersion.objects.create(model=RegisteredModelFactory(), version=version.version)
    assert other.pk is not None


def test_model_version_number_starts_at_one():
    model = RegisteredModelFactory()
    with refused_by("model_version_positive"):
        ModelVersion.objects.create(model=model, version=0)
    assert ModelVersion.objects.create(model=model, version=1).pk is not None


def test_model_version_stage_must_be_a_known_stage():
    model = RegisteredModelFactory()
    with refused_by("model_version_stage_valid"):
        ModelVersion.objects.create(model=model, version=1, stage="production")  # stages are stored capitalised
    with refused_by("model_version_stage_valid"):
        ModelVersion.objects.bulk_create([ModelVersion(model=model, version=2, stage="Retired")])
    assert ModelVersion.objects.create(model=model, version=3, stage=Stage.PRODUCTION).stage == "Production"


def test_model_version_status_must_be_a_known_status():
    model = RegisteredModelFactory()
    with refused_by("model_version_status_valid"):
        ModelVersion.objects.create(model=model, version=1, status="deleted")
    assert not ModelVersion.objects.filter(model=model).exists()


# --- Registered models and aliases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["team/model", "model@champion", ""])
def test_registered_model_name_refused_by_database(name):
    with refused_by("registered_model_name_valid"):
        RegisteredModel.objects.create(name=name)
    assert not RegisteredModel.objects.filter(name=name).exists()


def test_registered_model_name_is_unique():
    RegisteredModelFactory(name="churn")
    with pytest.raises(IntegrityError), transaction.atomic():
        RegisteredModel.objects.create(name="churn")
    assert RegisteredModel.objects.filter(name="churn").count() == 1


def test_alias_is_unique_per_model():
    alias = ModelAliasFactory(alias="champion")
    other_version = ModelVersionFactory(model=alias.model)
    with refused_by("model_alias_unique", unique_columns=("model_id", "alias")):
        ModelAlias.objects.create(model=alias.model, alias="champion", version=other_version)
    # The same alias on another model is fine.
    assert ModelAliasFactory(alias="champion").pk is not None


def test_alias_must_not_be_empty():
    version = ModelVersionFactory()
    with refused_by("model_alias_not_empty"):
        ModelAlias.objects.create(model=version.model, alias="", version=version)


# --- Params, metrics, datasets --------------------------------------------------------------------------------------


def test_param_key_is_unique_per_run():
    param = ParamFactory(key="lr", value="0.1")
    with refused_by("param_run_key_unique", unique_columns=("run_id", "key")):
        Param.objects.create(run=param.run, key="lr", value="0.2")
    assert Param.objects.get(run=param.run, key="lr").value == "0.1"


def test_param_value_is_at_most_6000_characters():
    run = RunFactory()
    assert Param.objects.create(run=run, key="fits", value="x" * PARAM_VALUE_MAX).pk is not None
    with refused_by("param_value_max_6000"):
        Param.objects.create(run=run, key="too_long", value="x" * (PARAM_VALUE_MAX + 1))
    # Characters, not bytes: 6000 multi-byte characters still fit.
    assert Param.objects.create(run=run, key="accents", value="é" * PARAM_VALUE_MAX).pk is not None


def test_param_key_must_not_be_empty():
    with refused_by("param_key_not_empty"):
        Param.objects.create(run=RunFactory(), key="", value="1")


def test_metric_series_key_is_unique_per_run():
    run = RunFactory()
    MetricSeries.objects.create(run=run, key="loss")
    with refused_by("metric_series_run_key_unique", unique_columns=("run_id", "key")):
        MetricSeries.objects.bulk_create([MetricSeries(run=run, key="loss")])
    assert MetricSeries.objects.create(run=RunFactory(), key="loss").pk is not None


def test_dataset_name_and_digest_are_unique_together():
    dataset = DatasetFactory()
    with refused_by("dataset_name_digest_unique", unique_columns=("name", "digest")):
        Dataset.objects.create(name=dataset.name, digest=dataset.digest)
    # A new digest of the same data set is a new row.
    assert Dataset.objects.create(name=dataset.name, digest="f" * 64).pk is not None


def test_dataset_needs_name_and_digest():
    with refused_by("dataset_name_digest_not_empty"):
        Dataset.objects.create(name="iris", digest="")


def test_run_input_is_unique_per_run_dataset_and_context():
    run, dataset = RunFactory(), DatasetFactory()
    RunInput.objects.create(run=run, dataset=dataset, context="training")
    with refused_by("run_input_unique", unique_columns=("run_id", "dataset_id", "context")):
        RunInput.objects.create(run=run, dataset=dataset, context="training")
    assert RunInput.objects.create(run=run, dataset=dataset, context="validation").pk is not None


# --- Runs -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "run_id",
    ["../../etc/passwd", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef", "g" * 32, "a" * 31 + "-"],
)
def test_run_id_must_be_32_lowercase_hex(run_id):
    experiment = RunFactory().experiment
    with refused_by("run_id_32_hex"):
        Run.objects.create(id=run_id, experiment=experiment)
    assert not Run.objects.filter(id=run_id).exists()


def test_run_cannot_end_before_it_starts():
    start = timezone.now()
    experiment = RunFactory().experiment
    with refused_by("run_end_after_start"):
        Run.objects.create(experiment=experiment, start_time=start, end_time=start - timedelta(seconds=1))
    assert Run.objects.create(experiment=experiment, start_time=start, end_time=start).duration == timedelta(0)


def test_run_status_must_be_known():
    with refused_by("run_status_valid"):
        Run.objects.create(experiment=RunFactory().experiment, status="exploded")


# --- Stage transition requests and history --------------------------------------------------------------------------


def test_transition_request_decision_date_matches_status():
    version = ModelVersionFactory()
    with refused_by("transition_decided_when_not_pending"):
        StageTransitionRequest.objects.create(
            model=version.model,
            version=version,
            from_stage=Stage.NONE,
            to_stage=Stage.STAGING,
            decided_at=timezone.now(),
        )
    with refused_by("transition_decided_when_not_pending"):
        StageTransitionRequest.objects.create(
            model=version.model, version=version, from_stage=Stage.NONE, to_stage=Stage.STAGING, status="approved"
        )
    decided = StageTransitionRequest.objects.create(
        model=version.model,
        version=version,
        from_stage=Stage.NONE,
        to_stage=Stage.STAGING,
        status="approved",
        decided_at=timezone.now(),
    )
    assert decided.pk is not None


def test_one_pending_request_per_version_and_target_stage():
    pending = StageTransitionRequestFactory(to_stage=Stage.PRODUCTION)
    with refused_by("transition_one_pending_per_target", unique_columns=("version_id", "to_stage")):
        StageTransitionRequest.objects.create(
            model=pending.model, version=pending.version, from_stage=Stage.NONE, to_stage=Stage.PRODUCTION
        )
    # Another target stage may be pending at the same time...
    StageTransitionRequestFactory(version=pending.version, to_stage=Stage.STAGING)
    # ...and once the first is decided, a new request for the same target may open.
    StageTransitionRequest.objects.filter(pk=pending.pk).update(status="rejected", decided_at=timezone.now())
    StageTransitionRequestFactory(version=pending.version, to_stage=Stage.PRODUCTION)
    assert StageTransitionRequest.objects.filter(version=pending.version, status="pending").count() == 2


def test_transition_request_must_move_to_another_stage():
    with refused_by("transition_moves"):
        StageTransitionRequestFactory(from_stage=Stage.STAGING, to_stage=Stage.STAGING)


@pytest.mark.parametrize(
    ("field", "constraint"), [("from_stage", "transition_from_valid"), ("to_stage", "transition_to_valid")]
)
def test_transition_request_stages_must_be_known(field, constraint):
    version = ModelVersionFactory()
    values = {"from_stage": Stage.NONE, "to_stage": Stage.STAGING, field: "Live"}
    with refused_by(constraint):
        StageTransitionRequest.objects.create(model=version.model, version=version, **values)


def test_stage_change_must_move_to_another_stage():
    version = ModelVersionFactory()
    with refused_by("stage_change_moves"):
        StageChange.objects.create(
            model=version.model, version=version, from_stage=Stage.PRODUCTION, to_stage=Stage.PRODUCTION
        )
    change = StageChange.objects.create(
        model=version.model, version=version, from_stage=Stage.NONE, to_stage=Stage.PRODUCTION
    )
    assert change.pk is not None


def test_stage_change_kind_and_stages_must_be_known():
    version = ModelVersionFactory()
    base = {"model": version.model, "version": version, "from_stage": Stage.NONE, "to_stage": Stage.STAGING}
    with refused_by("stage_change_kind_valid"):
        StageChange.objects.create(**{**base, "kind": "magic"})
    with refused_by("stage_change_to_valid"):
        StageChange.objects.create(**{**base, "to_stage": "Live"})
    with refused_by("stage_change_from_valid"):
        StageChange.objects.create(**{**base, "from_stage": "Live"})


# --- Artifact files -------------------------------------------------------------------------------------------------


def test_artifact_has_exactly_one_owner():
    run = RunFactory()
    version = ModelVersionFactory()
    common = {"path": "model.pkl", "storage_key": "k", "size": 1, "sha256": ABC_SHA256}
    with refused_by("artifact_one_owner"):
        ArtifactFile.objects.create(run=run, version=version, **common)
    with refused_by("artifact_one_owner"):
        ArtifactFile.objects.create(run=None, version=None, **common)
    assert ArtifactFile.objects.create(run=run, **common).owner == run
    assert ArtifactFile.objects.create(version=version, **common).owner == version


def test_artifact_path_is_unique_per_owner():
    artifact = ArtifactFileFactory(path="model/model.pkl")
    with refused_by("artifact_run_path_unique", unique_columns=("run_id", "path")):
        ArtifactFileFactory(run=artifact.run, path="model/model.pkl")
    version = ModelVersionFactory()
    ArtifactFileFactory(run=None, version=version, path="model.pkl")
    with refused_by("artifact_version_path_unique", unique_columns=("version_id", "path")):
        ArtifactFileFactory(run=None, version=version, path="model.pkl")


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "..", "../secret", "model/..", "a/../../b", "a\\b", "..\\..\\windows"]
)
def test_artifact_path_must_be_relative_and_stay_inside(path):
    with refused_by("artifact_path_relative"):
        ArtifactFileFactory(path=path)
    assert not ArtifactFile.objects.filter(path=path).exists()


def test_artifact_path_may_contain_dots_that_are_not_parent_segments():
    for path in ["model/..hidden", "model/v1..v2/weights", "...", "a/.../b"]:
        assert ArtifactFileFactory(path=path).path == path


@pytest.mark.parametrize("sha256", ["", "abc", ABC_SHA256.upper(), "g" * 64, ABC_SHA256[:-1] + " "])
def test_artifact_sha256_must_be_64_lowercase_hex(sha256):
    with refused_by("artifact_sha256_hex"):
        ArtifactFileFactory(sha256=sha256)
