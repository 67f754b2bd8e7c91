"""Translation between the registry's rows and MLflow's JSON messages (the shapes of `mlflow/protos/*.proto`).

Ids are strings, times are epoch milliseconds, enums are their proto names, NaN and the infinities are strings.
Run fields that MLflow keeps as system tags (run name, user, git commit, branch and remote, entry point) are stored
in the run's own columns, so the dashboard shows them where our own client puts them, and are given back to MLflow
as the tags it expects.
"""

from __future__ import annotations

import json
import re

import pydantic_core

from registry.catalog.models import ModelVersion, RegisteredModel, VersionStatus
from registry.lib.numbers import float_to_json
from registry.mlflow_compat.inputs import datetime_to_ms
from registry.mlflow_compat.models import LoggedModel, LoggedModelStatus
from registry.scanning import services as scanning
from registry.tracking.models import Dataset, Experiment, Run, RunInput

ARTIFACTS_SCHEME = "mlflow-artifacts:"
NOTE_TAG = "mlflow.note.content"
CONTEXT_TAG = "mlflow.data.context"
USER_TAG = "mlflow.user"
RUN_NAME_TAG = "mlflow.runName"
# MLflow system tags kept in a run column instead of the tags, with the column's length.
RUN_TAG_COLUMNS = {
    RUN_NAME_TAG: ("name", 256),
    "mlflow.source.git.commit": ("git_commit", 64),
    "mlflow.source.git.branch": ("git_branch", 256),
    "mlflow.source.git.repoURL": ("git_remote", 1024),
    "mlflow.source.name": ("entry_point", 1024),
}
# Filter and order keys that name those columns, as attributes of the run search.
RUN_TAG_ATTRIBUTES = {
    RUN_NAME_TAG: "run_name",
    USER_TAG: "user",
    "mlflow.source.git.commit": "git_commit",
    "mlflow.source.git.branch": "git_branch",
    "mlflow.source.git.repoURL": "git_remote",
    "mlflow.source.name": "entry_point",
}
# Keys this layer keeps inside a dataset's profile to give MLflow back exactly what it sent.
_RAW_SCHEMA = "mlflow_schema"
_RAW_PROFILE = "mlflow_profile"
_RAW_SOURCE = "mlflow_source"

RUN_STATUS_TO_MLFLOW = {s: s.upper() for s in Run.Status.values}
RUN_STATUS_FROM_MLFLOW = {v: k for k, v in RUN_STATUS_TO_MLFLOW.items()}
VERSION_STATUS = {
    VersionStatus.PENDING: "PENDING_REGISTRATION",
    VersionStatus.READY: "READY",
    VersionStatus.FAILED: "FAILED_REGISTRATION",
}
LOGGED_MODEL_STATUS = {
    LoggedModelStatus.PENDING: "LOGGED_MODEL_PENDING",
    LoggedModelStatus.READY: "LOGGED_MODEL_READY",
    LoggedModelStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
}
LOGGED_MODEL_STATUS_FROM_MLFLOW = {v: k for k, v in LOGGED_MODEL_STATUS.items()} | {
    "1": LoggedModelStatus.PENDING,
    "2": LoggedModelStatus.READY,
    "3": LoggedModelStatus.FAILED,
}
_LOGGED_MODEL_SOURCE = re.compile(r"^runs:/([0-9a-f]{32})/models/(m-[0-9a-f]{32})$")


def tag_list(tags: dict) -> list[dict]:
    return [{"key": str(k), "value": "" if v is None else str(v)} for k, v in sorted((tags or {}).items())]


# --- Artifact URIs --------------------------------------------------------------------------------------------------


def run_artifact_uri(run_id: str) -> str:
    return f"{ARTIFACTS_SCHEME}/runs/{run_id}/artifacts"


def version_artifact_uri(version: ModelVersion) -> str:
    """Where the client downloads a version from: its files here, or for an external reference the location it was
    registered with (handed back as text; this server never resolves it)."""
    if version.external_location:
        return version.external_location
    return f"{ARTIFACTS_SCHEME}/models/{version.model_id}/versions/{version.version}/artifacts"


