"""Workflows behind the MLflow endpoints that MLflow has and the registry's own API lacks: logged models and their
links to runs (this app's rows), MLflow's system tags, version sources. Everything else the MLflow handlers call
straight in the registry's services (tracking, catalog, governance), which check permissions and write the audit
log; so do these, through them, with `by` the caller.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from registry.accounts.access import level_of
from registry.catalog import services as catalog
from registry.catalog.models import ModelVersion, RegisteredModel, Stage
from registry.lib.access import Level
from registry.lib.errors import Forbidden
from registry.lib.names import NameError_, check_tag_key
from registry.lib.numbers import float_to_json
from registry.mlflow_compat import sources
from registry.mlflow_compat.errors import invalid, not_found
from registry.mlflow_compat.inputs import invalid_value, missing_value
from registry.mlflow_compat.models import LoggedModel, RunModelLink
from registry.mlflow_compat.wire import NOTE_TAG, logged_model_id_of, split_run_tags
from registry.tracking import services as tracking
from registry.tracking.access import require_experiment, require_run_write
from registry.tracking.models import Experiment, MetricPoint, Run

EXPERIMENT_NAME_MAX = 256
TAG_VALUE_MAX = 8000  # as MLflow
APPROVALS_PATH = "/approvals/"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"


def checked_tags(items: Iterable[Mapping] | object, what: str) -> dict[str, str]:
    """{key: value} from MLflow's [{"key": ..., "value": ...}], every key and value checked."""
    if not isinstance(items, list | tuple):
        raise invalid(f"The {what}s must be a list of {{key, value}} objects.")
    tags: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise invalid(f"Every {what} must be a {{key, value}} object.")
        key, value = item.get("key"), item.get("value")
        if key is None or key == "":
            raise missing_value("key")
        if not isinstance(key, str):
            raise invalid_value("key", key)
        try:
            check_tag_key(key, what=f"{what} key")
        except NameError_ as exc:
            raise invalid(str(exc)) from None
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise invalid_value("value", value)
        if len(value) > TAG_VALUE_MAX:
            raise invalid(f"The value of {what} {key!r} is {len(value)} characters; the limit is {TAG_VALUE_MAX}.")
        tags[key] = value
    return tags


# --- Experiments ----------------------------------------------------------------------------------------------------


def experiment_create(*, name: str, tags: dict[str, str], by, artifact_location: str = "") -> Experiment:
    if artifact_location:
        raise invalid(
            "This registry stores every artifact itself; leave artifact_location empty (runs get "
            "mlflow-artifacts:/runs/<run id>/artifacts)."
        )
    tags = dict(tags)
    description = tags.pop(NOTE_TAG, "")
    return tracking.experiment_create(name=name, by=by, description=description, tags=tags)


def experiment_tag_set(*, experiment: Experiment, key: str, value: str | None, by) -> None:
    """Set (or, with value None, delete) one tag; `mlflow.note.content` is the experiment's description."""
    if key == NOTE_TAG:
        tracking.experiment_update(experiment=experiment, by=by, description=value or "")
    elif value is None:
        tracking.experiment_tag_delete(experiment=experiment, key=key, by=by)
    else:
        tracking.experiment_update(experiment=experiment, by=by, tags={key: value})


# --- Runs -----------------------------------------------------------------------------------------------------------


def run_tags_apply(*, run: Run, by, tags: dict[str, str]) -> None:
    """Store MLflow tags: system tags into the run's columns, the rest into its tags."""
    columns, plain = split_run_tags(tags)
    with transaction.atomic():
        if columns:
            tracking.run_fields_set(run=run, by=by, fields=columns)
        if plain:
            tracking.run_tags_set(run=run, by=by, tags=plain)


def run_tag_delete(*, run: Run, by, key: str) -> None:
    columns, _ = split_run_tags({key: ""})
    if key in run.tags:
        tracking.run_tag_delete(run=run, by=by, key=key)
    elif columns and getattr(run, next(iter(columns))):
        tracking.run_fields_set(run=run, by=by, fields=columns)
    else:
        raise not_found(f"No tag with name: {key} in run with id {run.pk}")


