"""Datasets: the list, one dataset's schema and profile, and two datasets side by side with a drift score per column.

Queries (besides the session and the user):
  dataset_list: the page count · the page (row count and columns read from JSON, runs counted in a subquery);
  dataset_detail: the dataset with its number of uses · the latest runs that used it · other digests of its name;
  dataset_compare: both datasets.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from registry.lib import diff, drift
from registry.tracking.models import Dataset, Run, RunInput
from registry.web import compare_figures as figures

PAGE_SIZE = 50
RUNS_SHOWN = 100
OTHER_DIGESTS_SHOWN = 50
MAX_CHARTS = 40
SEARCH_MAX = 256
ID_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class DatasetRow:
    dataset: Dataset
    num_rows: int | None
    num_columns: int
    run_count: int


@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:SEARCH_MAX]
    datasets = (
        Dataset.objects.readable_by(request.user)
        .defer("profile")
        .annotate(rows_in_profile=KT("profile__num_rows"), run_count=_uses(request.user, distinct_runs=True))
        .order_by("name", "-created_at", "pk")
    )
    if query:
        datasets = datasets.filter(name__icontains=query)
    page = Paginator(datasets, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        DatasetRow(d, diff.as_count(d.rows_in_profile), len(diff.schema_columns(d.schema)), d.run_count)
        for d in page.object_list
    ]
    return render(
        request,
        "web/dataset_list.html",
        {"nav": "datasets", "page": page, "rows": rows, "query": query, "breadcrumbs": [("Datasets", None)]},
    )


def _uses(user, *, distinct_runs: bool = False) -> Coalesce:
    """How many times live runs the user may read used the dataset (or how many runs did), counted in a subquery:
    no GROUP BY."""
    inputs = (
        RunInput.objects.filter(dataset=OuterRef("pk"), run__deleted_at__isnull=True)
        .filter(run__in=Run.objects.readable_by(user).values("pk"))
        .order_by()
        .values("dataset")
    )
    counted = inputs.annotate(n=Count("run", distinct=True) if distinct_runs else Count("*"))
    return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), 0)


@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if pk > ID_MAX:  # the URL accepts any digits; the database would refuse the number rather than find nothing
        raise Http404("No such dataset.")
    dataset = get_object_or_404(
        Dataset.objects.readable_by(request.user).annotate(use_count=_uses(request.user)), pk=pk
    )
    inputs = list(
        RunInput.objects.filter(dataset=dataset, run__deleted_at__isnull=True)
        .filter(run__in=Run.objects.readable_by(request.user).values("pk"))
        .select_related("run", "run__experiment")
        .order_by("-run__start_time", "context")[:RUNS_SHOWN]
    )
    others = list(
        Dataset.objects.readable_by(request.user)
        .filter(name=dataset.name)
        .exclude(pk=dataset.pk)
        .only("id", "name", "digest", "created_at")
        .order_by("-created_at")[:OTHER_DIGESTS_SHOWN]
    )
    columns = diff.profile_columns(dataset.schema, dataset.profile)
    num_rows = diff.as_count(dataset.num_rows)
    views = [_column_view(c, num_rows) for c in columns]
    return render(
        request,
        "web/dataset_detail.html",
        {
            "nav": "datasets",
            "breadcrumbs": [("Datasets", reverse("dataset_list")), (str(dataset), None)],
            "dataset": dataset,
            "num_rows": num_rows,
            "columns": views,
            "numeric_columns": [v for v in views if v["column"].numeric],
            "other_columns": [v for v in views if not v["column"].numeric],
            "has_profile": any(c.stats for c in columns),
            "charts": _detail_charts(columns),
            "inputs": inputs,
            "others": others,
        },
    )


def _column_view(column: diff.ColumnProfile, num_rows: int | None) -> dict:
    nulls = diff.as_count(column.stat("nulls"))
    share = f"{100 * nulls / num_rows:.1f}%" if nulls is not None and num_rows else ""
    return {
        "column": column,
        "nulls": nulls,
        "null_share": share,
        "numbers": [diff.format_number(column.stat(key)) for key in diff.NUMERIC_STATS[1:]],
        "distinct": diff.as_count(column.stat("distinct")),
        "top": column.top,
    }


def _chart_id(prefix: str, n: int) -> str:
    return f"{prefix}-{n}"


def _detail_charts(columns: list[diff.ColumnProfile]) -> dict:
    charts, left_out = [], []
    for column in columns:
        histogram = column.histogram if column.numeric else None
        top = column.top if not column.numeric else []
        if histogram is None and not top:
            continue
        if len(charts) >= MAX_CHARTS:
            left_out.append(column.name)
            continue
        if histogram is not None:
            figure = figures.histogram_figure(column.name, *histogram)
        else:
            figure = figures.top_values_figure(column.name, [("rows", top)])
        charts.append({"id": _chart_id("column", len(charts)), "column": column.name, "figure": figure})
    return {"list": charts, "left_out": left_out}


# --- Two datasets -----------------------------------------------------------------------------------------------------


def _parse_ids(raw_values: list[str]) -> tuple[list[int], str | None]:
    ids: list[int] = []
    for raw in raw_values:
        for part in raw.replace(" ", ",").split(","):
            if not part:
                continue
            if not (part.isascii() and part.isdigit() and len(part) <= 19 and 0 < int(part) <= ID_MAX):
                return [], f"“{part[:40]}” is not a dataset id: ids are the numbers in a dataset's address."
            if int(part) not in ids:
                ids.append(int(part))
    if len(ids) != 2:
        return [], "Pick exactly two different datasets to compare, as ?ids=<id>,<id>."
    return ids, None


@dataclass(frozen=True, slots=True)
class Drift:
    column: str
    type_old: str
    type_new: str
    kind: str  # numeric, categorical, or "—" when the two disagree
    score: float | None
    level: str


def _drift(old: diff.ColumnProfile, new: diff.ColumnProfile, rows_old: int | None, rows_new: int | None) -> Drift:
    if old.numeric and new.numeric:
        kind, score = "numeric", drift.histogram_psi(old.stat("histogram"), new.stat("histogram"))
    elif not old.numeric and not new.numeric:
        kind = "categorical"
        score = drift.categorical_psi(old.stats, new.stats, old_rows=rows_old, new_rows=rows_new)
    else:
        kind, score = "—", None
    return Drift(old.name, old.type, new.type, kind, score, drift.drift_label(score))


@require_GET
def dataset_compare(request: HttpRequest) -> HttpResponse:
    context = {
        "nav": "datasets",
        "breadcrumbs": [("Datasets", reverse("dataset_list")), ("Compare", None)],
    }
    ids, problem = _parse_ids(request.GET.getlist("ids"))
    if problem:
        context["problem"] = problem
        return render(request, "web/dataset_compare.html", context, status=400)
    found = Dataset.objects.readable_by(request.user).in_bulk(ids)
    missing = [i for i in ids if i not in found]
    if missing:
        context["problem"] = "No dataset with id " + " or ".join(str(i) for i in missing) + "."
        return render(request, "web/dataset_compare.html", context, status=404)
    old, new = found[ids[0]], found[ids[1]]
    context.update(_comparison(old, new))
    return render(request, "web/dataset_compare.html", context)


def _label(dataset: Dataset, other: Dataset) -> str:
    return dataset.digest[:8] if dataset.name == other.name else f"{dataset.name} ({dataset.digest[:8]})"


def _comparison(old: Dataset, new: Dataset) -> dict:
    rows_old, rows_new = diff.as_count(old.num_rows), diff.as_count(new.num_rows)
    columns_old = {c.name: c for c in diff.profile_columns(old.schema, old.profile)}
    columns_new = {c.name: c for c in diff.profile_columns(new.schema, new.profile)}
    shared = [name for name in columns_new if name in columns_old]
    drifts = [_drift(columns_old[n], columns_new[n], rows_old, rows_new) for n in shared]
    # Most moved first; columns without a score last, in schema order.
    drifts.sort(key=lambda d: (d.score is None, -(d.score or 0.0)))
    labels = (_label(old, new), _label(new, old))
    stats = [(name, diff.stats_side_by_side(columns_old[name], columns_new[name])) for name in shared]
    return {
        "old": old,
        "new": new,
        "pair": (old, new),
        "labels": labels,
        "rows": diff.CountChange(rows_old, rows_new),
        "schema": diff.schema_diff(old.schema, new.schema),
        "column_counts": (len(diff.schema_columns(old.schema)), len(diff.schema_columns(new.schema))),
        "drifts": drifts,
        "drift_counts": {level: sum(1 for d in drifts if d.level == level) for level in ("significant", "moderate")},
        "stats": [(name, [_stat_view(r) for r in rows]) for name, rows in stats],
        "charts": _overlay_charts(columns_old, columns_new, shared, labels, rows_old, rows_new),
    }


def _stat_view(row: diff.StatRow) -> dict:
    delta = ""
    if row.delta is not None and row.changed:
        delta = ("+" if row.delta > 0 else "") + diff.format_number(row.delta)
        old = diff.as_number(row.old)
        if old:
            delta += f" ({100 * row.delta / abs(old):+.1f}%)"
    return {
        "label": row.label,
        "old": diff.format_number(row.old),
        "new": diff.format_number(row.new),
        "changed": row.changed,
        "delta": delta,
    }


def _overlay_charts(columns_old, columns_new, shared, labels, rows_old, rows_new) -> dict:
    charts, left_out = [], []
    for name in shared:
        a, b = columns_old[name], columns_new[name]
        figure = None
        if a.numeric and b.numeric and a.histogram and b.histogram:
            figure = figures.histograms_overlay_figure(name, [(labels[0], *a.histogram), (labels[1], *b.histogram)])
        elif not a.numeric and not b.numeric and (a.top or b.top):
            totals = [_present(a, rows_old), _present(b, rows_new)]
            figure = figures.top_values_figure(name, [(labels[0], a.top), (labels[1], b.top)], totals=totals)
        if figure is None:
            continue
        if len(charts) >= MAX_CHARTS:
            left_out.append(name)
            continue
        charts.append({"id": _chart_id("overlay", len(charts)), "column": name, "figure": figure})
    return {"list": charts, "left_out": left_out}


def _present(column: diff.ColumnProfile, num_rows: int | None) -> float | None:
    """Rows with a value in this column: the share of rows in a bar is counted against these."""
    nulls = diff.as_count(column.stat("nulls")) or 0
    if num_rows is not None and num_rows > nulls:
        return float(num_rows - nulls)
    listed = sum(count for _, count in column.top)
    return listed or None
