"""MLflow model registry endpoints: registered models, versions, tags, aliases and stages.

A version's source must name files this registry stores (a logged model, or a run's artifact folder); stage moves go
through governance, and one that needs approval becomes a pending request instead (see registry.mlflow_compat).
"""

from __future__ import annotations

from django.db.models import Max
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from registry.catalog import services as catalog
from registry.catalog.errors import AlreadyExists
from registry.catalog.models import ModelVersion, RegisteredModel, Stage
from registry.governance import services as governance
from registry.lib.errors import NotFound
from registry.lib.references import Reference
from registry.mlflow_compat import search, services, wire
from registry.mlflow_compat.auth import Caller
from registry.mlflow_compat.errors import RESOURCE_ALREADY_EXISTS, MlflowError, invalid, not_found
from registry.mlflow_compat.inputs import Params, page
from registry.mlflow_compat.views.common import model_or_404, models_for_output, version_or_404, versions_for_output

SEARCH_MODELS_DEFAULT = 100
SEARCH_MODELS_MAX = 1000
SEARCH_VERSIONS_DEFAULT = 10_000
SEARCH_VERSIONS_MAX = 200_000


def _latest_by_model(models: list[RegisteredModel]) -> dict[int, list[ModelVersion]]:
    """{model id: the newest version in each stage}, in two queries whatever the number of models."""
    if not models:
        return {}
    newest = (
        ModelVersion.objects.filter(model__in=models)
        .order_by()
        .values("model_id", "stage")
        .annotate(number=Max("version"))
    )
    wanted = {(row["model_id"], row["number"]) for row in newest}
    by_model: dict[int, list[ModelVersion]] = {}
    candidates = ModelVersion.objects.filter(model__in=models, version__in={n for _, n in wanted}).select_related(
        "created_by"
    )
    for version in candidates.order_by("version"):
        if (version.model_id, version.version) in wanted:
            by_model.setdefault(version.model_id, []).append(version)
    return by_model


def _model_body(model: RegisteredModel, user) -> dict:
    model = model_or_404(model.name, user, details=True)
    return {"registered_model": wire.registered_model_json(model, _latest_by_model([model]).get(model.pk, []))}


def _version_body(version: ModelVersion, user) -> dict:
    return {"model_version": wire.version_json(version_or_404(version.model.name, str(version.version), user))}


# --- Registered models ----------------------------------------------------------------------------------------------


def create_registered_model(request: HttpRequest, params: Params, caller: Caller) -> dict:
    name = params.str("name", required=True)
    try:
        model = catalog.model_create(
            name=name,
            by=caller.user,
            description=params.str("description"),
            tags=services.checked_tags(params.objects("tags"), "registered model tag"),
        )
    except AlreadyExists:
        raise _model_exists(name) from None
    return _model_body(model, caller.user)


def _model_exists(name: str) -> MlflowError:
    return MlflowError(RESOURCE_ALREADY_EXISTS, f"Registered Model (name={name}) already exists.")


def get_registered_model(request: HttpRequest, params: Params, caller: Caller) -> dict:
    return _model_body(model_or_404(params.str("name", required=True), caller.user), caller.user)


