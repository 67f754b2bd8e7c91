"""Registered models, versions, aliases and reference resolution."""

from __future__ import annotations

from typing import Annotated

from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, Subquery
from django.http import HttpRequest
from ninja import Query, Router, Status
from pydantic import WithJsonSchema

from registry.api.artifacts import artifact_out, version_artifact_url
from registry.api.errors import ApiError
from registry.api.schemas import (
    AliasIn,
    AliasName,
    AliasOut,
    Limit,
    ModelIn,
    ModelOut,
    ModelPage,
    ModelPatch,
    Offset,
    OrderText,
    Reference,
    StageFilter,
    VersionDetailOut,
    VersionIn,
    VersionPage,
    VersionPatch,
    errors,
)
from registry.api.tracking import cursor_page
from registry.catalog import services
from registry.catalog.access import model_for, version_for
from registry.catalog.models import ArtifactFile, ModelAlias, ModelVersion, RegisteredModel, Stage
from registry.governance import services as governance
from registry.keyset import Key
from registry.lib.access import Level
from registry.lib.references import ReferenceError_, parse_reference
from registry.lib.search import parse_filter, parse_order
from registry.scanning import services as scanning
from registry.scanning.models import VersionScan
from registry.tracking.access import run_for
from registry.tracking.models import MetricSeries
from registry.tracking.search import filter_runs, order_runs

router = Router(tags=["models"])
ERRORS = errors()
MODEL_ORDERS = {"name": "name", "-name": "-name", "updated": "updated_at", "-updated": "-updated_at"}

# --- Shaping --------------------------------------------------------------------------------------------------------


def _models_for_output():
    latest = ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-version").values("version")[:1]
    return (
        RegisteredModel.objects.select_related("owner")
        .annotate(latest_version=Subquery(latest))
        .prefetch_related(
            Prefetch(
                "aliases",
                queryset=ModelAlias.objects.select_related("version").only("model_id", "alias", "version__version"),
            ),
            Prefetch(
                "versions",
                queryset=ModelVersion.objects.filter(stage__in=[Stage.STAGING, Stage.PRODUCTION])
                .only("model_id", "version", "stage")
                .order_by("-version"),
                to_attr="staged_versions",
            ),
        )
    )


def model_out(model: RegisteredModel) -> dict:
    by_stage: dict[str, list[int]] = {Stage.STAGING: [], Stage.PRODUCTION: []}
    for version in model.staged_versions:
        by_stage[version.stage].append(version.version)
    return {
        "name": model.name,
        "description": model.description,
        "owner": model.owner.get_username() if model.owner else None,
        "tags": model.tags,
        "latest_version": model.latest_version,
        "versions_by_stage": by_stage,
        "aliases": [{"alias": a.alias, "version": a.version.version} for a in model.aliases.all()],
        "created_at": model.created_at,
        "updated_at": model.updated_at,
    }


def _versions_for_output():
    return ModelVersion.objects.select_related("model", "created_by", "run").prefetch_related(
        Prefetch("aliases", queryset=ModelAlias.objects.only("version_id", "alias")),
        Prefetch("run__metrics", queryset=MetricSeries.objects.only("run_id", "key", "last_value")),
    )


def version_out(version: ModelVersion, *, aliases: list[str] | None = None, metrics: dict | None = None) -> dict:
    """A version as the API shows it; `aliases` and `metrics`, when given, replace reading the prefetched rows."""
    if aliases is None:
        aliases = [a.alias for a in version.aliases.all()]
    if metrics is None:
        metrics = {m.key: m.last_value for m in version.run.metrics.all()} if version.run_id else {}
    return {
        "model": version.model.name,
        "version": version.version,
        "stage": version.stage,
        "status": version.status,
        "source": version.source,
        "run_id": version.run_id,
        "description": version.description,
        "tags": version.tags,
        "signature": version.signature,
        "aliases": aliases,
        "created_by": version.created_by.get_username() if version.created_by else None,
        "created_at": version.created_at,
        "updated_at": version.updated_at,
        "metrics": metrics,
    }


def version_detail_out(version: ModelVersion, *, files: list[ArtifactFile] | None = None, **known) -> dict:
    if files is None:
        files = list(ArtifactFile.objects.filter(version=version).order_by("path"))
    scan = getattr(version, "scan", None) or VersionScan.of(list(scanning.file_scans(files).values()))
    return {
        **version_out(version, **known),
        "artifacts": [artifact_out(a, version_artifact_url(version, a.path)) for a in files],
        "scan": {"verdict": scan.verdict, "files": [vars(f) for f in scan.files]},
    }


VERSION_KEYS = [Key("version", True)]


def _page(queryset, offset: int, limit: int):
    # offset and limit are bounded by their types (Offset, Limit): out of range is a 422 before this runs.
    rows = list(queryset[offset : offset + limit + 1])
    return rows[:limit], (offset + limit if len(rows) > limit else None)


# --- Registered models ----------------------------------------------------------------------------------------------


