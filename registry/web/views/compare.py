"""Side-by-side comparison of two to four builds: model versions (`?versions=`) or runs (`?runs=`).

Whatever the number of params, metrics and points, the page runs a fixed number of queries:
  versions mode: versions (with model, run, experiment) · aliases · params · metric summaries · run inputs with
  their datasets · metric points of the charted histories (skipped when no metric has a history);
  runs mode: runs (with experiment) · params · metric summaries · run inputs · metric points.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from django.db.models import Prefetch, Q
from django.db.models.fields.json import KeyTextTransform
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from registry.catalog.models import ModelAlias, ModelVersion
from registry.lib import diff
from registry.lib import signature as signatures
from registry.lib.selection import MAX_BUILDS, MIN_BUILDS, Selection, parse_selection, version_ref
from registry.scanning import services as scanning
from registry.scanning.models import VersionScan
from registry.tracking.history import PREVIEW_POINTS, chart_histories
from registry.tracking.models import MetricSeries, Param, Run, RunInput
from registry.web import compare_figures as figures

MAX_HISTORY_CHARTS = 12
# Points of history read with the page itself; the charts past it load on their own once the page is shown.
MAX_INLINE_ROWS = 500_000
MAX_BAR_METRICS = 30
MAX_PARALLEL_PARAMS = 10


@dataclass
class Build:
    index: int
    ref: str  # how the query string names it: "model:3" or a run id
    run: Run | None
    version: ModelVersion | None = None
    label: str = ""
    aliases: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    inputs: list[tuple[str, diff.DatasetRef]] = field(default_factory=list)
    scan: VersionScan | None = None  # versions only: the file safety scan's roll-up

    @property
    def color(self) -> str:
        return figures.color_of(self.index)


@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    selection = parse_selection(request.GET.getlist("versions"), request.GET.getlist("runs"))
    context = {
        "nav": "models" if selection.versions or not selection.runs else "experiments",
        # The picker form starts from what was asked, typos included, so that they can be fixed.
        "versions_text": ",".join(request.GET.getlist("versions"))[:2000],
        "runs_text": ",".join(request.GET.getlist("runs"))[:2000],
    }

    problem = _selection_problem(selection)
    if problem is not None:
        status, message = problem
        return _problem(request, context, status, message, unreadable=selection.invalid)

    if selection.versions:
        builds, missing = _load_versions(request.user, selection.versions)
    else:
        builds, missing = _load_runs(request.user, selection.runs)
    if missing:
        return _problem(request, context, 404, "Some of these builds do not exist.", missing=missing)

    history_key = request.GET.get("history")
    if history_key is not None:
        # One history chart, asked for by the page when it scrolls into view (see _histories).
        _load_series(builds, key=history_key)
        if not any(history_key in b.metrics for b in builds):
            return HttpResponseNotFound("None of these builds logged this metric.", content_type="text/plain")
        context.update(builds=builds, chart=_history_chart(builds, history_key))
        return render(request, "web/compare.html#history-chart", context)

    _load_details(builds)
    context.update(_comparison(request, builds, versions_mode=bool(selection.versions)))
    return render(request, "web/compare.html", context)


def _selection_problem(selection: Selection) -> tuple[int, str] | None:
    """(status, message) when the query does not name two to four builds of one kind; None when it does."""
    if selection.invalid:
        return 400, "Some builds could not be read."
    if selection.versions and selection.runs:
        return 400, "Compare either model versions or runs, not both in one page."
    if selection.count > MAX_BUILDS:
        return 400, (
            f"At most {MAX_BUILDS} builds can be compared at once; you picked {selection.count}. "
            "Remove some and try again."
        )
    if selection.count == 0:
        return 200, ""
    if selection.count < MIN_BUILDS:
        return 400, "Pick at least two builds to compare."
    return None


def _problem(request, context, status: int, message: str, *, unreadable=(), missing=()) -> HttpResponse:
    context.update(
        problem=message,
        unreadable=list(unreadable),
        missing=list(missing),
        breadcrumbs=[("Compare", None)],
    )
    return render(request, "web/compare.html", context, status=status)


# --- Loading ----------------------------------------------------------------------------------------------------------


ALIASES = ModelAlias.objects.only("id", "alias", "version_id").order_by("alias")


def _load_versions(user, refs: list[tuple[str, int]]) -> tuple[list[Build], list[str]]:
    """Query 1: the versions the user may read, with model, run and experiment; query 2: their aliases. A version
    the user may not read is missing, as one that does not exist."""
    match = Q()
    for name, number in refs:
        match |= Q(model__name=name, version=number)
    rows = (
        ModelVersion.objects.readable_by(user)
        .filter(match)
        .select_related("model", "run", "run__experiment")
        .prefetch_related(
            Prefetch("aliases", queryset=ModelAlias.objects.only("id", "alias", "version_id").order_by("alias"))
        )
    )
    by_ref = {(v.model.name, v.version): v for v in rows}
    missing = [f"{name} version {number}" for name, number in refs if (name, number) not in by_ref]
    builds = []
    for i, (name, number) in enumerate(refs):
        version = by_ref.get((name, number))
        if version is not None:
            builds.append(
                Build(
                    index=i,
                    ref=version_ref(name, number),
                    run=version.run,
                    version=version,
                    aliases=sorted(a.alias for a in version.aliases.all()),
                )
            )
    same_model = len({b.version.model_id for b in builds}) == 1
    scans = scanning.scans_for_versions(b.version.pk for b in builds)
    for b in builds:
        b.scan = scans[b.version.pk]
        b.label = f"v{b.version.version}" if same_model else f"{b.version.model.name} v{b.version.version}"
    return builds, missing


def _load_runs(user, run_ids: list[str]) -> tuple[list[Build], list[str]]:
    """Query 1: the runs the user may read, with their experiment."""
    runs = Run.objects.active().readable_by(user).filter(pk__in=run_ids).select_related("experiment")
    by_id = {r.pk: r for r in runs}
    missing = [f"run {run_id}" for run_id in run_ids if run_id not in by_id]
    builds = [Build(index=i, ref=run_id, run=by_id[run_id]) for i, run_id in enumerate(run_ids) if run_id in by_id]
    names = [b.run.name or b.run.pk[:8] for b in builds]
    for b, name in zip(builds, names, strict=True):
        b.label = name if names.count(name) == 1 else f"{name} ({b.run.pk[:6]})"
    return builds, missing


def _by_run(builds: list[Build]) -> dict[str, list[Build]]:
    by_run: dict[str, list[Build]] = {}
    for i, b in enumerate(builds):
        b.index = i
        if b.run is not None:
            by_run.setdefault(b.run.pk, []).append(b)
    return by_run


def _load_series(builds: list[Build], key: str | None = None) -> None:
    """One query: the metric summaries of the builds (of one metric when `key` is given)."""
    by_run = _by_run(builds)
    if not by_run:
        return
    rows = MetricSeries.objects.filter(run_id__in=list(by_run)).order_by()
    if key is not None:
        rows = rows.filter(key=key)
    for series in rows:
        for b in by_run[series.run_id]:
            b.metrics[series.key] = series


def _load_details(builds: list[Build]) -> None:
    """Query 3: params; query 4: metric summaries; query 5: run inputs with their datasets (profiles left behind)."""
    by_run = _by_run(builds)
    if not by_run:
        return
    run_ids = list(by_run)
    for run_id, key, value in Param.objects.filter(run_id__in=run_ids).order_by().values_list("run_id", "key", "value"):
        for b in by_run[run_id]:
            b.params[key] = value
    _load_series(builds)
    inputs = (
        RunInput.objects.filter(run_id__in=run_ids)
        .select_related("dataset")
        .defer("dataset__profile")
        .annotate(num_rows=KeyTextTransform("num_rows", "dataset__profile"))
        .order_by()
    )
    for item in inputs:
        ref = diff.DatasetRef(
            id=item.dataset.pk,
            name=item.dataset.name,
            digest=item.dataset.digest,
            num_rows=diff.as_count(item.num_rows),
            schema=item.dataset.schema,
        )
        for b in by_run[item.run_id]:
            b.inputs.append((item.context, ref))


def _query_url(request: HttpRequest, **changes) -> str:
    """This page's address with some parameters replaced (None or [] removes one)."""
    query: QueryDict = request.GET.copy()
    for key, value in changes.items():
        if value is None or value == []:
            query.pop(key, None)
        elif isinstance(value, list):
            query.setlist(key, value)
        else:
            query[key] = value
    return f"{reverse('compare')}?{query.urlencode(safe=',:')}"


