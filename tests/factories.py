"""factory-boy factories for the registry's models."""

from __future__ import annotations

import hashlib

import factory
from django.contrib.auth import get_user_model
from django.db.models import F

from registry.catalog.models import ArtifactFile, ModelAlias, ModelGrant, ModelVersion, RegisteredModel, Stage
from registry.governance.models import StageChange, StageTransitionRequest
from registry.tracking.models import Dataset, Experiment, MetricPoint, MetricSeries, Param, Run, RunInput, RunStep


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-for-tests-1")


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    name = factory.Sequence(lambda n: f"experiment-{n}")


class RunFactory(factory.django.DjangoModelFactory):
    """A run; given its author (`user`) and no experiment, in a fresh experiment that author owns, as when they log
    it to an experiment of their own."""

    class Meta:
        model = Run

    experiment = factory.Maybe(
        "user",
        factory.SubFactory(ExperimentFactory, owner=factory.SelfAttribute("..user")),
        factory.SubFactory(ExperimentFactory),
    )
    name = factory.Sequence(lambda n: f"run-{n}")
    status = Run.Status.FINISHED
    python_version = "3.11.7"
    platform = "Linux-x86_64"
    packages = factory.LazyFunction(lambda: {"numpy": "2.1.0", "scikit-learn": "1.5.2"})
    git_commit = factory.Sequence(lambda n: f"{n:040x}")


class ParamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Param

    run = factory.SubFactory(RunFactory)
    key = factory.Sequence(lambda n: f"param_{n}")
    value = "1"


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")
    digest = factory.Sequence(lambda n: f"{n:064x}")
    schema = factory.LazyFunction(lambda: [{"name": "x", "type": "float64"}])
    profile = factory.LazyFunction(lambda: {"num_rows": 10, "columns": {}})


class RegisteredModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RegisteredModel

    name = factory.Sequence(lambda n: f"model-{n}")
    description = "A **test** model."


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """Builds rows directly with the next free number; use services.version_create to test numbering itself."""

    class Meta:
        model = ModelVersion

    model = factory.SubFactory(RegisteredModelFactory)
    run = factory.SubFactory(RunFactory)

    @factory.lazy_attribute
    def version(self):
        RegisteredModel.objects.filter(pk=self.model.pk).update(last_version=F("last_version") + 1)
        return RegisteredModel.objects.values_list("last_version", flat=True).get(pk=self.model.pk)


class RunStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RunStep

    run = factory.SubFactory(RunFactory)
    position = factory.Sequence(lambda n: n + 1)
    name = factory.Sequence(lambda n: f"step-{n}")
    status = RunStep.Status.SUCCEEDED


class MetricSeriesFactory(factory.django.DjangoModelFactory):
    """A summary row on its own; use services.metrics_log to test how summaries are kept."""

    class Meta:
        model = MetricSeries

    run = factory.SubFactory(RunFactory)
    key = factory.Sequence(lambda n: f"metric_{n}")
    last_value = 0.5
    min_value = 0.5
    max_value = 0.5
    count = 1


class MetricPointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MetricPoint

    series = factory.SubFactory(MetricSeriesFactory)
    step = factory.Sequence(lambda n: n)
    timestamp = factory.Sequence(lambda n: 1_700_000_000_000 + n)
    value = 0.5


class RunInputFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RunInput

    run = factory.SubFactory(RunFactory)
    dataset = factory.SubFactory(DatasetFactory)
    context = "training"


class ModelGrantFactory(factory.django.DjangoModelFactory):
    """A grant row on its own; use the services to grant (they check who may and record it)."""

    class Meta:
        model = ModelGrant

    model = factory.SubFactory(RegisteredModelFactory)
    user = factory.SubFactory(UserFactory, password=None)
    level = 2


class ModelAliasFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelAlias

    model = factory.SubFactory(RegisteredModelFactory)
    version = factory.SubFactory(ModelVersionFactory, model=factory.SelfAttribute("..model"))
    alias = factory.Sequence(lambda n: f"alias_{n}")


class StageTransitionRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StageTransitionRequest

    version = factory.SubFactory(ModelVersionFactory)
    model = factory.SelfAttribute("version.model")
    from_stage = Stage.NONE
    to_stage = Stage.STAGING
    requested_by = factory.SubFactory(UserFactory, password=None)  # never signs in: skip password hashing
    comment = "Ready for staging."


class StageChangeFactory(factory.django.DjangoModelFactory):
    """A history row on its own; use the governance services to move a version for real."""

    class Meta:
        model = StageChange

    version = factory.SubFactory(ModelVersionFactory)
    model = factory.SelfAttribute("version.model")
    from_stage = Stage.NONE
    to_stage = Stage.STAGING
    changed_by = factory.SubFactory(UserFactory, password=None)  # never signs in: skip password hashing


ABC_SHA256 = hashlib.sha256(b"abc").hexdigest()


class ArtifactFileFactory(factory.django.DjangoModelFactory):
    """A row without a blob behind it; use artifact_files.artifact_store to store real bytes."""

    class Meta:
        model = ArtifactFile

    run = factory.SubFactory(RunFactory)
    version = None
    path = factory.Sequence(lambda n: f"model/file-{n}.bin")
    storage_key = factory.LazyAttribute(lambda a: f"runs/{a.run.pk}/{a.path}" if a.run else f"versions/{a.path}")
    size = 3
    sha256 = ABC_SHA256