@router.post("/models", response={201: ModelOut, **ERRORS}, summary="Register a model name")
def create_model(request: HttpRequest, payload: ModelIn):
    model = services.model_create(
        name=payload.name, by=request.user, description=payload.description, tags=payload.tags
    )
    return Status(201, model_out(_models_for_output().get(pk=model.pk)))


@router.get("/models", response={200: ModelPage, **ERRORS}, summary="List and search the models you may read")
def list_models(
    request: HttpRequest,
    q: str = Query("", description="Text in the name or description."),
    tag: str = Query("", description="`key` or `key:value`."),
    stage: StageFilter = Query("", description="Only models with a version in this stage (any case); empty: all."),
    order_by: Annotated[str, WithJsonSchema({"type": "string", "enum": list(MODEL_ORDERS)})] = Query(
        "name", description="name, -name, updated or -updated."
    ),
    offset: Offset = 0,
    limit: Limit = 100,
):
    queryset = _models_for_output().readable_by(request.user)
    if q:
        queryset = queryset.search(q)
    if tag:
        # Not tags__<key>=value: a key such as "contains" or "a__b" would be read as a lookup or a path.
        queryset = queryset.tagged(tag)
    if stage:
        try:
            wanted = Stage.parse(stage)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        queryset = queryset.filter(Exists(ModelVersion.objects.filter(model=OuterRef("pk"), stage=wanted)))
    if order_by not in MODEL_ORDERS:
        raise ApiError(400, f"order_by must be one of {', '.join(MODEL_ORDERS)}.")
    items, next_offset = _page(queryset.order_by(MODEL_ORDERS[order_by], "pk"), offset, limit)
    return {"items": [model_out(m) for m in items], "next_offset": next_offset}


@router.get("/models/{name}", response={200: ModelOut, **ERRORS}, summary="Get a model")
def get_model(request: HttpRequest, name: str):
    return model_out(model_for(request.user, name, queryset=_models_for_output()))


@router.patch(
    "/models/{name}",
    response={200: ModelOut, **ERRORS},
    summary="Rename a model (MANAGE) or edit its description and tags (EDIT)",
)
def update_model(request: HttpRequest, name: str, payload: ModelPatch):
    model = model_for(request.user, name)
    data = {k: v for k, v in payload.dict(exclude_unset=True).items() if v is not None}
    with transaction.atomic():
        if "name" in data:
            services.model_rename(model=model, new_name=data["name"], by=request.user)
        if "description" in data or "tags" in data:
            services.model_update(
                model=model, by=request.user, description=data.get("description"), tags=data.get("tags")
            )
    return model_out(_models_for_output().get(pk=model.pk))


@router.delete("/models/{name}", response={204: None, **ERRORS}, summary="Delete a model and all its versions (MANAGE)")
def delete_model(request: HttpRequest, name: str):
    services.model_delete(model=model_for(request.user, name), by=request.user)
    return Status(204, None)


# --- Versions -------------------------------------------------------------------------------------------------------


@router.post(
    "/models/{name}/versions",
    response={201: VersionDetailOut, **ERRORS},
    summary="Register a new version, usually from a run's artifact folder",
    description="Needs EDIT on the model, and with `run_id` EDIT on the run's experiment.",
)
def create_version(request: HttpRequest, name: str, payload: VersionIn):
    model = model_for(request.user, name, need=Level.EDIT)
    run = run_for(request.user, payload.run_id) if payload.run_id else None
    if payload.artifact_path is not None and run is None:
        raise ApiError(400, "artifact_path needs run_id: the folder is one of that run's artifacts.")
    version = services.version_create(
        model=model,
        by=request.user,
        run=run,
        artifact_path=payload.artifact_path,
        description=payload.description,
        tags=payload.tags,
        signature=payload.signature,
    )
    # Answered from what was just written: a new version has no aliases yet, and its files are the copies made.
    metrics = MetricSeries.objects.last_values(run.pk) if run else {}
    return Status(201, version_detail_out(version, files=version.created_files, aliases=[], metrics=metrics))


@router.get("/models/{name}/versions", response={200: VersionPage, **ERRORS}, summary="List and search versions")
def list_versions(
    request: HttpRequest,
    name: str,
    stage: StageFilter = Query("", description="Only versions in this stage (any case); empty: all."),
    filter: str = Query("", description="e.g. metrics.f1 > 0.9 AND params.max_depth = '6'"),
    order_by: list[OrderText] = Query(
        [],
        description="e.g. metrics.f1 DESC; default newest first. The search grammar: a 400 names what is wrong.",
    ),
    offset: Offset = 0,
    limit: Limit = 100,
    after: str = Query("", description="`next_after` of the previous page (default order only)"),
):
    model = model_for(request.user, name)
    queryset = _versions_for_output().filter(model=model)
    if stage:
        try:
            queryset = queryset.filter(stage=Stage.parse(stage))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    queryset = filter_runs(queryset, parse_filter(filter), run_path="run__")
    orders = [parse_order(text) for text in order_by]
    version_orders = [o for o in orders if o.entity == "attributes" and o.key == "version"]
    if version_orders:
        queryset = queryset.order_by(("-" if version_orders[0].descending else "") + "version")
    elif orders:
        queryset = order_runs(queryset, orders, run_path="run__", tiebreak=["-version"])
    else:
        queryset = queryset.order_by("-version")
    if not orders:
        page = cursor_page(queryset, VERSION_KEYS, after, offset, limit)
        rows = page.pop("rows")
        return {**page, "items": [version_out(v) for v in rows]}
    if after:
        raise ApiError(400, "after pages the default order only (newest version first); use offset with order_by.")
    items, next_offset = _page(queryset, offset, limit)
    return {"items": [version_out(v) for v in items], "next_offset": next_offset}