def _names_param(names: list[str]) -> list[str]:
    """`?lower=a,b` for names without commas; names holding a comma travel in their own parameter."""
    plain = [n for n in names if "," not in n]
    return ([",".join(plain)] if plain else []) + [n for n in names if "," in n]


def _comparison(request: HttpRequest, builds: list[Build], *, versions_mode: bool) -> dict:
    labels = [b.label for b in builds]
    diff_flag = request.GET.get("diff")
    version_tags = [_mapping(b.version.tags) if b.version else {} for b in builds]
    tables = [_table("params", "Parameters", "Parameter", [b.params for b in builds], diff_flag)]
    if any(version_tags):
        tables.append(_table("version-tags", "Version tags", "Tag", version_tags, diff_flag))
    tables.append(_table("tags", "Run tags", "Tag", [_mapping(b.run.tags if b.run else {}) for b in builds], diff_flag))
    environments = [_environment(b) for b in builds]
    tables.append(_table("environment", "Code and environment", "Field", environments, diff_flag, ENVIRONMENT))

    dataset_diffs = diff.dataset_diff([b.inputs for b in builds])
    packages = diff.package_diff([b.run.packages if b.run else {} for b in builds])
    context = {
        "builds": builds,
        "versions_mode": versions_mode,
        "tables": tables,
        "packages": packages,
        "package_summary": list(zip(builds[1:], packages.counts[1:], strict=True)),
        "dataset_diffs": dataset_diffs,
        "schema_changes": [
            (ctx.context, builds[i], cell.schema)
            for ctx in dataset_diffs
            for i, cell in enumerate(ctx.cells)
            if cell.schema is not None and cell.schema.changed
        ],
        "hidden_params": [(k, v) for k, values in request.GET.lists() if k != "color" for v in values],
        "evaluation_warnings": diff.evaluation_warnings(labels, dataset_diffs),
        "baseline_urls": _baseline_urls(request, builds, versions_mode),
        "breadcrumbs": _breadcrumbs(builds, versions_mode),
    }
    context["signature_compare"] = _signature_compare(builds) if versions_mode else None
    context.update(_metrics(request, builds))
    return context


