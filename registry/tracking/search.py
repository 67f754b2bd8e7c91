"""Turn parsed search clauses (registry.lib.search) into ORM filters over runs, or over anything with a run.

Metric clauses read the per-(run, key) summary rows, never the point history, so searches stay index-bound.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from registry.lib.search import Clause, Order, SearchError
from registry.tracking.models import MetricSeries, Param, RunInput

_NUMERIC_LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
# Run attributes a filter may name, with the model field behind each.
RUN_ATTRIBUTES = {
    "status": "status",
    "run_name": "name",
    "name": "name",
    "run_id": "id",
    "id": "id",
    "start_time": "start_time",
    "end_time": "end_time",
    "created": "start_time",
    "user": "user__username",
    "user_id": "user__username",
    "experiment_id": "experiment_id",
    "git_commit": "git_commit",
    "git_branch": "git_branch",
    "git_remote": "git_remote",
    "entry_point": "entry_point",
    "image": "image",
}
_TIME_ATTRIBUTES = {"start_time", "end_time"}
DATASET_FIELDS = {"name": "dataset__name", "digest": "dataset__digest", "context": "context"}


def like_to_regex(pattern: str) -> str:
    """SQL LIKE ('%' any run, '_' one character) as an anchored regular expression."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return "^" + "".join(out) + "$"


def _string_q(field: str, op: str, value) -> Q:
    if op == "=":
        return Q(**{field: value})
    if op == "!=":
        return ~Q(**{field: value}) & Q(**{f"{field}__isnull": False})
    if op == "LIKE":
        return Q(**{f"{field}__regex": like_to_regex(value)})
    if op == "ILIKE":
        return Q(**{f"{field}__iregex": like_to_regex(value)})
    if op == "IN":
        return Q(**{f"{field}__in": list(value)})
    if op == "NOT IN":
        return ~Q(**{f"{field}__in": list(value)}) & Q(**{f"{field}__isnull": False})
    if op == "IS NULL":
        return Q(**{f"{field}__isnull": True})
    if op == "IS NOT NULL":
        return Q(**{f"{field}__isnull": False})
    if op in _NUMERIC_LOOKUPS:
        return Q(**{f"{field}__{_NUMERIC_LOOKUPS[op]}": value})
    raise SearchError(f"Unsupported comparison {op!r}.")


def field_matches(field: str, clause: Clause) -> Q:
    """`clause`'s comparison applied to any text field or alias, for searches over rows other than runs."""
    return _string_q(field, clause.op, clause.value)


def _metric_q(clause: Clause) -> Q:
    op, value = clause.op, clause.value
    if op in _NUMERIC_LOOKUPS:
        return Q(**{f"last_value__{_NUMERIC_LOOKUPS[op]}": value})
    if op == "!=":
        return ~Q(last_value=value) & Q(last_value__isnull=False)
    if op == "IN":
        return Q(last_value__in=[float(v) for v in value])
    if op == "NOT IN":
        return ~Q(last_value__in=[float(v) for v in value])
    raise SearchError(f"Metrics support = != < <= > >= IN, not {op}.")


def _attribute_q(clause: Clause, prefix: str) -> Q:
    field = RUN_ATTRIBUTES.get(clause.key)
    if field is None:
        raise SearchError(f"Unknown run attribute {clause.key!r}; use one of: {', '.join(sorted(RUN_ATTRIBUTES))}.")
    value = clause.value
    if field == "status":
        value = tuple(v.lower() for v in value) if isinstance(value, tuple) else (value or "").lower() or value
    if field in _TIME_ATTRIBUTES and clause.op in (*_NUMERIC_LOOKUPS, "!="):
        try:
            value = datetime.fromtimestamp(float(value) / 1000, tz=UTC)
        except (TypeError, ValueError):
            raise SearchError(f"{clause.key} compares with epoch milliseconds, not {clause.value!r}.") from None
    elif field == "experiment_id" and clause.op not in ("IS NULL", "IS NOT NULL"):
        try:
            value = tuple(int(v) for v in value) if isinstance(value, tuple) else int(value)
        except ValueError:
            raise SearchError("experiment_id compares with a number.") from None
    return _string_q(prefix + field, clause.op, value)


