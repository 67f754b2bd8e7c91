"""Typed inputs and outputs of the JSON API. Floats that JSON cannot carry travel as "NaN", "Infinity", "-Infinity"."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired

from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
)
from typing_extensions import TypedDict

from registry.audit.models import AuditAction
from registry.catalog.models import STAGE_VALUES
from registry.lib.names import ALIAS_MAX, KEY_MAX, MODEL_NAME_MAX, unprintable_class
from registry.lib.numbers import float_from_json, float_to_json

# What the schema states must be what the server enforces, both ways (tests/api/test_openapi_fuzz.py drives the
# server with schemathesis from this document): every bound, pattern and enum below mirrors a check made in
# registry/lib or the services, and refusals of input that fits the schema are 404 or 409 (state), never 400/422.
MAX_PAGE = 1000
HISTORY_MAX_PAGE = 100_000
# Far beyond any table, and small enough that OFFSET fits the databases' 64-bit integers.
MAX_OFFSET = 2**62
INT64_MIN, INT64_END = -(2**63), 2**63
TAG_VALUE_MAX = 8000
PARAM_VALUE_MAX = 6000
# registry.lib.names.unprintable_character: what no name, key or path may contain (controls, invisible and
# private-use characters, every space but the plain one), as a character class.
_UNPRINTABLE = unprintable_class()


def _any_case(word: str) -> str:
    # JSON Schema patterns have no flags: spell each letter in both cases.
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


# Stage.parse: any capitalisation, surrounding white space ignored.
STAGE_PATTERN = r"^\s*(" + "|".join(_any_case(v) for v in STAGE_VALUES) + r")\s*$"


STAGE_OR_EMPTY = r"^(" + STAGE_PATTERN[1:-1] + r")?$"
# Timelines: the stages a version can enter (None is where versions start).
TIMELINE_STAGE_PATTERN = r"^\s*(" + "|".join(_any_case(v) for v in STAGE_VALUES if v != "None") + r")\s*$"
# Query filters checked by their handlers (400 with a message): a stage or empty for all; a timeline's stage.
StageFilter = Annotated[
    str,
    WithJsonSchema({"type": "string", "pattern": STAGE_OR_EMPTY, "description": "A stage (any case); empty: all."}),
]
TimelineStage = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "pattern": TIMELINE_STAGE_PATTERN, "description": "Staging, Production or Archived."}
    ),
]
# Checked where it is used (Stage.parse: a 400 naming the stages).
StageText = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": STAGE_PATTERN,
            "examples": STAGE_VALUES,
            "description": f"One of {', '.join(STAGE_VALUES)}, in any capitalisation.",
        }
    ),
]


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


_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _time_text(value: object) -> object:
    # pydantic would read a number (or a string of digits, or false) as seconds since 1970: the schema says
    # date-time text, so only that is taken.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_START.match(value):
        raise ValueError("Send the time as ISO 8601 text, e.g. 2024-05-01T12:00:00Z.")
    return value


# An input time: ISO 8601 text; one without a time zone is read as UTC (comparing naive and aware times would fail).
InTime = Annotated[datetime, BeforeValidator(_time_text), AfterValidator(_assume_utc)]

# Keys of params and metrics (registry.lib.names.check_key): non-empty, at most KEY_MAX, printable, and no empty,
# '.' or '..' segment between '/' ("val/loss" is fine; "/x", "a//b", "a/../b" are not).
_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": KEY_MAX,
    "pattern": rf"^[^{_UNPRINTABLE}]+$",
    "not": {"pattern": r"(^|/)\.{0,2}(/|$)"},
}
# Tag keys (check_tag_key): a key without '\\', '%', '?' or '#'.
_TAG_KEY_SCHEMA = {**_KEY_SCHEMA, "pattern": rf"^[^{_UNPRINTABLE}\\%?#]+$"}
# pydantic writes a key pattern as patternProperties, which leaves other keys unconstrained: state it as
# propertyNames, which is what the server checks.
Tags = Annotated[
    dict[str, Annotated[str, Field(max_length=TAG_VALUE_MAX)]],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": _TAG_KEY_SCHEMA,
            "additionalProperties": {"type": "string", "maxLength": TAG_VALUE_MAX},
        }
    ),
]
# Param values are stored as text (at most PARAM_VALUE_MAX characters, checked by the service per key).
Params = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": _KEY_SCHEMA,
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": PARAM_VALUE_MAX},
                    {"type": "integer"},
                    {"type": "number"},
                    {"type": "boolean"},
                    {"type": "null"},
                ]
            },
            "examples": [{"learning_rate": "0.01", "max_depth": 6}],
        }
    ),
]


# Every status an operation can answer besides its success: 400 a rule the schema cannot state (a search filter's
# grammar), 401 no or a wrong token, 403 not allowed, 404 missing or not visible, 409 the object's state refuses it,
# 413 body too large, 415 not JSON, 422 the request breaks the schema, 429 too many wrong tokens (login throttling).
def errors(*extra: int) -> dict:
    return {status: Error for status in sorted({400, 401, 403, 404, 409, 413, 415, 422, 429, *extra})}


# registry.lib.names.check_name: not blank, no white space at either end, printable, none of '/ \\ % ? #' (and '@'
# in model names), not '.' or '..'.
_NAME_CHAR = rf"[^/\\%?#{_UNPRINTABLE}]"
_NAME_EDGE = rf"[^\s/\\%?#{_UNPRINTABLE}]"
EXPERIMENT_NAME_PATTERN = rf"^{_NAME_EDGE}({_NAME_CHAR}*{_NAME_EDGE})?$"
MODEL_NAME_PATTERN = EXPERIMENT_NAME_PATTERN.replace("#", "#@")
_NOT_DOTS = {"pattern": r"^\.\.?$"}
# Rules the services check themselves, with a message saying what to fix (a 400): the schema states them, pydantic
# does not repeat them (its pattern errors read "String should match pattern '^[^\\s/@...'").
ModelName = Annotated[
    str,
    Field(min_length=1, max_length=MODEL_NAME_MAX),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MODEL_NAME_MAX,
            "pattern": MODEL_NAME_PATTERN,
            "not": _NOT_DOTS,
        }
    ),
]
ExperimentName = Annotated[
    str,
    Field(min_length=1, max_length=256),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": 256, "pattern": EXPERIMENT_NAME_PATTERN, "not": _NOT_DOTS}
    ),
]

# registry.lib.names.check_alias: a letter or '_' first, then letters, digits, '_' and '-'; not a stage name or
# 'latest' (any case), not 'v3'-like.
_RESERVED = "|".join(_any_case(w) for w in ("latest", "none", "staging", "production", "archived"))
ALIAS_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": ALIAS_MAX,
    "pattern": r"^[A-Za-z_][A-Za-z0-9_\-]*$",
    "not": {"pattern": rf"^({_RESERVED}|[vV][0-9]+)$"},
    "examples": ["champion"],
}
AliasName = Annotated[str, WithJsonSchema(ALIAS_SCHEMA)]

# registry.lib.references.parse_reference: name/3, name@alias, name@stage, name/stage, name@latest, name/latest,
# optionally prefixed by models:/ and surrounded by white space.
_WORDS = "|".join(_any_case(w) for w in ("none", "staging", "production", "archived", "latest"))
REFERENCE_PATTERN = rf"^\s*(models:/)?(\S[\s\S]*@[^@]*[^@\s]|\S[^@]*/(0*[1-9][0-9]*|{_WORDS}))\s*$"

Reference = Annotated[str, WithJsonSchema({"type": "string", "pattern": REFERENCE_PATTERN})]


AuditActionFilter = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "enum": ["", *AuditAction.values], "description": "An audit action; empty: all."}
    ),
]

# registry.lib.paths.check_artifact_path: relative, '/'-separated, printable, no backslash, no URL scheme or drive
# letter first (`s3:`, `C:`), no percent-encoding, and no empty, '.' or '..' segment.
_PATH_REFUSED = [
    {"pattern": r"^[A-Za-z][A-Za-z0-9+.\-]*:"},
    {"pattern": r"%[0-9A-Fa-f]{2}"},
    {"pattern": r"(^|/)\.\.(/|$)"},
]
ARTIFACT_PATH_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1024,
    "pattern": rf"^[^{_UNPRINTABLE}\\]*$",
    "not": {"anyOf": [*_PATH_REFUSED, {"pattern": r"(^|/)\.?(/|$)"}]},
    "examples": ["model/model.pkl"],
}
ArtifactPath = Annotated[str, WithJsonSchema(ARTIFACT_PATH_SCHEMA)]
# A folder to list or register from: the same rule, except that one '/' may end it; or empty for the root.
ARTIFACT_DIR_SCHEMA = {
    **ARTIFACT_PATH_SCHEMA,
    "not": {"anyOf": [*_PATH_REFUSED, {"pattern": r"(^|/)\.?/"}, {"pattern": r"(^|/)\.$"}]},
    "examples": ["model"],
}
ARTIFACT_PREFIX_SCHEMA = {"anyOf": [{"type": "string", "maxLength": 0}, ARTIFACT_DIR_SCHEMA]}
ArtifactPrefix = Annotated[str, WithJsonSchema(ARTIFACT_PREFIX_SCHEMA)]
# Registering from a run's folder: empty, '.' and the like mean the run's root.
ARTIFACT_FOLDER_SCHEMA = {"anyOf": [{"type": "string", "pattern": r"^(\.(/+\.?)*)?$"}, ARTIFACT_DIR_SCHEMA]}

# A search order (registry.lib.search.parse_order): not blank; its grammar (entity.key, ASC/DESC) is checked by the
# server, which answers 400 invalid_search naming the problem, as it does for `filter`.
OrderText = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"\S", "examples": ["metrics.f1 DESC"]})]

# Pagination, the same on every list.
Offset = Annotated[int, Field(ge=0, lt=MAX_OFFSET, description="How many items to skip.")]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description=f"Items per page, at most {MAX_PAGE}.")]
# The 64-bit bounds are the service's (a per-point message); pydantic only refuses what is not a whole number.
Int64 = Annotated[
    int,
    BeforeValidator(lambda v: _json_int(v)),
    WithJsonSchema({"type": "integer", "minimum": INT64_MIN, "exclusiveMaximum": INT64_END}),
]
RunStatusName = Literal["running", "scheduled", "finished", "failed", "killed"]


def _json_int(value: object) -> object:
    # JSON Schema's integer: a number with no fraction (1.0 is one); not true/false, not "5".
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Send a whole number (not a string or a boolean).")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("Send a whole number.")
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_json_int)]


def _id_value(value: object) -> object:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return _json_int(value)


# Ids of experiments and datasets: a JSON integer, or its digits as text (clients have always sent both).
IdInt = Annotated[
    int,
    BeforeValidator(_id_value),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]}),
]
PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(_json_int)]


class In(BaseModel):
    """A request body: plain pydantic. ninja's Schema reads attributes of any object (it is made for Django rows), so
    a list sent where an object belongs would pass as an empty object."""

    def dict(self, **kwargs) -> dict:  # ninja's Schema spelling, used by the handlers
        return self.model_dump(**kwargs)


class Message(Schema):
    message: str


class Error(Schema):
    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["No model named 'iris'."])
    details: list[dict[str, Any]] = []


class Page(Schema):
    next_offset: int | None = Field(None, description="Pass as `offset` to get the next page; null on the last page.")


# --- Experiments ----------------------------------------------------------------------------------------------------


class ExperimentIn(In):
    name: ExperimentName = Field(examples=["fraud-detection"])
    description: str = ""
    tags: Tags = {}


class ExperimentPatch(In):
    name: ExperimentName | None = None
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


class CodeIn(In):
    git_remote: str = Field("", max_length=1024)
    git_commit: str = Field("", max_length=64)
    git_branch: str = Field("", max_length=256)
    git_dirty: StrictBool | None = None
    entry_point: str = Field("", max_length=1024)


class EnvironmentIn(In):
    python_version: str = Field("", max_length=64)
    platform: str = Field("", max_length=256)
    packages: dict[str, str] = Field({}, examples=[{"scikit-learn": "1.5.2", "numpy": "2.1.0"}])


class StepIn(In):
    name: str = Field(min_length=1, max_length=256)
    status: Literal["pending", "running", "succeeded", "failed", "skipped"] = "pending"
    started_at: InTime | None = None
    ended_at: InTime | None = None
    log_excerpt: str = ""


class RunIn(In):
    experiment: (
        Annotated[
            str,
            Field(max_length=256),
            WithJsonSchema({"type": "string", "maxLength": 256, "pattern": r"^(\S([\s\S]*\S)?)?$"}),
        ]
        | None
    ) = Field(None, description="Experiment name; created when missing. Default experiment if omitted or empty.")
    experiment_id: IdInt | None = None
    name: str = Field("", max_length=256)
    start_time: InTime | None = None
    code: CodeIn = CodeIn()
    environment: EnvironmentIn = EnvironmentIn()
    image: str = Field("", max_length=1024, examples=["ghcr.io/acme/train@sha256:0123abcd"])
    tags: Tags = {}
    steps: list[StepIn] = []

    @field_validator("experiment")
    @classmethod
    def _experiment_name_trimmed(cls, value: str | None) -> str | None:
        # Checked here as well as where the experiment is created: with experiment_id the name is not used, but a
        # malformed one is still refused, as the document says.
        if value and value != value.strip():
            raise ValueError("An experiment name must not start or end with white space.")
        return value


class RunPatch(In):
    """An end_time needs a final status: in the body, or the run's own (else 409)."""

    model_config = {
        "json_schema_extra": {
            "if": {"required": ["end_time"], "properties": {"end_time": {"type": "string"}}},
            "then": {"properties": {"status": {"enum": ["finished", "failed", "killed", None]}}},
        }
    }

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
NumberText = Annotated[
    StrictStr,
    Field(
        pattern=r"^\s*[+-]?("
        + "|".join(_any_case(w) for w in ("nan", "infinity", "inf"))
        + r"|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)\s*$"
    ),
]


