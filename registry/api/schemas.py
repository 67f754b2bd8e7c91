"""Typed inputs and outputs of the JSON API. Floats that JSON cannot carry travel as "NaN", "Infinity", "-Infinity"."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired

from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    PlainSerializer,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)
from typing_extensions import TypedDict

from registry.lib.names import KEY_MAX, MODEL_NAME_MAX
from registry.lib.numbers import float_from_json, float_to_json


def _parse_float(value: Any) -> float:
    try:
        return float_from_json(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


# A float that accepts and renders NaN and the infinities as MLflow does.
JsonFloat = Annotated[
    float,
    BeforeValidator(_parse_float),
    PlainSerializer(float_to_json, return_type=float | str | None, when_used="always"),
]


def _assume_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# An input time: one without a time zone is read as UTC (comparing naive and aware times would fail later).
InTime = Annotated[datetime, AfterValidator(_assume_utc)]

Tags = dict[Annotated[str, Field(max_length=KEY_MAX)], str]
RunStatusName = Literal["running", "scheduled", "finished", "failed", "killed"]


class Message(Schema):
    message: str


class Error(Schema):
    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["No model named 'iris'."])
    details: list[dict[str, Any]] = []


class Page(Schema):
    next_offset: int | None = Field(None, description="Pass as `offset` to get the next page; null on the last page.")


# --- Experiments ----------------------------------------------------------------------------------------------------


class ExperimentIn(Schema):
    name: str = Field(min_length=1, max_length=256, examples=["fraud-detection"])
    description: str = ""
    tags: Tags = {}


class ExperimentPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=256)
    description: str | None = None
    tags: Tags | None = None


class ExperimentOut(Schema):
    id: int
    name: str
    description: str
    tags: dict[str, str]
    created_at: datetime
    updated_at: datetime


class ExperimentPage(Page):
    items: list[ExperimentOut]


# --- Runs -----------------------------------------------------------------------------------------------------------


class CodeIn(Schema):
    git_remote: str = Field("", max_length=1024)
    git_commit: str = Field("", max_length=64)
    git_branch: str = Field("", max_length=256)
    git_dirty: bool | None = None
    entry_point: str = Field("", max_length=1024)


class EnvironmentIn(Schema):
    python_version: str = Field("", max_length=64)
    platform: str = Field("", max_length=256)
    packages: dict[str, str] = Field({}, examples=[{"scikit-learn": "1.5.2", "numpy": "2.1.0"}])


class StepIn(Schema):
    name: str = Field(min_length=1, max_length=256)
    status: Literal["pending", "running", "succeeded", "failed", "skipped"] = "pending"
    started_at: InTime | None = None
    ended_at: InTime | None = None
    log_excerpt: str = ""


class RunIn(Schema):
    experiment: str | None = Field(
        None, max_length=256, description="Experiment name; created when missing. Default experiment if omitted."
    )
    experiment_id: int | None = None
    name: str = Field("", max_length=256)
    start_time: InTime | None = None
    code: CodeIn = CodeIn()
    environment: EnvironmentIn = EnvironmentIn()
    image: str = Field("", max_length=1024, examples=["ghcr.io/acme/train@sha256:0123abcd"])
    tags: Tags = {}
    steps: list[StepIn] = []


class RunPatch(Schema):
    status: RunStatusName | None = None
    end_time: InTime | None = None
    name: str | None = Field(None, max_length=256)
    tags: Tags | None = None
    steps: list[StepIn] | None = None


class MetricSummaryOut(Schema):
    value: JsonFloat
    step: int
    timestamp: int
    min: JsonFloat
    max: JsonFloat
    count: int


class RunInputOut(Schema):
    dataset_id: int
    name: str
    digest: str
    context: str


class StepOut(Schema):
    position: int
    name: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    log_excerpt: str


class RunOut(Schema):
    id: str
    experiment_id: int
    experiment: str
    name: str
    status: str
    user: str | None
    start_time: datetime
    end_time: datetime | None
    code: CodeIn
    environment: EnvironmentIn
    image: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, MetricSummaryOut]
    inputs: list[RunInputOut]
    steps: list[StepOut]


class CursorPage(Page):
    next_after: str | None = Field(
        None,
        description="Pass as `after` for the next page (quick at any depth, and steady while rows are added); null "
        "on the last page, and in orders other than the default one.",
    )


class RunPage(CursorPage):
    items: list[RunOut]


# "NaN", "Infinity", "-Infinity" (any case, also "inf"), or a number written as text.
NumberText = Annotated[StrictStr, Field(pattern=r"^(?i)\s*[+-]?(nan|inf|infinity|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)\s*$")]


class MetricPointIn(TypedDict):
    """A dict rather than a model: a batch holds up to 100,000 of these, and pydantic checks a TypedDict several
    times faster than it builds model instances (and a plain float skips the Python-level parsing of JsonFloat)."""

    key: Annotated[str, Field(min_length=1, max_length=KEY_MAX, examples=["loss"])]
    value: Annotated[StrictFloat | StrictInt | NumberText, Field(examples=[0.25, "NaN"])]
    step: NotRequired[Annotated[int, Field(ge=-(2**63), lt=2**63)]]
    timestamp: NotRequired[Annotated[int | None, Field(description="Epoch ms; the server's clock when omitted.")]]


class LogBatchIn(BaseModel):
    metrics: list[MetricPointIn] = Field([], max_length=100_000)
    params: dict[str, Any] = Field({}, examples=[{"learning_rate": "0.01", "max_depth": 6}])
    tags: Tags = {}

    @field_validator("params")
    @classmethod
    def _params_are_scalars(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            if isinstance(item, dict | list):
                raise ValueError(f"Param {key!r} must be a string or a number, not a {type(item).__name__}.")
        return value


class LogBatchOut(Schema):
    metrics: int
    params: int
    tags: int


class HistoryOut(Page):
    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[JsonFloat]


class SeriesOut(Schema):
    key: str
    total_points: int
    downsampled: bool
    steps: list[int]
    values: list[JsonFloat]


# --- Datasets -------------------------------------------------------------------------------------------------------


class ColumnIn(Schema):
    name: str
    type: str


class DatasetIn(Schema):
    name: str = Field(min_length=1, max_length=256, examples=["iris-train"])
    digest: str = Field(min_length=1, max_length=128, examples=["5f1e…"])
    source_uri: str = Field("", max_length=2048)
    source_type: str = Field("", max_length=64)
    schema_: list[ColumnIn] = Field([], alias="schema")
    profile: dict[str, Any] = {}


class DatasetOut(Schema):
    id: int
    name: str
    digest: str
    source_uri: str
    source_type: str
    schema_: list[dict[str, Any]] = Field(alias="schema")
    profile: dict[str, Any]
    created_at: datetime


class DatasetPage(Page):
    items: list[DatasetOut]


class RunInputIn(Schema):
    dataset_id: int
    context: str = Field("training", min_length=1, max_length=64, examples=["training", "evaluation"])


# --- Artifacts ------------------------------------------------------------------------------------------------------


# Plain pydantic models where the API builds dicts itself (versions, artifacts: the registration and resolve paths):
# ninja's Schema wraps every input in a getter meant for reading Django rows, which costs more than the fields.
class ArtifactOut(BaseModel):
    path: str
    size: int
    sha256: str
    content_type: str
    created_at: datetime
    url: str


# --- Registered models, versions, aliases ---------------------------------------------------------------------------


class ModelIn(Schema):
    name: str = Field(min_length=1, max_length=MODEL_NAME_MAX, examples=["fraud-detector"])
    description: str = Field("", description="Markdown.")
    tags: Tags = {}


class ModelPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=MODEL_NAME_MAX, description="Renames the model.")
    description: str | None = None
    tags: Tags | None = None


class AliasOut(Schema):
    alias: str
    version: int


class VersionRef(Schema):
    version: int
    stage: str


class ModelOut(Schema):
    name: str
    description: str
    owner: str | None
    tags: dict[str, str]
    latest_version: int | None
    versions_by_stage: dict[str, list[int]] = Field(description="Versions currently in Staging and Production.")
    aliases: list[AliasOut]
    created_at: datetime
    updated_at: datetime


class ModelPage(Page):
    items: list[ModelOut]


class VersionIn(BaseModel):
    run_id: str | None = Field(None, min_length=32, max_length=32)
    artifact_path: str | None = Field(
        None, description="Folder of the run's artifacts that becomes this version (e.g. 'model').", examples=["model"]
    )
    description: str = ""
    tags: Tags = {}


class VersionPatch(Schema):
    description: str | None = None
    tags: Tags | None = None


class VersionOut(BaseModel):
    model: str
    version: int
    stage: str
    status: str
    source: str
    run_id: str | None
    description: str
    tags: dict[str, str]
    aliases: list[str]
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    metrics: dict[str, JsonFloat] = Field({}, description="The source run's final metric values.")


class VersionPage(CursorPage):
    items: list[VersionOut]


class VersionDetailOut(VersionOut):
    artifacts: list[ArtifactOut]


class AliasIn(Schema):
    version: int = Field(ge=1)


# --- Governance: transition requests, decisions, timeline, audit ----------------------------------------------------


class TransitionRequestIn(Schema):
    to_stage: str = Field(examples=["Production"], description="Staging, Production, Archived or None (any case).")
    comment: str = Field("", max_length=5000, description="Why; the approver reads it.")
    archive_existing: bool = Field(False, description="On approval, archive the versions that hold the stage then.")


class CommentIn(Schema):
    comment: str = Field("", max_length=5000)


class DecisionIn(CommentIn):
    override_reason: str = Field(
        "", max_length=5000, description="Superusers only: approve although gates fail; recorded in the audit log."
    )


class StageChangeIn(DecisionIn):
    to_stage: str = Field(examples=["Staging"])
    archive_existing: bool = False


class TransitionRequestOut(Schema):
    id: int
    model: str
    version: int
    action: Literal["stage", "alias_set", "alias_delete"] = Field(
        description="A move to `to_stage`, or a protected alias to point at (or delete from) `version`."
    )
    alias: str = Field("", description="For alias requests: the protected alias.")
    from_stage: str
    to_stage: str
    archive_existing: bool
    status: Literal["pending", "approved", "rejected", "cancelled"]
    requested_by: str | None
    comment: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str
    evidence: dict[str, Any] = Field(
        description="Frozen when the request was made: metrics, metric_deltas against the current holder "
        "(compared_with), datasets with digests, environment, code, and the gate results (gates)."
    )
    url: str = Field(description="The request on the dashboard's Approvals page.")


class TransitionRequestPage(Page):
    items: list[TransitionRequestOut]


class StageIntervalOut(Schema):
    version: int
    from_: datetime | None = Field(alias="from", description="Null when it began before the history kept.")
    to: datetime | None = Field(description="Null while the version still holds the stage.")


class TimelineOut(Schema):
    model: str
    stage: str
    intervals: list[StageIntervalOut]


class StageAtOut(Schema):
    model: str
    stage: str
    at: datetime
    versions: list[int] = Field(description="Version numbers that held the stage at `at`, highest first.")


class AuditEventOut(Schema):
    id: int
    at: datetime
    action: str = Field(examples=["stage_changed"])
    actor: str = Field(description="Who acted (a username, or a system actor such as 'system:demo').")
    model: str | None = Field(description="The model's name when the event was recorded.")
    version: int | None
    alias: str
    experiment: str | None
    run_id: str | None
    subject: str = Field(description="For access changes: 'user:<name>', 'group:<name>' or 'everyone'.")
    from_value: str
    to_value: str
    comment: str
    request_id: int | None
    data: dict[str, Any]


class AuditPage(CursorPage):
    items: list[AuditEventOut]


class AliasRequestIn(Schema):
    alias: str = Field(examples=["champion"])
    version: int | None = Field(None, ge=1, description="The version to point the alias at; null to delete it.")
    comment: str = Field("", max_length=5000)


# --- Access ---------------------------------------------------------------------------------------------------------

LevelName = Literal["NONE", "READ", "EDIT", "MANAGE"]
StageName = Literal["None", "Staging", "Production", "Archived"]


class GrantOut(Schema):
    user: str | None = None
    group: str | None = None
    level: LevelName
    request_stages: list[str] = []
    approve_stages: list[str] = []
    granted_by: str | None = None
    granted_at: datetime


class AccessOut(Schema):
    owner: str | None
    default_level: LevelName | None = Field(
        description="The level of every signed-in user without a grant; null for the registry's default."
    )
    registry_default: LevelName
    your_level: LevelName
    grants: list[GrantOut]


class AccessPatch(Schema):
    owner: str | None = Field(None, description="Hand the object over to this user (you keep MANAGE by a grant).")
    default_level: Literal["NONE", "READ", "EDIT", "DEFAULT"] | None = Field(
        None, description="Everyone's level; DEFAULT follows the registry's REGISTRY_DEFAULT_PERMISSION."
    )


class GrantIn(Schema):
    level: Literal["READ", "EDIT", "MANAGE"] = Field(description="To take access away, DELETE the grant.")
    request_stages: list[StageName] = Field([], description="Models only: stages they may request moves to.")
    approve_stages: list[StageName] = Field([], description="Models only: stages they may approve moves to.")


def nan_safe(value: float | None) -> float:
    return math.nan if value is None else value