def _signature_compare(builds: list[Build]) -> dict | None:
    """Each version's input and output columns side by side, marked against the first; None when none has any."""
    found = [b.version.signature if isinstance(b.version.signature, dict) else None for b in builds]
    if not any(found):
        return None
    return {
        "summary": [
            (b, signatures.diff(found[0], found[i]).problems() if found[0] and found[i] else [], bool(found[i]))
            for i, b in enumerate(builds)
            if i
        ],
        "sides": [
            ("Inputs", signatures.side_by_side(found, "inputs")),
            ("Outputs", signatures.side_by_side(found, "outputs")),
        ],
    }


def _mapping(value: object) -> dict:
    """A JSON column that should hold an object; anything else reads as empty rather than failing the page."""
    return value if isinstance(value, dict) else {}


def _table(table_id: str, title: str, key_label: str, columns, diff_flag: str | None, keys=None) -> dict:
    rows = diff.value_rows(columns, keys=keys)
    differing = sum(1 for r in rows if not r.same)
    return {
        "id": table_id,
        "title": title,
        "key_label": key_label,
        "rows": rows,
        "differing": differing,
        "only_diff": diff.only_differences(diff_flag, len(rows)),
    }


ENVIRONMENT = (
    "Experiment",
    "Python",
    "Platform",
    "Image",
    "Git commit",
    "Git branch",
    "Uncommitted changes",
    "Git remote",
    "Entry point",
    "Status",
)


