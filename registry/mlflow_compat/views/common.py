"""Loading rows for the MLflow endpoints: one helper per object, answering RESOURCE_DOES_NOT_EXIST in MLflow's words,
and the permission checks that go with writing."""

from __future__ import annotations

from django.db.models import Prefetch

from registry import rawsql
from registry.catalog.models import ModelAlias, ModelVersion, RegisteredModel
from registry.mlflow_compat.errors import denied, invalid, not_found
from registry.mlflow_compat.inputs import Params
from registry.mlflow_compat.models import LoggedModel, RunModelLink
from registry.tracking.models import Experiment, MetricSeries, Param, Run, RunInput

DEFAULT_EXPERIMENT_ID = "0"  # what MLflow clients send when no experiment was chosen


def is_row_id(text: str) -> bool:
    """Digits that fit a 64-bit primary key (a longer number would overflow the database's integer)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def experiment_or_404(experiment_id: str) -> Experiment:
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        return Experiment.default()
    if not is_row_id(experiment_id):
        raise invalid(f"Experiment ids are numbers (got {experiment_id!r}).")
    experiment = Experiment.objects.filter(pk=int(experiment_id)).first()
    if experiment is None:
        raise not_found(f"No experiment with id {experiment_id}.")
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


def run_or_404(run_id: str, *, details: bool = False) -> Run:
    if not run_id:
        raise invalid("Missing value for required parameter 'run_id'.")
    # Every logging call starts here: without details, one hand-written query (see registry.rawsql) that leaves the
    # installed packages (often hundreds) unread.
    if details:
        run = runs_for_output().filter(pk=run_id.lower()).first()
    else:
        run = rawsql.get(Run, pk=run_id.lower(), defer=Run.HEAVY_FIELDS)
    if run is None:
        raise not_found(f"Run with id={run_id} not found.")
    return run


def require_run_writer(user, run: Run) -> None:
    """Runs are written by whoever created them, or by staff (as in our own API); deleted runs not at all."""
    if run.user_id not in (None, user.pk) and not (user.is_staff or user.is_superuser):
        raise denied(f"Run {run.pk} belongs to {run.user}; only its owner or staff may change it.")
    if run.deleted_at is not None:
        raise invalid(f"The run {run.pk} must be in the 'active' state; it is deleted.")


def writable_run(params: Params, user) -> Run:
    run = run_or_404(run_id_param(params))
    require_run_writer(user, run)
    return run


def models_for_output():
    aliases = ModelAlias.objects.select_related("version").only("model_id", "alias", "version__version")
    return RegisteredModel.objects.select_related("owner").prefetch_related(
        Prefetch("aliases", queryset=aliases.order_by("alias"))
    )


def model_or_404(name: str, *, details: bool = False) -> RegisteredModel:
    if not name:
        raise invalid("Missing value for required parameter 'name'.")
    queryset = models_for_output() if details else RegisteredModel.objects.all()
    model = queryset.filter(name=name).first()
    if model is None:
        raise not_found(f"Registered Model with name={name} not found")
    return model


def versions_for_output():
    """Versions with what wire.version_json shows: model, creator's name, alias names (as a plain list: a related
    manager per row costs more than the row on a page of thousands)."""
    return ModelVersion.objects.select_related("model", "created_by").prefetch_related(
        Prefetch("aliases", queryset=ModelAlias.objects.only("id", "alias", "version_id"), to_attr="alias_rows")
    )


def version_or_404(name: str, version: str) -> ModelVersion:
    if not name:
        raise invalid("Missing value for required parameter 'name'.")
    if not is_row_id(str(version)) or int(version) < 1:
        raise invalid(f"Model versions are positive integers (got {version!r}).")
    found = versions_for_output().filter(model__name=name, version=int(version)).first()
    if found is None:
        model_or_404(name)
        raise not_found(f"Model Version (name={name}, version={version}) not found")
    return found


def logged_model_or_404(model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
    queryset = LoggedModel.objects.all() if allow_deleted else LoggedModel.objects.active()
    logged = queryset.filter(pk=model_id).first()
    if logged is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return logged


def require_logged_model_writer(user, logged: LoggedModel) -> None:
    if logged.creator_id not in (None, user.pk) and not (user.is_staff or user.is_superuser):
        raise denied(f"Logged model {logged.pk} belongs to another user; only its creator or staff may change it.")