@dataclass(frozen=True, slots=True)
class MetricIn:
    point: tracking.Point
    model_id: str = ""
    dataset_name: str = ""
    dataset_digest: str = ""


def _point_key(key: str, step: int, timestamp: int, value: float) -> tuple:
    return key, step, timestamp, "nan" if math.isnan(value) else value


def metrics_log(*, run: Run, by, points: list[tracking.Point], model_metrics: list[MetricIn] = ()) -> int:
    """Append run metrics; a metric that names a logged model is also recorded on that model.

    MLflow re-sends a run's metrics with a `model_id` when it logs a model (to attach them to it); an identical point
    already in the run's history is not appended twice, so the history keeps the count the training loop logged.
    """
    points = list(points)
    if model_metrics:
        keys = {m.point.key for m in model_metrics}
        steps = {m.point.step for m in model_metrics}
        existing = {
            _point_key(key, step, timestamp, value)
            for key, step, timestamp, value in MetricPoint.objects.filter(
                series__run=run, series__key__in=keys, step__in=steps
            ).values_list("series__key", "step", "timestamp", "value")
        }
        points += [
            m.point
            for m in model_metrics
            if _point_key(m.point.key, m.point.step, m.point.timestamp, m.point.value) not in existing
        ]
    with transaction.atomic():
        written = tracking.metrics_log(run=run, by=by, points=points) if points else 0
        by_model: dict[str, list[MetricIn]] = {}
        for metric in model_metrics:
            by_model.setdefault(metric.model_id, []).append(metric)
        for model_id, metrics in by_model.items():
            _record_model_metrics(run, model_id, metrics)
    return written


def _record_model_metrics(run: Run, model_id: str, metrics: list[MetricIn]) -> None:
    locked = LoggedModel.objects.select_for_update().filter(pk=model_id).first()
    if locked is None:
        raise not_found(f"No logged model with id {model_id!r}.")
    locked.metrics = [
        *locked.metrics,
        *(
            {
                "key": m.point.key,
                "value": float_to_json(m.point.value),
                "timestamp": m.point.timestamp,
                "step": m.point.step,
                "run_id": run.pk,
                "model_id": model_id,
                "dataset_name": m.dataset_name,
                "dataset_digest": m.dataset_digest,
            }
            for m in metrics
        ),
    ]
    locked.updated_at = timezone.now()
    locked.save(update_fields=["metrics", "updated_at"])


def log_batch(
    *,
    run: Run,
    by,
    points: list[tracking.Point],
    model_metrics: list[MetricIn],
    params: dict[str, str],
    tags: dict[str, str],
) -> None:
    """One transaction: all of it is written or none of it."""
    columns, plain_tags = split_run_tags(tags)
    if not model_metrics and not columns:
        # What training loops send: the tracking layer writes it without nested savepoints.
        tracking.log_batch(run=run, by=by, params=params, points=points, tags=plain_tags)
        return
    with transaction.atomic():
        if params:
            tracking.params_log(run=run, by=by, params=params)
        if points or model_metrics:
            metrics_log(run=run, by=by, points=points, model_metrics=model_metrics)
        if tags:
            run_tags_apply(run=run, by=by, tags=tags)


def datasets_log(*, run: Run, by, datasets: list[tuple[dict, str, list[dict]]]) -> None:
    """Register each (dataset fields, context, input tags as logged) and link it to the run."""
    with transaction.atomic():
        for fields, context, tags in datasets:
            dataset = tracking.dataset_register(by=by, **fields)
            tracking.run_input_add(run=run, by=by, dataset=dataset, context=context, tags=tags)