def _environment(b: Build) -> dict[str, object]:
    """The rows of ENVIRONMENT for one build; an empty value is missing ("—"), as if the run never reported it."""
    run = b.run
    if run is None:
        return {}
    dirty = None if run.git_dirty is None else ("yes (uncommitted changes)" if run.git_dirty else "no")
    values = (
        run.experiment.name,
        run.python_version,
        run.platform,
        run.image,
        run.git_commit,
        run.git_branch,
        dirty,
        run.git_remote,
        run.entry_point,
        run.get_status_display(),
    )
    return {key: value or None for key, value in zip(ENVIRONMENT, values, strict=True)}


def _baseline_urls(request, builds: list[Build], versions_mode: bool) -> list[str | None]:
    """For each build but the first, the address of this page with that build as the baseline."""
    param = "versions" if versions_mode else "runs"
    urls: list[str | None] = [None]
    for b in builds[1:]:
        order = [b.ref] + [o.ref for o in builds if o is not b]
        urls.append(_query_url(request, **{param: ",".join(order)}))
    return urls


def _breadcrumbs(builds: list[Build], versions_mode: bool) -> list[tuple[str, str | None]]:
    if versions_mode:
        crumbs = [("Models", reverse("model_list"))]
        models = {b.version.model.name for b in builds}
        if len(models) == 1:
            name = models.pop()
            crumbs.append((name, reverse("model_detail", args=[name])))
        return [*crumbs, ("Compare versions", None)]
    crumbs = [("Experiments", reverse("experiment_list"))]
    experiments = {b.run.experiment for b in builds}
    if len(experiments) == 1:
        experiment = experiments.pop()
        crumbs.append((experiment.name, reverse("experiment_detail", args=[experiment.pk])))
    return [*crumbs, ("Compare runs", None)]


@dataclass(frozen=True, slots=True)
class MetricCell:
    text: str
    detail: str
    title: str
    best: bool
    missing: bool
    label: str = ""  # the build's label, shown above the value when the table stacks on a phone
    delta: str = ""  # the change from the baseline (first) build, signed
    verdict: str = ""  # "better", "worse", "same" or "unknown", by the metric's direction


def _metric_cell(
    series: MetricSeries | None, best: bool, label: str, baseline: MetricSeries | None = None, direction=None
) -> MetricCell:
    if series is None:
        return MetricCell("—", "", "Not logged by this build", False, True, label)
    detail = f"min {diff.format_number(series.min_value, 4)} · max {diff.format_number(series.max_value, 4)}"
    title = f"last value at step {series.last_step:,}; {series.count:,} points; {detail}"
    delta = verdict = ""
    if baseline is not None and direction is not None:
        change = _difference(series.last_value, baseline.last_value)
        delta, verdict = diff.signed(change), diff.verdict(change, direction)
    return MetricCell(
        diff.format_number(series.last_value),
        detail if series.count > 1 else "",
        title,
        best,
        False,
        label,
        delta,
        verdict,
    )


