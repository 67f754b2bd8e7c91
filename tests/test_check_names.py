"""`manage.py check_names`: rows stored before the rules are reported, one line each, never rewritten; exit 1."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from registry.catalog.models import ArtifactFile, ModelAlias, RegisteredModel
from registry.tracking.models import Experiment, Run
from tests.factories import (
    ExperimentFactory,
    ModelAliasFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RunFactory,
)

pytestmark = pytest.mark.django_db


def check_names() -> tuple[str, str | None]:
    out = io.StringIO()
    try:
        call_command("check_names", stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def test_a_clean_registry_passes():
    RegisteredModelFactory(name="churn", tags={"team": "risk", "mlflow.source": "x"})
    ExperimentFactory(name="My Experiment")
    output, error = check_names()
    assert error is None
    assert "follows the rules" in output


def test_every_kind_of_legacy_row_is_reported_and_left_as_it_is():
    # What an older release could store (rows written directly, as it did, past today's services).
    dots = RegisteredModelFactory(name="..")
    RegisteredModelFactory(name="a%2Fb", tags={"a\\b": "x"})
    ExperimentFactory(name="bidi\u202eexp")
    run = RunFactory(tags={"ok": "1", "a?b": "2"})
    version = ModelVersionFactory(model=dots, tags={"#x": "y"})
    ModelAliasFactory(model=dots, version=version, alias="v1")
    ArtifactFile.objects.create(run=run, path="file:/tmp/x", size=1, sha256="0" * 64, storage_key="k1")
    ArtifactFile.objects.create(run=run, path="tmp//x", size=1, sha256="0" * 64, storage_key="k2")
    ArtifactFile.objects.create(run=run, path="fine/model.pkl", size=1, sha256="0" * 64, storage_key="k3")

    output, error = check_names()

    lines = output.strip().splitlines()
    assert error is not None and "9 names or paths break the rules" in error and "nothing was changed" in error
    assert len(lines) == 9, output
    expected = [
        "model '..' (id ",
        "model 'a%2Fb' (id ",
        "experiment 'bidi\\u202eexp' (id ",  # repr: the invisible character shows as its escape
        "alias ..@v1: ",
        "model 'a%2Fb' tag 'a\\\\b': ",
        f"run '{run.pk}' tag 'a?b': ",
        "version ../1 tag '#x': ",
        f"file 'file:/tmp/x' of run {run.pk} (id ",
        f"file 'tmp//x' of run {run.pk} (id ",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, output)
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in output
    assert "fine/model.pkl" not in output
    # Nothing rewritten.
    assert set(RegisteredModel.objects.values_list("name", flat=True)) == {"..", "a%2Fb"}
    assert Experiment.objects.filter(name="bidi\u202eexp").exists()
    assert ModelAlias.objects.get().alias == "v1"
    assert Run.objects.get(pk=run.pk).tags == {"ok": "1", "a?b": "2"}
    assert ArtifactFile.objects.filter(path="tmp//x").exists()


def test_names_differing_only_in_case_are_reported_where_the_database_let_them_in():
    """LOWER() folds ASCII letters only on SQLite, so Ä beside ä can exist there; the command folds fully."""
    RegisteredModelFactory(name="Äpfel")
    try:
        with transaction.atomic():
            RegisteredModelFactory(name="äpfel")
    except IntegrityError:
        pytest.skip("this database's LOWER() folds Ä too: the pair cannot exist")
    output, error = check_names()
    assert error is not None
    assert "models 'Äpfel', 'äpfel': these names differ only in case" in output


def test_the_command_exits_nonzero():
    RegisteredModelFactory(name="..")
    with pytest.raises(CommandError):
        call_command("check_names", stdout=io.StringIO())