def model_links_add(*, run: Run, by, model_ids: list[str], direction: str, steps: list[int] | None = None) -> None:
    require_run_write(run, by)
    found = set(LoggedModel.objects.filter(pk__in=model_ids).values_list("pk", flat=True))
    missing = [m for m in model_ids if m not in found]
    if missing:
        raise not_found(f"No logged model with id {missing[0]!r}.")
    with transaction.atomic():
        for index, model_id in enumerate(model_ids):
            RunModelLink.objects.update_or_create(
                run=run,
                logged_model_id=model_id,
                direction=direction,
                defaults={"step": steps[index] if steps else 0},
            )


# --- Logged models --------------------------------------------------------------------------------------------------


def logged_model_create(
    *,
    by,
    experiment: Experiment,
    run: Run | None,
    name: str,
    model_type: str,
    tags: dict,
    params: dict,
    external_run_id: str = "",
) -> LoggedModel:
    """Record a logged model: the writer of its source run, or without a run EDIT on the experiment."""
    if run is not None:
        require_run_write(run, by)
        if run.experiment_id != experiment.pk:
            raise invalid(f"Run {run.pk} belongs to experiment {run.experiment_id}, not {experiment.pk}.")
    else:
        require_experiment(experiment, by, Level.EDIT)
    logged = LoggedModel(
        experiment=experiment,
        run=run,
        external_run_id="" if run is not None else external_run_id,
        model_type=model_type,
        creator=by,
        tags=tags,
        params=params,
    )
    logged.name = name or f"model-{logged.id[2:10]}"
    logged.save(force_insert=True)
    return logged


def require_logged_model_writer(logged: LoggedModel, by) -> None:
    """Logged models follow their experiment, as runs do: their creator with EDIT, or a manager."""
    level = level_of(logged.experiment, by)
    if level >= Level.MANAGE or (level >= Level.EDIT and logged.creator_id in (None, by.pk)):
        return
    raise Forbidden(
        f"Logged model {logged.pk} belongs to another user or you lack EDIT on its experiment; only its creator or "
        "someone who manages the experiment may change it."
    )


def logged_model_finish(*, logged_model: LoggedModel, status: str, by) -> LoggedModel:
    require_logged_model_writer(logged_model, by)
    logged_model.status = status
    logged_model.updated_at = timezone.now()
    logged_model.save(update_fields=["status", "updated_at"])
    return logged_model


def logged_model_delete(*, logged_model: LoggedModel, by) -> None:
    require_logged_model_writer(logged_model, by)
    logged_model.deleted_at = timezone.now()
    logged_model.save(update_fields=["deleted_at"])


def logged_model_dict_update(*, logged_model: LoggedModel, by, field: str, values: dict[str, str], remove=()) -> None:
    """Merge `values` into (and drop `remove` from) the model's tags or params, under a row lock."""
    require_logged_model_writer(logged_model, by)
    _merge(logged_model, field, values, remove)


def _merge(logged_model: LoggedModel, field: str, values: dict[str, str], remove=()) -> None:
    with transaction.atomic():
        locked = LoggedModel.objects.select_for_update().get(pk=logged_model.pk)
        current = {k: v for k, v in getattr(locked, field).items() if k not in remove}
        setattr(locked, field, {**current, **values})
        locked.updated_at = timezone.now()
        locked.save(update_fields=[field, "updated_at"])
        setattr(logged_model, field, getattr(locked, field))


# --- Registered models and versions ---------------------------------------------------------------------------------


