"""Loading rows for the MLflow endpoints: one helper per object that checks the caller's access through the
registry's own helpers (catalog.access, tracking.access) and answers RESOURCE_DOES_NOT_EXIST in MLflow's words, for
rows that do not exist and rows the caller may not read alike."""

from __future__ import annotations

from django.db.models import Prefetch

from registry.accounts.access import level_of
from registry.catalog.access import model_for, version_for
from registry.catalog.models import ModelAlias, ModelVersion, RegisteredModel
from registry.lib.access import Level
from registry.lib.errors import NotFound
from registry.mlflow_compat.errors import invalid, not_found
from registry.mlflow_compat.inputs import Params
from registry.mlflow_compat.models import LoggedModel, RunModelLink
from registry.tracking.access import require_experiment, run_for
from registry.tracking.models import Experiment, MetricSeries, Param, Run, RunInput

DEFAULT_EXPERIMENT_ID = "0"  # what MLflow clients send when no experiment was chosen


def is_row_id(text: str) -> bool:
    """Digits that fit a 64-bit primary key (a longer number would overflow the database's integer)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def experiment_or_404(experiment_id: str, user, *, need: Level = Level.READ) -> Experiment:
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        experiment = Experiment.default()
    elif not is_row_id(experiment_id):
        raise invalid(f"Experiment ids are numbers (got {experiment_id!r}).")
    else:
        experiment = Experiment.objects.filter(pk=int(experiment_id)).first()
    if experiment is None or level_of(experiment, user) < Level.READ:
        raise not_found(f"No experiment with id {experiment_id}.")
    require_experiment(experiment, user, need)
    return experiment


def experiment_ids(values: list[str]) -> list[int]:
    ids = []
    for value in values:
        if value == DEFAULT_EXPERIMENT_ID:
            ids.append(Experiment.default().pk)
        elif is_row_id(value):
            ids.append(int(value))
        else:
            raise invalid(f"Experiment ids are numbers (got {value!r}).")
    return ids


def runs_for_output():
    """Runs with everything an MLflow Run message holds, one query per relation."""
    return Run.objects.select_related("user").prefetch_related(
        Prefetch("params", queryset=Param.objects.only("id", "run_id", "key", "value").order_by("key")),
        Prefetch("metrics", queryset=MetricSeries.objects.order_by("key")),
        Prefetch("inputs", queryset=RunInput.objects.select_related("dataset").order_by("context", "dataset__name")),
        Prefetch("model_links", queryset=RunModelLink.objects.order_by("direction", "step", "id")),
    )


def run_id_param(params: Params) -> str:
    return (params.str("run_id") or params.str("run_uuid")).lower()


def run_or_404(run_id: str, user, *, details: bool = False, write: bool = False) -> Run:
    """The run, if the caller may read it (and write it: its author with EDIT, or a manager of the experiment; an
    active run). Without details, one hand-written statement: every logging call starts here."""
    if not run_id:
        raise invalid("Missing value for required parameter 'run_id'.")
    try:
        run = run_for(user, run_id, write=write, queryset=runs_for_output() if details else None)
    except NotFound:
        raise not_found(f"Run with id={run_id} not found.") from None
    if write and run.deleted_at is not None:
        raise invalid(f"The run {run.pk} must be in the 'active' state; it is deleted.")
    return run


def writable_run(params: Params, user) -> Run:
    return run_or_404(run_id_param(params), user, write=True)


def models_for_output():
    aliases = ModelAlias.objects.select_related("version").only("model_id", "alias", "version__version")
    return RegisteredModel.objects.select_related("owner").prefetch_related(
        Prefetch("aliases", queryset=aliases.order_by("alias"))
    )


def model_or_404(name: str, user, *, details: bool = False, need: Level = Level.READ):
    if not name:
        raise invalid("Missing value for required parameter 'name'.")
    try:
        return model_for(user, name, need=need, queryset=models_for_output() if details else None)
    except NotFound:
        raise not_found(f"Registered Model with name={name} not found") from None


def versions_for_output():
    """Versions with what wire.version_json shows: model, creator's name, alias names (as a plain list: a related
    manager per row costs more than the row on a page of thousands)."""
    return ModelVersion.objects.select_related("model", "created_by").prefetch_related(
        Prefetch("aliases", queryset=ModelAlias.objects.only("id", "alias", "version_id"), to_attr="alias_rows")
    )


def version_or_404(name: str, version: str, user, *, need: Level = Level.READ) -> ModelVersion:
    if not name:
        raise invalid("Missing value for required parameter 'name'.")
    if not is_row_id(str(version)) or int(version) < 1:
        raise invalid(f"Parameter 'version' must be an integer, got '{version}'.")
    model_or_404(name, user)
    try:
        return version_for(user, name, int(version), need=need, queryset=versions_for_output())
    except NotFound:
        raise not_found(f"Model Version (name={name}, version={version}) not found") from None


def logged_model_or_404(model_id: str, user, *, allow_deleted: bool = False) -> LoggedModel:
    """A logged model of an experiment the caller may read."""
    queryset = LoggedModel.objects.all() if allow_deleted else LoggedModel.objects.active()
    logged = queryset.select_related("experiment").filter(pk=model_id).first()
    if logged is None or level_of(logged.experiment, user) < Level.READ:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return logged