class MetricPointIn(TypedDict):
    """A dict rather than a model: a batch holds up to 100,000 of these, and pydantic checks a TypedDict several
    times faster than it builds model instances (and a plain float skips the Python-level parsing of JsonFloat)."""

    key: Annotated[str, Field(min_length=1, max_length=KEY_MAX), WithJsonSchema({**_KEY_SCHEMA, "examples": ["loss"]})]
    value: Annotated[StrictFloat | StrictInt | NumberText, Field(examples=[0.25, "NaN"])]
    step: NotRequired[Int64]
    timestamp: NotRequired[Annotated[Int64 | None, Field(description="Epoch ms; the server's clock when omitted.")]]


class LogBatchIn(In):
    metrics: list[MetricPointIn] = Field([], max_length=100_000)
    params: Params = {}
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


class ColumnIn(In):
    name: str
    type: str


class DatasetIn(In):
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


class RunInputIn(In):
    dataset_id: IdInt
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


class MultipartStartIn(Schema):
    path: StrictStr
    size: StrictInt = Field(..., description="The file's size in bytes.")
    part_size: StrictInt | None = Field(None, description="Bytes per part (5 MiB to 5 GiB); the server picks if unset.")


class MultipartPartUrl(BaseModel):
    part_number: int
    url: str