def version_register(
    *,
    model: RegisteredModel,
    source: str,
    host: str,
    by,
    run_id: str = "",
    model_id: str = "",
    description: str = "",
    tags: dict[str, str] | None = None,
) -> ModelVersion:
    """Register a version from its MLflow source (see registry.mlflow_compat.sources): a run folder's files (same
    blobs), a copy of another version, or an external reference recorded as text. The run named by `run_id` need not
    exist here; its id is then kept as text."""
    classified = sources.classify(source, host=host, user=by)
    logged = _logged_model_for(model_id, source, classified)
    if isinstance(classified, sources.Copy):
        return _version_copy(model, classified.version, source, by, run_id, model_id, description, tags)
    # version_create is one transaction; an outer one (and the savepoint it would put around version_create) is
    # needed only when the logged model's lineage is written with it.
    with transaction.atomic() if logged is not None else contextlib.nullcontext():
        if isinstance(classified, sources.Stored):
            if run_id and run_id.lower() != classified.run.pk:
                raise sources.id_must_match(source, "run_id")
            version = catalog.version_create(
                model=model,
                run=classified.run,
                artifact_path=classified.folder,
                by=by,
                description=description,
                tags=tags,
                logged_model_id=logged.pk if logged else "",
            )
        else:
            run = Run.objects.filter(pk=run_id.lower()).first() if run_id else None
            version = catalog.version_create(
                model=model,
                run=run,
                source=source,
                by=by,
                description=description,
                tags=tags,
                external_location=classified.location,
                external_run_id=run_id if run is None else "",
                logged_model_id=logged.pk if logged else classified.logged_model_id,
            )
        if logged is not None:
            registrations = _registrations(logged) + [{"name": model.name, "version": version.version}]
            # Lineage the registration writes, whoever created the logged model (MLflow's own format).
            _merge(logged, "tags", {MODEL_VERSIONS_TAG: json.dumps(registrations)})
    return version


def _logged_model_for(model_id: str, source: str, classified) -> LoggedModel | None:
    """The logged model a registration names (model_id, or the source itself); it must exist and be the source's."""
    named = classified.logged_model if isinstance(classified, sources.Stored) else None
    if not model_id:
        return named
    logged = LoggedModel.objects.filter(pk=model_id).first()
    if logged is None:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    if named is not None and named.pk != logged.pk:
        raise sources.id_must_match(source, "model_id")
    if isinstance(classified, sources.Stored) and named is None and not _holds(logged, classified):
        raise sources.id_must_match(source, "model_id")
    if isinstance(classified, sources.External) and classified.logged_model_id not in ("", logged.pk):
        raise sources.id_must_match(source, "model_id")
    return logged


def _holds(logged: LoggedModel, stored: sources.Stored) -> bool:
    """Is the stored folder the logged model's, or inside it?"""
    return logged.run_id == stored.run.pk and (stored.folder + "/").startswith(logged.artifact_folder + "/")


def _version_copy(model, original: ModelVersion, source, by, run_id, model_id, description, tags) -> ModelVersion:
    """MLflow's copy_model_version: create_model_version with source models:/<name>/<version>; the run and logged
    model, when named, must be the original's."""
    if (run_id and run_id != original.lineage_run_id) or (model_id and model_id != logged_model_id_of(original)):
        raise invalid(
            f"Invalid model version source: '{source}'. The run_id and model_id request parameters must match the "
            "referenced model version."
        )
    return catalog.version_copy(
        version=original,
        model=model,
        by=by,
        source=f"models:/{original.model.name}/{original.version}",
        description=description or None,
        tags=tags or None,
    )


def _registrations(logged_model: LoggedModel) -> list[dict]:
    try:
        value = json.loads(logged_model.tags.get(MODEL_VERSIONS_TAG) or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def latest_versions(model: RegisteredModel, stages: list[str]) -> list[ModelVersion]:
    """The newest version in each of `stages` (every stage when empty), as MLflow's get_latest_versions."""
    wanted = []
    for stage in stages:
        try:
            wanted.append(Stage.parse(stage).value)
        except ValueError as exc:
            raise invalid(str(exc)) from None
    versions = ModelVersion.objects.filter(model=model)
    if wanted:
        versions = versions.filter(stage__in=wanted)
    newest: dict[str, ModelVersion] = {}
    stage_numbers = versions.order_by().values("stage").annotate(latest=Max("version"))
    numbers = [row["latest"] for row in stage_numbers]
    for version in (
        ModelVersion.objects.filter(model=model, version__in=numbers)
        .select_related("created_by")
        .prefetch_related("aliases")
    ):
        newest[version.stage] = version
    return sorted(newest.values(), key=lambda v: v.version)