def logged_model_artifact_uri(logged_model: LoggedModel) -> str:
    if logged_model.run_id:
        return f"{run_artifact_uri(logged_model.run_id)}/{logged_model.artifact_folder}"
    return f"{ARTIFACTS_SCHEME}/logged-models/{logged_model.id}/artifacts"


# --- Experiments ----------------------------------------------------------------------------------------------------


def experiment_json(experiment: Experiment) -> dict:
    tags = dict(experiment.tags or {})
    if experiment.description:
        tags[NOTE_TAG] = experiment.description
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": f"{ARTIFACTS_SCHEME}/experiments/{experiment.pk}",
        "lifecycle_stage": "deleted" if experiment.deleted_at else "active",
        "creation_time": datetime_to_ms(experiment.created_at),
        "last_update_time": datetime_to_ms(experiment.updated_at),
        "tags": tag_list(tags),
    }


# --- Runs -----------------------------------------------------------------------------------------------------------


def run_tags(run: Run) -> dict[str, str]:
    """The run's tags as MLflow sees them: its own tags plus the system tags read from its columns."""
    tags = {str(k): "" if v is None else str(v) for k, v in (run.tags or {}).items()}
    for tag, (column, _) in RUN_TAG_COLUMNS.items():
        value = getattr(run, column)
        if value:
            tags[tag] = value
    if run.user_id:
        tags[USER_TAG] = run.user.get_username()
    return tags


def split_run_tags(tags: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split MLflow tags into (column values, plain tags). A value too long for its column stays a plain tag;
    `mlflow.user` is dropped: the run's user is whoever authenticated."""
    columns: dict[str, str] = {}
    plain: dict[str, str] = {}
    for key, value in tags.items():
        if key == USER_TAG:
            continue
        column = RUN_TAG_COLUMNS.get(key)
        if column is not None and len(value) <= column[1]:
            columns[column[0]] = value
        else:
            plain[key] = value
    return columns, plain


def dataset_json(dataset: Dataset) -> dict:
    profile = dict(dataset.profile) if isinstance(dataset.profile, dict) else {}
    raw_schema = profile.pop(_RAW_SCHEMA, None)
    raw_profile = profile.pop(_RAW_PROFILE, None)
    raw_source = profile.pop(_RAW_SOURCE, None)
    if raw_schema is None:
        raw_schema = json.dumps({"mlflow_colspec": dataset.schema}) if dataset.schema else ""
    source = dataset.source_uri
    if raw_source is not None:
        source = raw_source  # exactly as MLflow logged it
    elif source and not source.lstrip().startswith("{"):
        source = json.dumps({"uri": source})
    return {
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "source": source or "{}",
        "schema": raw_schema,
        "profile": raw_profile if raw_profile is not None else (json.dumps(profile) if profile else ""),
    }


def dataset_from_json(data: dict) -> dict:
    """Our dataset fields from an MLflow Dataset message: the column spec becomes our schema list, the profile our
    profile; anything we cannot read is kept verbatim so MLflow gets back what it sent."""
    schema: list = []
    profile: dict = {}
    raw_schema = data.get("schema") or ""
    try:
        parsed = json.loads(raw_schema) if raw_schema else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("mlflow_colspec"), list):
        schema = [c for c in parsed["mlflow_colspec"] if isinstance(c, dict)]
        if json.dumps({"mlflow_colspec": schema}) != raw_schema:
            profile[_RAW_SCHEMA] = raw_schema
    elif raw_schema:
        profile[_RAW_SCHEMA] = raw_schema
    raw_profile = data.get("profile") or ""
    try:
        parsed_profile = json.loads(raw_profile) if raw_profile else {}
    except ValueError:
        parsed_profile = None
    if isinstance(parsed_profile, dict):
        profile.update(parsed_profile)
    else:
        profile[_RAW_PROFILE] = raw_profile
    source = data.get("source") or ""
    try:
        parsed_source = json.loads(source) if source else {}
    except ValueError:
        parsed_source = None
    uri = ""
    if isinstance(parsed_source, dict):
        for key in ("uri", "url", "path"):
            if isinstance(parsed_source.get(key), str) and len(parsed_source) == 1:
                uri = parsed_source[key]
    if source and source != json.dumps({"uri": uri}):
        profile[_RAW_SOURCE] = source  # given back exactly as logged (dataset_json)
    return {
        "source_uri": uri or (source if source not in ("", "{}") else ""),
        "source_type": data.get("source_type") or "",
        "schema": schema,
        "profile": profile,
    }