class MultipartStartOut(BaseModel):
    upload_id: str
    path: str
    part_size: int
    parts: list[MultipartPartUrl]
    expires_in: int


class MultipartPart(Schema):
    part_number: StrictInt
    etag: StrictStr


class MultipartCompleteIn(Schema):
    path: StrictStr
    upload_id: StrictStr
    parts: list[MultipartPart]
    sha256: StrictStr | None = Field(None, description="The file's sha256 as the client computed it; checked.")


class MultipartAbortIn(Schema):
    path: StrictStr
    upload_id: StrictStr


class FileScanOut(BaseModel):
    path: str
    verdict: str = Field(description="safe, unsafe, unknown (the reason says why) or pending.")
    format: str
    findings: list[str] = Field(description='What makes it unsafe: "calls posix.system (os.system: ...)".')
    reason: str
    scanner_version: str
    scanned_at: datetime | None


class VersionScanOut(BaseModel):
    verdict: str = Field(
        description="The version's roll-up: unsafe if any file is, else pending, else unknown, else safe; "
        "none without files."
    )
    files: list[FileScanOut]


# --- Registered models, versions, aliases ---------------------------------------------------------------------------


class ModelIn(In):
    name: ModelName = Field(examples=["fraud-detector"])
    description: str = Field("", description="Markdown.")
    tags: Tags = {}