def _difference(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or math.isinf(value) or math.isinf(baseline):
        return None
    return value - baseline


def _metrics(request: HttpRequest, builds: list[Build]) -> dict:
    keys = sorted({k for b in builds for k in b.metrics}, key=lambda k: (k.lower(), k))
    lower = diff.parse_metric_names(request.GET.getlist("lower"), keys)
    higher = diff.parse_metric_names(request.GET.getlist("higher"), keys)

    rows, directions = [], {}
    for key in keys:
        direction = diff.metric_direction(key, lower, higher)
        directions[key] = direction
        series = [b.metrics.get(key) for b in builds]
        best = diff.best_indices(
            [s.last_value if s else None for s in series], lower_is_better=direction.lower_is_better
        )
        as_lower = diff.toggle_direction(key, lower, higher, lower_is_better=True)
        as_higher = diff.toggle_direction(key, lower, higher, lower_is_better=False)
        rows.append(
            {
                "key": key,
                "direction": direction,
                "lower_url": _query_url(request, lower=_names_param(as_lower[0]), higher=_names_param(as_lower[1])),
                "higher_url": _query_url(request, lower=_names_param(as_higher[0]), higher=_names_param(as_higher[1])),
                "cells": [
                    _metric_cell(s, i in best and len(builds) > 1, builds[i].label, series[0] if i else None, direction)
                    for i, s in enumerate(series)
                ],
            }
        )

    color_key = request.GET.get("color")
    if color_key not in directions:
        color_key = keys[0] if keys else None
    return {
        "metric_rows": rows,
        "direction_rule": diff.DIRECTION_RULE,
        "metric_keys": keys,
        "color_key": color_key,
        "bars_figure": _bars(builds, keys),
        "parallel_figure": _parallel(builds, color_key, directions),
        **_histories(request, builds, keys),
    }


def _bars(builds: list[Build], keys: list[str]) -> dict | None:
    shown = keys[:MAX_BAR_METRICS]
    if not shown:
        return None
    values = [[b.metrics[k].last_value if k in b.metrics else None for k in shown] for b in builds]
    return figures.final_bars_figure(shown, [b.label for b in builds], [b.color for b in builds], values)


def _parallel(builds: list[Build], color_key: str | None, directions: dict) -> dict | None:
    if color_key is None:
        return None
    rows = diff.value_rows([b.params for b in builds])
    # Params that differ say the most, numeric ones first (learning rates, depths); the figure leaves out constant ones.
    ranked = sorted(rows, key=lambda r: (r.same, not all(_is_number(v) for v in r.values)))
    ranked = [r.key for r in ranked]
    params = [{r.key: r.values[i] for r in rows} for i in range(len(builds))]
    metric = [b.metrics[color_key].last_value if color_key in b.metrics else None for b in builds]
    return figures.parallel_figure(
        [b.label for b in builds],
        [b.color for b in builds],
        params,
        ranked[:MAX_PARALLEL_PARAMS],
        color_key,
        metric,
        lower_is_better=bool(directions[color_key].lower_is_better),
    )


def _chart_id(key: str) -> str:
    """An element id for a metric's chart: stable, so a chart loaded later never collides with another."""
    return "history-" + hashlib.sha1(key.encode()).hexdigest()[:12]


def _history_chart(builds: list[Build], key: str, histories=None, max_points=None) -> dict:
    """A chart of one metric's history in every build that logged it; reads the points unless given them."""
    chart_id = _chart_id(key)
    if histories is None:
        histories = chart_histories([b.metrics[key] for b in builds if key in b.metrics], max_points or PREVIEW_POINTS)
    traces = [
        figures.HistoryTrace(b.label, b.color, *histories.get(b.metrics[key].pk, ([], [])))
        for b in builds
        if key in b.metrics
    ]
    figure = figures.history_figure(key, traces, max_points=max_points or figures.points_per_trace(len(traces)))
    return {"id": chart_id, "key": key, "figure": figure}


def _is_number(text: str | None) -> bool:
    try:
        return text is not None and math.isfinite(float(text))
    except ValueError:
        return False


def _histories(request: HttpRequest, builds: list[Build], keys: list[str]) -> dict:
    """History charts for the metrics that have more than one point somewhere.

    The first charts, up to MAX_INLINE_ROWS points read, come with the page (query 6, one read for all of them);
    the others, up to MAX_HISTORY_CHARTS in all, are fetched one by one as they scroll into view; any more are
    listed with links to each run's history.
    """
    inline, lazy, skipped, rows = [], [], [], 0
    for key in keys:
        series = [b.metrics[key] for b in builds if key in b.metrics]
        if not any(s.count > 1 for s in series):
            continue
        cost = sum(min(s.count, PREVIEW_POINTS) for s in series)  # long histories are read as cached previews
        if len(inline) + len(lazy) >= MAX_HISTORY_CHARTS:
            skipped.append(key)
        elif not lazy and rows + cost <= MAX_INLINE_ROWS:
            inline.append(key)
            rows += cost
        else:
            lazy.append(key)
    per_trace = figures.points_per_trace(sum(1 for k in inline for b in builds if k in b.metrics))
    histories = chart_histories([b.metrics[k] for k in inline for b in builds if k in b.metrics], per_trace)
    charts = [_history_chart(builds, key, histories, per_trace) for key in inline]
    pending = [{"key": key, "url": _query_url(request, history=key)} for key in lazy]
    skipped_links = [
        (key, [(b, reverse("metric_history", args=[b.run.pk, key])) for b in builds if key in b.metrics])
        for key in skipped
    ]
    return {"history_charts": charts, "pending_histories": pending, "skipped_histories": skipped_links}