def run_input_json(run_input: RunInput) -> dict:
    """Input tags as MLflow logged them; inputs logged without (our client's) carry their context as MLflow's tag."""
    tags = run_input.tags if isinstance(run_input.tags, list) else [{"key": CONTEXT_TAG, "value": run_input.context}]
    return {"tags": tags, "dataset": dataset_json(run_input.dataset)}


def run_json(run: Run) -> dict:
    """A run with its data, inputs and outputs; expects the prefetches of `views.runs_for_output`."""
    info = run_info_json(run)
    links = list(run.model_links.all())
    return {
        "info": info,
        "data": {
            "metrics": [
                {
                    "key": m.key,
                    "value": float_to_json(m.last_value),
                    "timestamp": m.last_timestamp,
                    "step": m.last_step,
                }
                for m in run.metrics.all()
            ],
            "params": [{"key": p.key, "value": p.value} for p in run.params.all()],
            "tags": tag_list(run_tags(run)),
        },
        "inputs": {
            "dataset_inputs": [run_input_json(i) for i in run.inputs.all()],
            "model_inputs": [{"model_id": link.logged_model_id} for link in links if link.direction == "input"],
        },
        "outputs": {
            "model_outputs": [
                {"model_id": link.logged_model_id, "step": link.step} for link in links if link.direction == "output"
            ]
        },
    }


def run_info_json(run: Run) -> dict:
    info = {
        "run_id": run.pk,
        "run_uuid": run.pk,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user.get_username() if run.user_id else "",
        "status": RUN_STATUS_TO_MLFLOW.get(run.status, "RUNNING"),
        "start_time": datetime_to_ms(run.start_time),
        "artifact_uri": run_artifact_uri(run.pk),
        "lifecycle_stage": "deleted" if run.deleted_at else "active",
    }
    if run.end_time is not None:
        info["end_time"] = datetime_to_ms(run.end_time)
    return info


def metric_history_json(key: str, rows: list[tuple], token: str | None) -> bytes:
    """A GetMetricHistory response from raw (step, timestamp, value) rows. NULL is how NaN is stored; the
    serializer writes NaN and the infinities as the strings MLflow uses. pydantic's serializer writes a page of
    25,000 points in about a third of the time json.dumps or string formatting take."""
    metrics = [{"key": key, "value": "NaN" if v is None else v, "timestamp": t, "step": s} for s, t, v in rows]
    body = {"metrics": metrics, "next_page_token": token} if token else {"metrics": metrics}
    return pydantic_core.to_json(body, inf_nan_mode="strings")


# --- Registered models and versions ---------------------------------------------------------------------------------


def logged_model_id_of(version: ModelVersion) -> str:
    """The logged model a version was registered from: recorded with it, or (versions registered before that was
    recorded) read back from its source `runs:/<run>/models/<id>`."""
    if version.logged_model_id:
        return version.logged_model_id
    match = _LOGGED_MODEL_SOURCE.match(version.source or "")
    return match.group(2) if match else ""


SCAN_TAG = "registry.scan"


def with_scans(versions: list[ModelVersion]) -> list[ModelVersion]:
    """Attach each version's scan roll-up (two queries for the list) so `version_json` reads it."""
    scans = scanning.scans_for_versions(v.pk for v in versions)
    for version in versions:
        version.scan = scans[version.pk]
    return versions


