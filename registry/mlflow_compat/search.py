"""MLflow's search filters and orders over our rows, parsed by registry.lib.search.

Runs go through registry.tracking.search (after MLflow's system tags are renamed to the run columns that hold them);
experiments, registered models, versions and logged models are searched by their attributes and JSON tags here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import F, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from registry.lib.search import Clause, Order, SearchError, parse_filter, parse_order
from registry.mlflow_compat.wire import RUN_TAG_ATTRIBUTES
from registry.tracking.search import field_matches, filter_runs, order_runs

_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
_STATUSES = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"}


@dataclass(frozen=True, slots=True)
class Attribute:
    field: str
    kind: str = "text"  # text | time (epoch ms) | int


def _run_clause(clause: Clause) -> Clause:
    """`tags.mlflow.runName` and the other system tags are run columns here."""
    if clause.entity == "tags" and clause.key in RUN_TAG_ATTRIBUTES:
        return Clause("attributes", RUN_TAG_ATTRIBUTES[clause.key], clause.op, clause.value)
    if clause.entity == "attributes" and clause.key == "status":
        values = clause.value if isinstance(clause.value, tuple) else (clause.value,)
        unknown = [v for v in values if isinstance(v, str) and v.upper() not in _STATUSES]
        if unknown and clause.op in ("=", "!=", "IN", "NOT IN"):
            raise SearchError(f"Run status is one of {', '.join(sorted(_STATUSES))}, not {unknown[0]!r}.")
    return clause


def _run_order(order: Order) -> Order:
    if order.entity == "tags" and order.key in RUN_TAG_ATTRIBUTES:
        return Order("attributes", RUN_TAG_ATTRIBUTES[order.key], order.descending)
    if order.entity == "attributes" and order.key in ("start_time", "end_time", "run_name", "status", "created"):
        return order
    if order.entity == "attributes" and order.key not in ("run_id", "user_id", "experiment_id"):
        raise SearchError(
            f"Runs are ordered by metrics, params, tags or attributes start_time, end_time, run_name, status; "
            f"not attributes.{order.key}."
        )
    return order


def search_runs(queryset: QuerySet, filter_text: str, order_texts: list[str]) -> QuerySet:
    clauses = [_run_clause(c) for c in parse_filter(filter_text)]
    queryset = filter_runs(queryset, clauses)
    orders = [_run_order(parse_order(text)) for text in order_texts]
    if orders:
        return order_runs(queryset, orders, tiebreak=["-start_time", "id"])
    return queryset.order_by("-start_time", "id")


def _tag_alias(key: str, tags_field: str) -> Cast:
    return Cast(KeyTextTransform(key, tags_field), TextField())


def _typed(attribute: Attribute, name: str, value):
    if attribute.kind == "text" or value is None:
        return value
    if isinstance(value, tuple):
        return tuple(_typed(attribute, name, v) for v in value)
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        raise SearchError(f"{name} compares with a number, not {value!r}.") from None
    if attribute.kind == "time":
        try:
            return datetime.fromtimestamp(number / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise SearchError(f"{name} compares with epoch milliseconds, not {value!r}.") from None
    return number


def filter_rows(
    queryset: QuerySet,
    filter_text: str,
    attributes: dict[str, Attribute],
    *,
    tag_columns: dict[str, str] | None = None,
    missing_tag_differs: bool = False,
) -> QuerySet:
    """Filter by `attributes` (bare keys or `attributes.`) and JSON `tags.`; `tag_columns` maps tag keys held in a
    column. With `missing_tag_differs`, `tags.x != 'v'` also matches rows without the tag (MLflow's registry
    semantics, which its prompt filter relies on)."""
    tag_columns = tag_columns or {}
    for index, clause in enumerate(parse_filter(filter_text, default_entity="attributes")):
        if clause.entity == "attributes":
            attribute = attributes.get(clause.key)
            if attribute is None:
                raise SearchError(
                    f"Unknown attribute {clause.key!r}; use one of: {', '.join(sorted(attributes))}, or tags.<key>."
                )
            if attribute.kind == "text" and clause.op in _COMPARISONS[2:]:
                raise SearchError(f"{clause.key} compares with = != LIKE ILIKE IN, not {clause.op}.")
            typed = Clause(clause.entity, clause.key, clause.op, _typed(attribute, clause.key, clause.value))
            queryset = queryset.filter(field_matches(attribute.field, typed))
        elif clause.entity == "tags":
            if clause.key in tag_columns:
                field = tag_columns[clause.key]
            else:
                field = f"_tag_{index}"
                queryset = queryset.alias(**{field: _tag_alias(clause.key, "tags")})
            condition = field_matches(field, clause)
            if missing_tag_differs and clause.op in ("!=", "NOT IN"):
                condition = condition | Q(**{f"{field}__isnull": True})
            queryset = queryset.filter(condition)
        else:
            raise SearchError(f"This search filters by attributes and tags, not {clause.entity}.")
    return queryset


def order_rows(queryset: QuerySet, order_texts: list[str], attributes: dict[str, Attribute], default: list[str]):
    expressions = []
    for text in order_texts:
        order = parse_order(text)
        attribute = attributes.get(order.key) if order.entity == "attributes" else None
        if attribute is None:
            raise SearchError(f"Cannot order by {text!r}; use one of: {', '.join(sorted(attributes))}.")
        expression = F(attribute.field)
        expressions.append(expression.desc(nulls_last=True) if order.descending else expression.asc(nulls_last=True))
    return queryset.order_by(*expressions, *default)


EXPERIMENT_ATTRIBUTES = {
    "name": Attribute("name"),
    "experiment_id": Attribute("pk", "int"),
    "creation_time": Attribute("created_at", "time"),
    "last_update_time": Attribute("updated_at", "time"),
}
MODEL_ATTRIBUTES = {
    "name": Attribute("name"),
    "creation_timestamp": Attribute("created_at", "time"),
    "last_updated_timestamp": Attribute("updated_at", "time"),
    "timestamp": Attribute("updated_at", "time"),
    "description": Attribute("description"),
}
VERSION_ATTRIBUTES = {
    "name": Attribute("model__name"),
    "version_number": Attribute("version", "int"),
    "version": Attribute("version", "int"),
    "run_id": Attribute("lineage_run_id"),  # the registry's run, else the id the client named (an alias)
    "source_path": Attribute("source"),
    "source": Attribute("source"),
    "current_stage": Attribute("stage"),
    "user_id": Attribute("created_by__username"),
    "creation_timestamp": Attribute("created_at", "time"),
    "last_updated_timestamp": Attribute("updated_at", "time"),
    "timestamp": Attribute("updated_at", "time"),
}
LOGGED_MODEL_ATTRIBUTES = {
    "name": Attribute("name"),
    "model_id": Attribute("pk"),
    "model_type": Attribute("model_type"),
    "source_run_id": Attribute("run_id"),
    "status": Attribute("status"),
    "creation_timestamp": Attribute("created_at", "time"),
    "creation_time": Attribute("created_at", "time"),
    "last_updated_timestamp": Attribute("updated_at", "time"),
}