class ModelPatch(In):
    name: ModelName | None = Field(None, description="Renames the model.")
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


class VersionIn(In):
    """artifact_path names a folder of the run given as run_id."""

    model_config = {
        "json_schema_extra": {
            "if": {"required": ["artifact_path"], "properties": {"artifact_path": {"type": "string"}}},
            "then": {"required": ["run_id"], "properties": {"run_id": {"type": "string"}}},
        }
    }

    run_id: str | None = Field(None, min_length=32, max_length=32)
    artifact_path: Annotated[str, WithJsonSchema(ARTIFACT_FOLDER_SCHEMA)] | None = Field(
        None, description="Folder of the run's artifacts that becomes this version (e.g. 'model').", examples=["model"]
    )
    description: str = ""
    tags: Tags = {}
    signature: Any = Field(
        None,
        description='Input and output columns: {"inputs": [{"name", "type", "shape", "required"}], '
        '"outputs": [...], "input_example": ...}, or MLflow\'s MLmodel form. Without it, an MLmodel file among '
        "the version's files gives it.",
    )


class VersionPatch(In):
    description: str | None = None
    tags: Tags | None = None
    signature: Any = Field(None, description="Replaces the signature; null removes it.")


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
    signature: dict[str, Any] | None = Field(None, description="Input and output columns and an input example.")