def scan_tags(version: ModelVersion) -> dict[str, str]:
    """The file safety scan as tags: `registry.scan` (safe, unsafe, unknown, pending) and, when it is not safe,
    `registry.scan.detail` saying why. A version without files here (an external reference) has nothing scanned and
    gets no tag, so its tags read back exactly as MLflow's clients set them."""
    scan = getattr(version, "scan", None) or scanning.version_scan(version)
    if scan.verdict == "none":
        return {}
    tags = {SCAN_TAG: scan.verdict}
    if scan.verdict not in ("safe", "none"):
        tags[SCAN_TAG + ".detail"] = scan.summary()[:5000]
    return tags


def version_json(
    version: ModelVersion, model_name: str | None = None, aliases: list[str] | None = None, *, with_scan: bool = True
) -> dict:
    if aliases is None:
        rows = getattr(version, "alias_rows", None)
        aliases = sorted(a.alias for a in (version.aliases.all() if rows is None else rows))
    message = {
        "name": model_name or version.model.name,
        "version": str(version.version),
        "creation_timestamp": datetime_to_ms(version.created_at),
        "last_updated_timestamp": datetime_to_ms(version.updated_at),
        "user_id": version.created_by.get_username() if version.created_by_id else "",
        "current_stage": version.stage,
        "description": version.description,
        "source": version.source,
        "run_id": version.run_id or version.external_run_id,
        "status": VERSION_STATUS.get(version.status, "READY"),
        "status_message": version.status_message,
        "tags": tag_list({**(version.tags or {}), **(scan_tags(version) if with_scan else {})}),
        "run_link": "",
        "aliases": aliases,
        "model_id": logged_model_id_of(version),
    }
    # MLflow's server leaves these out when they are empty (its entity sets them only then), and its client reads an
    # absent status_message as None, a present one as "": the same answer as MLflow's, and less for a client to parse.
    for field in ("status_message", "model_id"):
        if not message[field]:
            del message[field]
    return message


def registered_model_json(model: RegisteredModel, latest: list[ModelVersion] | None = None) -> dict:
    """A model with its aliases and, when given, the newest version of each stage (`latest_versions`)."""
    aliases = list(model.aliases.all())
    names_by_version: dict[int, list[str]] = {}
    for alias in aliases:
        names_by_version.setdefault(alias.version_id, []).append(alias.alias)
    return {
        "name": model.name,
        "creation_timestamp": datetime_to_ms(model.created_at),
        "last_updated_timestamp": datetime_to_ms(model.updated_at),
        "user_id": model.owner.get_username() if model.owner_id else "",
        "description": model.description,
        # Without the scan tag: a model list would read the scans model by model (get the version for it).
        "latest_versions": [
            version_json(v, model.name, sorted(names_by_version.get(v.pk, [])), with_scan=False) for v in latest or []
        ],
        "tags": tag_list(model.tags),
        "aliases": [{"alias": a.alias, "version": str(a.version.version)} for a in aliases],
    }


# --- Logged models --------------------------------------------------------------------------------------------------


def logged_model_json(logged_model: LoggedModel) -> dict:
    return {
        "info": {
            "model_id": logged_model.id,
            "experiment_id": str(logged_model.experiment_id),
            "name": logged_model.name,
            "creation_timestamp_ms": datetime_to_ms(logged_model.created_at),
            "last_updated_timestamp_ms": datetime_to_ms(logged_model.updated_at),
            "artifact_uri": logged_model_artifact_uri(logged_model),
            "status": LOGGED_MODEL_STATUS.get(logged_model.status, "LOGGED_MODEL_PENDING"),
            "creator_id": logged_model.creator_id or 0,
            "model_type": logged_model.model_type,
            "source_run_id": logged_model.run_id or logged_model.external_run_id,
            "status_message": logged_model.status_message,
            "tags": tag_list(logged_model.tags),
        },
        "data": {
            "params": [{"key": k, "value": str(v)} for k, v in sorted((logged_model.params or {}).items())],
            "metrics": [m for m in (logged_model.metrics or []) if isinstance(m, dict)],
        },
    }