@router.get("/models/{name}/versions/{version}", response={200: VersionDetailOut, **ERRORS}, summary="Get a version")
def get_version(request: HttpRequest, name: str, version: int):
    return version_detail_out(version_for(request.user, name, version, queryset=_versions_for_output()))


@router.post(
    "/models/{name}/versions/{version}/rescan",
    response={200: VersionDetailOut, **ERRORS},
    summary="Scan a version's files again (EDIT)",
    description="Small files are scanned before this answers; large ones are `pending` until the background scan "
    "finishes. For after the allowlist was extended (SCAN_EXTRA_ALLOWED_GLOBALS).",
)
def rescan_version(request: HttpRequest, name: str, version: int):
    scanning.version_rescan(version=version_for(request.user, name, version), by=request.user)
    return version_detail_out(version_for(request.user, name, version, queryset=_versions_for_output()))


@router.patch(
    "/models/{name}/versions/{version}",
    response={200: VersionDetailOut, **ERRORS},
    summary="Edit a version's description and tags (EDIT)",
)
def update_version(request: HttpRequest, name: str, version: int, payload: VersionPatch):
    model_version = version_for(request.user, name, version)
    data = payload.dict(exclude_unset=True)
    services.version_update(
        version=model_version,
        by=request.user,
        description=data.get("description"),
        tags=data.get("tags"),
        signature=data.get("signature", services.UNCHANGED),
    )
    return version_detail_out(version_for(request.user, name, version, queryset=_versions_for_output()))


@router.delete(
    "/models/{name}/versions/{version}",
    response={204: None, **ERRORS},
    summary="Delete a version and its files (MANAGE, or its author with EDIT)",
)
def delete_version(request: HttpRequest, name: str, version: int):
    services.version_delete(version=version_for(request.user, name, version), by=request.user)
    return Status(204, None)


# --- Aliases --------------------------------------------------------------------------------------------------------


@router.get("/models/{name}/aliases", response={200: list[AliasOut], **ERRORS}, summary="List a model's aliases")
def list_aliases(request: HttpRequest, name: str):
    model = model_for(request.user, name)
    return [
        {"alias": a.alias, "version": a.version.version}
        for a in ModelAlias.objects.filter(model=model).select_related("version").order_by("alias")
    ]


@router.put(
    "/models/{name}/aliases/{alias}",
    response={200: AliasOut, **ERRORS},
    summary="Point an alias at a version",
    description="Unprotected aliases need EDIT. A protected alias (the policy's, by default champion and production) "
    "moves at once only for someone who may approve Production moves directly; for anyone else a transition request "
    "is opened and the answer is 403 `approval_required` naming it in `details`.",
)
def set_alias(request: HttpRequest, name: str, alias: AliasName, payload: AliasIn):
    model = model_for(request.user, name)
    version = version_for(request.user, name, payload.version)
    governance.alias_set(model=model, alias=alias, version=version, by=request.user)
    return {"alias": alias, "version": version.version}


@router.delete(
    "/models/{name}/aliases/{alias}",
    response={204: None, **ERRORS},
    summary="Delete an alias (a protected one as a Production move is)",
)
def delete_alias(request: HttpRequest, name: str, alias: AliasName):
    governance.alias_delete(model=model_for(request.user, name), alias=alias, by=request.user)
    return Status(204, None)


# --- References -----------------------------------------------------------------------------------------------------


@router.get(
    "/resolve",
    response={200: VersionDetailOut, **ERRORS},
    summary="Resolve a reference (name/3, name@champion, name@production) to a version and its files",
    description="What a deployment job calls: the answer lists the files with their download URLs and sha256.",
)
def resolve(
    request: HttpRequest,
    ref: Reference = Query(..., examples=["fraud-detector@production", "fraud-detector/3"]),
):
    try:
        reference = parse_reference(ref)
    except ReferenceError_ as exc:
        raise ApiError(400, str(exc)) from None
    try:
        version = ModelVersion.objects.resolve(reference, request.user)
    except ModelVersion.DoesNotExist:
        if not RegisteredModel.objects.readable_by(request.user).filter(name=reference.model).exists():
            raise ApiError(404, f"No model named {reference.model!r}.") from None
        raise ApiError(404, f"No version of {reference.model!r} matches {ref!r}.") from None
    metrics = MetricSeries.objects.last_values(version.run_id) if version.run_id else {}
    return version_detail_out(version, files=version.files(), aliases=version.alias_names(), metrics=metrics)
