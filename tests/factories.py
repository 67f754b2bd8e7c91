"""factory-boy factories for the registry's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.db.models import F

from registry.catalog.models import ModelVersion, RegisteredModel
from registry.tracking.models import Dataset, Experiment, Param, Run


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
    class Meta:
        model = Run

    experiment = factory.SubFactory(ExperimentFactory)
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