def rename_registered_model(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    new_name = params.str("new_name", required=True)
    try:
        catalog.model_rename(model=model, new_name=new_name, by=caller.user)
    except AlreadyExists:
        raise _model_exists(new_name) from None
    return _model_body(model, caller.user)


def update_registered_model(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    if "description" in params:
        catalog.model_update(model=model, by=caller.user, description=params.str("description"))
    return _model_body(model, caller.user)


def delete_registered_model(request: HttpRequest, params: Params, caller: Caller) -> dict:
    catalog.model_delete(model=model_or_404(params.str("name", required=True), caller.user), by=caller.user)
    return {}


def search_registered_models(request: HttpRequest, params: Params, caller: Caller) -> dict:
    queryset = search.filter_rows(
        models_for_output().readable_by(caller.user),
        params.str("filter"),
        search.MODEL_ATTRIBUTES,
        missing_tag_differs=True,
    )
    queryset = search.order_rows(queryset, params.strings("order_by"), search.MODEL_ATTRIBUTES, ["name", "pk"])
    rows, token = page(queryset, params, default=SEARCH_MODELS_DEFAULT, maximum=SEARCH_MODELS_MAX)
    latest = _latest_by_model(rows)
    body = {"registered_models": [wire.registered_model_json(m, latest.get(m.pk, [])) for m in rows]}
    if token:
        body["next_page_token"] = token
    return body


def get_latest_versions(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    versions = services.latest_versions(model, params.strings("stages"))
    return {"model_versions": [wire.version_json(v, model.name) for v in wire.with_scans(list(versions))]}


def set_registered_model_tag(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    tags = services.checked_tags([{"key": params.raw("key"), "value": params.raw("value")}], "registered model tag")
    for key, value in tags.items():
        catalog.model_tag_set(model=model, key=key, value=value, by=caller.user)
    return {}


def delete_registered_model_tag(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    catalog.model_tag_set(model=model, key=params.str("key", required=True), value=None, by=caller.user)
    return {}


# --- Versions -------------------------------------------------------------------------------------------------------


def create_model_version(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    version = services.version_register(
        model=model,
        source=params.str("source", required=True, max_length=2048),
        host=request.get_host(),
        by=caller.user,
        run_id=params.str("run_id"),
        model_id=params.str("model_id"),
        description=params.str("description"),
        tags=services.checked_tags(params.objects("tags"), "model version tag"),
    )
    # Answered from what was just written: a new version has no aliases yet.
    return {"model_version": wire.version_json(version, model.name, aliases=[])}


def get_model_version(request: HttpRequest, params: Params, caller: Caller) -> dict:
    version = _version(params, caller)
    return {"model_version": wire.version_json(version)}


def _version(params: Params, caller: Caller) -> ModelVersion:
    return version_or_404(params.str("name", required=True), params.str("version", required=True), caller.user)


def update_model_version(request: HttpRequest, params: Params, caller: Caller) -> dict:
    version = _version(params, caller)
    if "description" in params:
        catalog.version_update(version=version, by=caller.user, description=params.str("description"))
    return _version_body(version, caller.user)


def delete_model_version(request: HttpRequest, params: Params, caller: Caller) -> dict:
    catalog.version_delete(version=_version(params, caller), by=caller.user)
    return {}


def transition_model_version_stage(request: HttpRequest, params: Params, caller: Caller) -> dict:
    """Moves now where the model's policy allows it; where it needs approval the stage is not moved, a request is
    opened (or the pending one named) and the answer is PERMISSION_DENIED saying so (MLflow's API cannot carry an
    approval, a comment or a gate override)."""
    version = _version(params, caller)
    try:
        stage = Stage.parse(params.str("stage", required=True))
    except ValueError as exc:
        raise invalid(str(exc)) from None
    governance.stage_move(
        version=version,
        to_stage=stage,
        by=caller.user,
        archive_existing=params.bool("archive_existing_versions"),
        comment="Through the MLflow API (transition_model_version_stage).",
    )
    return _version_body(version, caller.user)


def search_model_versions(request: HttpRequest, params: Params, caller: Caller) -> dict:
    queryset = search.filter_rows(
        versions_for_output().readable_by(caller.user).alias(lineage_run_id=Coalesce("run_id", "external_run_id")),
        params.str("filter"),
        search.VERSION_ATTRIBUTES,
        missing_tag_differs=True,
    )
    # As MLflow: newest change first by default; explicit orders are broken by name, then newest version.
    orders = params.strings("order_by")
    queryset = search.order_rows(
        queryset,
        orders,
        search.VERSION_ATTRIBUTES,
        ["model__name", "-version"] if orders else ["-updated_at", "model__name", "-version"],
    )
    rows, token = page(queryset, params, default=SEARCH_VERSIONS_DEFAULT, maximum=SEARCH_VERSIONS_MAX)
    body = {"model_versions": [wire.version_json(v) for v in wire.with_scans(list(rows))]}
    if token:
        body["next_page_token"] = token
    return body


def get_model_version_download_uri(request: HttpRequest, params: Params, caller: Caller) -> dict:
    return {"artifact_uri": wire.version_artifact_uri(_version(params, caller))}


def set_model_version_tag(request: HttpRequest, params: Params, caller: Caller) -> dict:
    version = _version(params, caller)
    tags = services.checked_tags([{"key": params.raw("key"), "value": params.raw("value")}], "model version tag")
    for key, value in tags.items():
        catalog.version_tag_set(version=version, key=key, value=value, by=caller.user)
    return {}


def delete_model_version_tag(request: HttpRequest, params: Params, caller: Caller) -> dict:
    version = _version(params, caller)
    catalog.version_tag_set(version=version, key=params.str("key", required=True), value=None, by=caller.user)
    return {}


# --- Aliases --------------------------------------------------------------------------------------------------------


def set_registered_model_alias(request: HttpRequest, params: Params, caller: Caller) -> dict:
    """A protected alias (by default champion and production) moves like a Production stage: for callers who may
    not approve that directly, a request is opened and the answer is PERMISSION_DENIED naming it."""
    version = _version(params, caller)
    governance.alias_set(model=version.model, alias=params.str("alias", required=True), version=version, by=caller.user)
    return {}


def delete_registered_model_alias(request: HttpRequest, params: Params, caller: Caller) -> dict:
    model = model_or_404(params.str("name", required=True), caller.user)
    alias = params.str("alias", required=True)
    try:
        governance.alias_delete(model=model, alias=alias, by=caller.user)
    except NotFound:
        raise not_found(f"Registered model alias {alias} not found.") from None
    return {}


def get_model_version_by_alias(request: HttpRequest, params: Params, caller: Caller) -> dict:
    name, alias = params.str("name", required=True), params.str("alias", required=True)
    try:
        # What serving code calls on every start: the same hand-written lookup as /api/v1/resolve.
        version = ModelVersion.objects.resolve(Reference(model=name, alias=alias), caller.user)
    except ModelVersion.DoesNotExist:
        model_or_404(name, caller.user)
        raise not_found(f"Registered model alias {alias} not found.") from None
    return {"model_version": wire.version_json(version, aliases=version.alias_names())}