def _tag_text(key: str, run_path: str) -> Cast:
    """The tag's value as text. The key is one JSON key even if it holds "__"; the cast keeps SQLite from comparing
    the value as JSON (which fails on plain text)."""
    return Cast(KeyTextTransform(key, f"{run_path}tags"), TextField())


def _run_ref(run_path: str) -> OuterRef:
    return OuterRef("pk") if not run_path else OuterRef(run_path.removesuffix("__") + "_id")


def filter_runs(queryset: QuerySet, clauses: Sequence[Clause], *, run_path: str = "") -> QuerySet:
    """Filter `queryset` by `clauses`; `run_path` leads from its rows to their run ("" for runs, "run__" for
    versions)."""
    run_ref = _run_ref(run_path)
    for index, clause in enumerate(clauses):
        if clause.entity == "metrics":
            if clause.op == "IS NULL":
                queryset = queryset.filter(~Exists(MetricSeries.objects.filter(run_id=run_ref, key=clause.key)))
            elif clause.op == "IS NOT NULL":
                queryset = queryset.filter(Exists(MetricSeries.objects.filter(run_id=run_ref, key=clause.key)))
            else:
                series = MetricSeries.objects.filter(run_id=run_ref, key=clause.key).filter(_metric_q(clause))
                queryset = queryset.filter(Exists(series))
        elif clause.entity == "params":
            if clause.op == "IS NULL":
                queryset = queryset.filter(~Exists(Param.objects.filter(run_id=run_ref, key=clause.key)))
            else:
                params = Param.objects.filter(run_id=run_ref, key=clause.key)
                if clause.op != "IS NOT NULL":
                    params = params.filter(_string_q("value", clause.op, clause.value))
                queryset = queryset.filter(Exists(params))
        elif clause.entity == "tags":
            alias = f"_tag_{index}"
            queryset = queryset.alias(**{alias: _tag_text(clause.key, run_path)})
            queryset = queryset.filter(_string_q(alias, clause.op, clause.value))
        elif clause.entity == "attributes":
            queryset = queryset.filter(_attribute_q(clause, run_path))
        elif clause.entity == "datasets":
            field = DATASET_FIELDS.get(clause.key)
            if field is None:
                raise SearchError(f"Datasets are searched by {', '.join(DATASET_FIELDS)}, not {clause.key!r}.")
            inputs = RunInput.objects.filter(run_id=run_ref).filter(_string_q(field, clause.op, clause.value))
            queryset = queryset.filter(Exists(inputs))
        else:
            raise SearchError(f"Unknown entity {clause.entity!r}.")
    return queryset


def order_runs(queryset: QuerySet, orders: Sequence[Order], *, run_path: str = "", tiebreak: Sequence[str] = ()):
    """Order by metrics (last value), params, tags or attributes; missing values sort last either way."""
    run_ref = _run_ref(run_path)
    expressions = []
    for index, order in enumerate(orders):
        if order.entity == "metrics":
            alias = f"_order_metric_{index}"
            subquery = MetricSeries.objects.filter(run_id=run_ref, key=order.key).values("last_value")[:1]
            queryset = queryset.alias(**{alias: Subquery(subquery)})
        elif order.entity == "params":
            alias = f"_order_param_{index}"
            subquery = Param.objects.filter(run_id=run_ref, key=order.key).values("value")[:1]
            queryset = queryset.alias(**{alias: Subquery(subquery)})
        elif order.entity == "tags":
            alias = f"_order_tag_{index}"
            queryset = queryset.alias(**{alias: _tag_text(order.key, run_path)})
        elif order.entity == "attributes":
            field = RUN_ATTRIBUTES.get(order.key)
            if field is None:
                raise SearchError(f"Cannot order by attribute {order.key!r}.")
            alias = run_path + field
        else:
            raise SearchError(f"Cannot order by {order.entity}.")
        expression = F(alias)
        expressions.append(expression.desc(nulls_last=True) if order.descending else expression.asc(nulls_last=True))
    return queryset.order_by(*expressions, *tiebreak)
