"""Version numbers: 1, 2, 3... per model, with no gap or duplicate even when many clients register at once."""

from __future__ import annotations

import pytest

from registry.catalog.errors import CatalogError
from registry.catalog.models import ArtifactFile, ModelVersion, RegisteredModel
from tests.builders import model_create, version_create
from tests.concurrency import at_once
from tests.factories import RegisteredModelFactory, RunFactory

CONCURRENT_REGISTRATIONS = 32


@pytest.mark.django_db
def test_versions_are_numbered_one_two_three():
    model = model_create(name="churn")
    numbers = [version_create(model=model).version for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert RegisteredModel.objects.get(pk=model.pk).last_version == 3
    assert model.last_version == 3


@pytest.mark.django_db
def test_each_model_has_its_own_sequence():
    first, second = RegisteredModelFactory(), RegisteredModelFactory()
    version_create(model=first)
    version_create(model=first)
    assert version_create(model=second).version == 1
    assert version_create(model=first).version == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_get_exactly_one_to_n():
    """32 threads, each on its own connection, register at the same moment.

    On SQLite they queue on the write lock (IMMEDIATE transactions, busy timeout); on PostgreSQL on the row lock
    that the UPDATE of `last_version` takes.
    """
    model = RegisteredModelFactory()
    versions = at_once(lambda: version_create(model=RegisteredModel.objects.get(pk=model.pk)), CONCURRENT_REGISTRATIONS)

    numbers = [version.version for version in versions]
    assert sorted(numbers) == list(range(1, CONCURRENT_REGISTRATIONS + 1))
    stored = sorted(ModelVersion.objects.filter(model=model).values_list("version", flat=True))
    assert stored == list(range(1, CONCURRENT_REGISTRATIONS + 1))
    assert RegisteredModel.objects.get(pk=model.pk).last_version == CONCURRENT_REGISTRATIONS


@pytest.mark.django_db
def test_failed_registration_does_not_use_up_a_number():
    model = RegisteredModelFactory()
    run = RunFactory()
    assert version_create(model=model).version == 1

    with pytest.raises(CatalogError, match="has no artifacts under 'model'"):
        version_create(model=model, run=run, artifact_path="model")

    assert RegisteredModel.objects.get(pk=model.pk).last_version == 1
    assert list(ModelVersion.objects.filter(model=model).values_list("version", flat=True)) == [1]
    assert not ArtifactFile.objects.exists()
    assert version_create(model=model).version == 2


@pytest.mark.django_db
def test_refused_input_is_refused_before_numbering():
    model = RegisteredModelFactory()
    with pytest.raises(CatalogError, match="needs the run"):
        version_create(model=model, artifact_path="model")
    with pytest.raises(CatalogError, match=r"'\.\.' segments"):
        version_create(model=model, run=RunFactory(), artifact_path="../other-run")
    assert RegisteredModel.objects.get(pk=model.pk).last_version == 0
    assert version_create(model=model).version == 1


@pytest.mark.django_db
def test_registering_for_a_deleted_model_is_refused():
    model = RegisteredModelFactory()
    RegisteredModel.objects.filter(pk=model.pk).delete()
    with pytest.raises(CatalogError, match="no longer exists"):
        version_create(model=model)
    assert not ModelVersion.objects.exists()