class VersionPage(CursorPage):
    items: list[VersionOut]


class VersionDetailOut(VersionOut):
    artifacts: list[ArtifactOut]
    scan: VersionScanOut | None = Field(None, description="The file safety scan of the version's files.")


class AliasIn(In):
    version: PositiveInt


# --- Governance: transition requests, decisions, timeline, audit ----------------------------------------------------


class TransitionRequestIn(In):
    to_stage: StageText
    comment: str = Field("", max_length=5000, description="Why; the approver reads it.")
    archive_existing: StrictBool = Field(
        False, description="On approval, archive the versions that hold the stage then."
    )


class CommentIn(In):
    comment: str = Field("", max_length=5000)


class DecisionIn(CommentIn):
    override_reason: str = Field(
        "", max_length=5000, description="Superusers only: approve although gates fail; recorded in the audit log."
    )


class StageChangeIn(DecisionIn):
    to_stage: StageText
    archive_existing: StrictBool = False


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


class AliasRequestIn(In):
    alias: AliasName
    version: PositiveInt | None = Field(None, description="The version to point the alias at; null to delete it.")
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


class AccessPatch(In):
    owner: str | None = Field(None, description="Hand the object over to this user (you keep MANAGE by a grant).")
    default_level: Literal["NONE", "READ", "EDIT", "DEFAULT"] | None = Field(
        None, description="Everyone's level; DEFAULT follows the registry's REGISTRY_DEFAULT_PERMISSION."
    )


class GrantIn(In):
    level: Literal["READ", "EDIT", "MANAGE"] = Field(description="To take access away, DELETE the grant.")
    request_stages: list[StageName] = Field([], description="Models only: stages they may request moves to.")
    approve_stages: list[StageName] = Field([], description="Models only: stages they may approve moves to.")


class ExperimentGrantIn(In):
    level: Literal["READ", "EDIT", "MANAGE"] = Field(description="To take access away, DELETE the grant.")
    request_stages: list[StageName] = Field([], max_length=0, description="Experiments have no stage rights.")
    approve_stages: list[StageName] = Field([], max_length=0, description="Experiments have no stage rights.")


def nan_safe(value: float | None) -> float:
    return math.nan if value is None else value
