"""Browsing pages: models and their versions, experiments and runs, metric histories.

Every page needs a signed-in user (LoginRequiredMiddleware) and shows only what that user may read: lists go
through `readable_by`, single objects through the catalog's and tracking's `*_for` helpers, whose NotFound and
Forbidden become the 404 and 403 pages (registry.middleware.DomainErrorPages). Each page reads a fixed number of
queries whatever the data size; tests/web/ counts them at 1 and at 50 rows. An htmx request that targets one of a
page's partials (by the element id it swaps) gets just that partial.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import F, Prefetch
from django.db.models.functions import Lower
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import content_disposition_header

from registry.accounts.access import level_of
from registry.catalog import downloads
from registry.catalog.access import model_for, version_for
from registry.catalog.blobs import artifact_read
from registry.catalog.models import STAGE_VALUES, ArtifactFile, ModelAlias, ModelVersion, RegisteredModel, Stage
from registry.catalog.services import may_delete_version
from registry.governance.models import StageChange, stage_intervals
from registry.keyset import Key, keyset_page
from registry.lib.access import Level
from registry.lib.names import ALIAS_MAX
from registry.lib.numbers import float_to_json
from registry.lib.series import DEFAULT_POINTS
from registry.lib.signature import describe_type
from registry.scanning import services as scanning
from registry.scanning.models import VersionScan
from registry.tracking.access import experiment_for, require_run_read, run_for, run_level
from registry.tracking.history import chart_histories
from registry.tracking.models import Experiment, MetricPoint, MetricSeries, Param, Run, build_prefetches
from registry.web.figures import metric_history_figure, stage_timeline_figure, version_trend_figure
from registry.web.markdown import render_markdown
from registry.web.query import choice, key_list, metric_filters, metric_order
from registry.web.views import cards, edit, governance
from registry.web.views.access import Target, access_context

PAGE_SIZE = 25
# The start of a text file that its inline preview shows.
PREVIEW_BYTES = 64 * 1024
DEFAULT_KEY_COLUMNS = 3
# Newest runs of an experiment read to find its most common param and metric keys.
RECENT_RUNS = 500
# A build page draws at most this many metric charts (one history query each); the rest link to their own pages.
CHARTS_MAX = 12
# The metric history page draws up to this many points before downsampling.
FULL_HISTORY_POINTS = 20_000
# Stage changes read for a model's timeline, newest first.
STAGE_CHANGES_READ = 1000
INTERVALS_LISTED = 25
# Larger numbers cannot be a version or a primary key; SQLite would refuse them as query parameters.
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1

MODEL_SORTS = {
    "name": (Lower("name"), "name"),
    "-name": (Lower("name").desc(), "-name"),
    "-updated": ("-updated_at", "name"),
    "updated": ("updated_at", "name"),
}
EXPERIMENT_SORTS = {
    "name": (Lower("name"), "name"),
    "-last_run": (F("last_run_at").desc(nulls_last=True), "name"),
}


def _render(request: HttpRequest, template: str, context: dict, *, partial: str | None = None) -> HttpResponse:
    response = render(request, f"{template}#{partial}" if partial else template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def _htmx_partial(request: HttpRequest, partials: set[str]) -> str | None:
    """The partial an htmx request asks for: the id of the element it swaps, if the page has a partial by that name.

    A history-restore request (the user went back and htmx's cache missed) needs the whole page.
    """
    if request.htmx and not request.htmx.history_restore_request and request.htmx.target in partials:
        return request.htmx.target
    return None


def _page(request: HttpRequest, queryset, per_page: int = PAGE_SIZE) -> Page:
    """The requested page; a missing, malformed or out-of-range `page` falls back to the first or last page."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


# --- Models ---------------------------------------------------------------------------------------------------------


def model_list(request: HttpRequest) -> HttpResponse:
    """Queries: COUNT, the page of models (counts and Production list as indexed subqueries), their aliases."""
    q = request.GET.get("q", "").strip()
    tag = request.GET.get("tag", "").strip()
    stage = request.GET.get("stage", "")
    stage = stage if stage in STAGE_VALUES else ""
    sort = choice(request, "sort", tuple(MODEL_SORTS), "name")

    models = RegisteredModel.objects.readable_by(request.user).search(q)
    if tag:
        models = models.tagged(tag)
    if stage:
        models = models.having_stage(stage)
    models = models.select_related("owner").with_version_summary().prefetch_aliases().order_by(*MODEL_SORTS[sort])
    context = {
        "nav": "models",
        "breadcrumbs": [("Models", None)],
        "page": _page(request, models),
        "q": q,
        "tag": tag,
        "stage": stage,
        "sort": sort,
        "stages": STAGE_VALUES,
        "filtered": bool(q or tag or stage),
        "registry_url": request.build_absolute_uri("/"),
    }
    return _render(request, "web/model_list.html", context, partial=_htmx_partial(request, {"models"}))


def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Queries: model, aliases, recent metric keys, versions COUNT and page, the page's metric values, trend points,
    stage changes (8), then the governance parts (governance.model_context: pending requests, policy, permissions,
    audit events). An htmx request for the versions table or the trend chart reads only what that partial needs."""
    model = model_for(request.user, name, queryset=RegisteredModel.objects.select_related("owner").prefetch_aliases())
    known_keys = [key for key, _ in model.recent_metric_keys()]
    chosen = key_list(request, "metrics")
    chosen = known_keys[:DEFAULT_KEY_COLUMNS] if chosen is None else chosen
    partial = _htmx_partial(request, {"versions", "trend"})
    context = {
        "nav": "models",
        "breadcrumbs": [("Models", reverse("model_list")), (model.name, None)],
        "model": model,
        "user_level": level_of(model, request.user),
        "known_keys": known_keys,
        "chosen_keys": chosen,
        "metrics_chosen": "metrics" in request.GET,
    }
    if partial in (None, "versions"):
        context.update(_versions_context(request, model, chosen))
    if partial in (None, "trend"):
        context.update(_trend_context(request, model, known_keys, chosen))
    if partial is None:
        context.update(_timeline_context(model))
        context.update(governance.model_context(request, model, context["production_timeline"]))
        context.update(access_context(Target(model, "model"), request.user))
        context.update(edit.editable_context(model, request.user))
        context.update(edit.aliases_context(model, request.user))
        context.update(cards.card_context(model, request.user))
    return _render(request, "web/model_detail.html", context, partial=partial)


def _versions_context(request: HttpRequest, model: RegisteredModel, keys: list[str]) -> dict:
    """The versions table: filtered by stage and alias, ordered by version or by a metric column (its last value in
    the version's run; versions without it last). Queries: COUNT, the page, the page's metric values, the page's
    files and their scan verdicts."""
    stage = choice(request, "stage", tuple(STAGE_VALUES), "")
    alias = request.GET.get("alias", "").strip()[:ALIAS_MAX]
    versions = model.versions.select_related("created_by", "run").only(
        "model_id", "version", "stage", "status", "created_at", "created_by__username", "run__name"
    )
    if stage:
        versions = versions.filter(stage=stage)
    if alias:
        versions = versions.filter(aliases__alias=alias)
    order = metric_order(request, "sort")
    if order and order[0] not in ("version",):
        key, descending = order
        versions = versions.with_metric_value(key)
        sort_keys = [Key("metric_value", descending, float, nullable=True), Key("version", True)]
    else:
        sort_keys = [Key("version", order != ("version", False))]
    page = keyset_page(request, versions, sort_keys, PAGE_SIZE)
    values = MetricSeries.objects.values_by_run([v.run_id for v in page if v.run_id], keys, "last_value")
    aliases: dict[int, list[str]] = {}
    for a in model.aliases.all():
        aliases.setdefault(a.version_id, []).append(a.alias)
    scans = scanning.scans_for_versions(v.pk for v in page)
    for v in page:
        v.scan = scans[v.pk]
    rows = [(v, aliases.get(v.pk, []), [values.get((v.run_id, key)) for key in keys]) for v in page]
    current = f"{'-' if order[1] else ''}{order[0]}" if order else "-version"
    return {
        "versions_page": page,
        "version_rows": rows,
        "version_stage": stage,
        "version_alias": alias,
        "version_sort": current,
        "version_columns": [_sort_column(key, order) for key in keys],
        "version_number_sort": _sort_column("version", order or ("version", True)),
        "versions_filtered": bool(stage or alias),
        "stages": STAGE_VALUES,
    }


def _sort_column(key: str, order: tuple[str, bool] | None) -> dict:
    """A sortable header: its key, the order its link asks for (highest first, then lowest first), its aria-sort."""
    current = order[1] if order and order[0] == key else None
    return {
        "key": key,
        "next": key if current else f"-{key}",
        "arrow": {True: " ↓", False: " ↑", None: ""}[current],
        "aria_sort": {True: "descending", False: "ascending", None: None}[current],
    }


def _trend_context(request: HttpRequest, model: RegisteredModel, known: list[str], chosen: list[str]) -> dict:
    metric = request.GET.get("trend", "").strip() or next(iter(chosen + known), "")
    if not metric:
        return {"trend_metric": "", "trend_figure": None}
    if metric not in known:
        return {"trend_metric": metric, "trend_figure": None, "trend_problem": f"No recent version logged {metric!r}."}
    rows = list(
        model.recent_versions()
        .with_metric_value(metric)
        .order_by("version")
        .values_list("version", "stage", "metric_value")
    )
    versions, stages, values = (list(column) for column in zip(*rows, strict=True)) if rows else ([], [], [])
    return {"trend_metric": metric, "trend_figure": version_trend_figure(metric, versions, values, stages)}


def _timeline_context(model: RegisteredModel) -> dict:
    changes = StageChange.objects.filter(model=model).timeline_rows(STAGE_CHANGES_READ)
    intervals = stage_intervals(changes, stages=(Stage.PRODUCTION, Stage.STAGING))
    production = [i for i in intervals if i.stage == Stage.PRODUCTION]
    if not intervals:
        return {"intervals": [], "timeline_figure": None, "production_timeline": production}
    now = timezone.now()
    earliest = changes[0].changed_at
    zone = timezone.get_current_timezone()
    bars = [
        (i.stage, i.version, (i.start or earliest).astimezone(zone), (i.end or now).astimezone(zone)) for i in intervals
    ]
    listed = [(i, i.duration(now)) for i in reversed(intervals[-INTERVALS_LISTED:])]
    return {
        "intervals": listed,
        "intervals_total": len(intervals),
        "changes_truncated": len(changes) == STAGE_CHANGES_READ,
        "timeline_figure": stage_timeline_figure(bars),
        "production_timeline": production,
    }


def _get_version_or_404(user, name: str, number: int) -> ModelVersion:
    versions = ModelVersion.objects.select_related(
        "model", "created_by", "run__experiment", "run__user"
    ).prefetch_related(
        Prefetch("aliases", queryset=ModelAlias.objects.only("version_id", "alias").order_by("alias")),
        Prefetch(
            "model__aliases",
            queryset=ModelAlias.objects.select_related("version")
            .only("model_id", "alias", "version__version")
            .order_by("alias"),
        ),
        "artifacts",
        Prefetch(
            "stage_changes", queryset=StageChange.objects.select_related("changed_by").order_by("changed_at", "id")
        ),
        *build_prefetches("run__"),
    )
    return version_for(user, name, number, queryset=versions)


def version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Queries: version with model, run and people; aliases, artifacts, stage changes, params, metrics, inputs, steps
    (8), one history query per charted metric (see _build_context), then the stage panel (governance.version_context:
    policy and gates, permissions, pending requests, and whatever the policy's gates read)."""
    mv = _get_version_or_404(request.user, name, version)
    context = {
        "nav": "models",
        "breadcrumbs": [
            ("Models", reverse("model_list")),
            (mv.model.name, reverse("model_detail", args=[mv.model.name])),
            (f"Version {mv.version}", None),
        ],
        "version": mv,
        "model": mv.model,
        "user_level": level_of(mv.model, request.user),
        "run": mv.run,
        **_files_context(mv.artifacts.all()),
        **_build_context(mv.run),
        **_usage_context(request, mv),
        **edit.editable_context(mv, request.user),
        **edit.aliases_context(mv.model, request.user, version=mv.version),
        "can_delete": may_delete_version(mv, request.user),
        **_signature_context(mv),
        **cards.card_context(mv.model, request.user, mv),
    }
    context.update(governance.version_context(request, mv))
    return render(request, "web/version_detail.html", context)


def _usage_context(request: HttpRequest, mv: ModelVersion) -> dict:
    """How to refer to the version and load it: its references and a snippet for our client, the CLI and MLflow."""
    name, number = mv.model.name, mv.version
    aliases = [a.alias for a in mv.aliases.all()]
    ref = f"{name}@{aliases[0]}" if aliases else f"{name}/{number}"
    return {
        "references": [
            (f"models:/{name}/{number}", "This version, always"),
            *((f"models:/{name}@{alias}", f"Whatever @{alias} points at") for alias in aliases),
        ],
        "load_ref": ref,
        "registry_url": request.build_absolute_uri("/").rstrip("/"),
        "mlflow_uri": f"models:/{name}@{aliases[0]}" if aliases else f"models:/{name}/{number}",
    }


# Characters of the input example shown on the version page.
EXAMPLE_SHOWN = 4000


def _signature_context(mv: ModelVersion) -> dict:
    signature = mv.signature if isinstance(mv.signature, dict) else None
    if not signature:
        return {"signature": None}
    example = signature.get("input_example")
    text = "" if example is None else json.dumps(example, indent=2, ensure_ascii=False)
    return {
        "signature": signature,
        "signature_sides": [
            (title, [{**c, "type_text": describe_type(c)} for c in signature.get(side) or []])
            for title, side in (("Inputs", "inputs"), ("Outputs", "outputs"))
        ],
        "signature_example": text[:EXAMPLE_SHOWN],
        "signature_example_cut": len(text) > EXAMPLE_SHOWN,
    }


def _files_context(files) -> dict:
    """The files table, each file with its safety scan verdict (`f.scan`; one query), and their roll-up."""
    files = list(files)
    verdicts = scanning.file_scans(files)
    for f in files:
        f.scan = verdicts[f.path]
    return {
        "files_scan": VersionScan.of(list(verdicts.values())),
        "artifact_tree": ArtifactFile.tree(files),
        "artifact_count": len(files),
        "artifact_bytes": sum(f.size or 0 for f in files),
    }


def version_artifact_download(request: HttpRequest, name: str, version: int, path: str) -> HttpResponse:
    mv = version_for(request.user, name, version)
    artifact = get_object_or_404(ArtifactFile, version=mv, path=path)
    return _download(request, artifact)


def _download(request: HttpRequest, artifact: ArtifactFile) -> HttpResponse:
    """The file as an attachment; a browser resuming a large download asks for the rest with Range."""
    try:
        return downloads.download(request, artifact)
    except downloads.RangeNotSatisfiable as exc:
        response = HttpResponse(exc.message, status=416, content_type="text/plain; charset=utf-8")
        response["Content-Range"] = exc.content_range
        return response


def version_artifact_preview(request: HttpRequest, name: str, version: int, path: str) -> HttpResponse:
    mv = version_for(request.user, name, version)
    return _preview(request, get_object_or_404(ArtifactFile, version=mv, path=path))


def _preview(request: HttpRequest, artifact: ArtifactFile) -> HttpResponse:
    """The start of a text file, as the files table shows it inline: Markdown rendered (and sanitised), JSON
    indented, anything else as plain text. Binary files and files too large are refused with a sentence."""
    kind = artifact.preview_kind
    context = {"file": artifact, "kind": kind, "text": "", "cut": artifact.size > PREVIEW_BYTES}
    if kind is not None:
        try:
            head = b"".join(artifact_read(artifact, 0, PREVIEW_BYTES - 1))
        except (FileNotFoundError, OSError):
            context.update(kind=None, problem="The file is missing from the artifact store.")
        else:
            if b"\x00" in head:
                context.update(kind=None, problem="This file is binary; download it instead.")
            else:
                text = head.decode("utf-8", errors="replace")
                if kind == "json" and not context["cut"]:
                    try:
                        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
                    except ValueError:
                        kind = "text"
                context.update(kind=kind, text=render_markdown(text) if kind == "markdown" else text)
    else:
        context["problem"] = "No preview for this kind of file; download it instead."
    response = render(request, "web/build_sections.html#file_preview", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- Builds (shared by version and run pages) -----------------------------------------------------------------------


def _build_context(run: Run | None) -> dict:
    """What a build page shows of its run, from the prefetched rows, plus one history query per charted metric.

    Only metrics with more than one point are charted, at most CHARTS_MAX of them, all read in one query
    (registry.tracking.history.chart_histories: short histories whole, long ones as cached downsampled previews).
    """
    if run is None:
        return {}
    metrics = list(run.metrics.all())
    charted = [series for series in metrics if series.count > 1][:CHARTS_MAX]
    histories = chart_histories(charted)
    charts = []
    for index, series in enumerate(charted):
        steps, values = histories.get(series.pk, ([], []))
        charts.append(
            {
                "id": f"metric-chart-{index}",
                "series": series,
                "figure": metric_history_figure(series.key, steps, values),
                "downsampled": series.count > DEFAULT_POINTS,
            }
        )
    return {
        "params": run.params.all(),
        "metrics": metrics,
        "charts": charts,
        "charts_left_out": sum(1 for series in metrics if series.count > 1) - len(charted),
        "inputs": run.inputs.all(),
        "steps": run.steps.all(),
    }


# --- Experiments and runs -------------------------------------------------------------------------------------------


def experiment_list(request: HttpRequest) -> HttpResponse:
    """Queries: COUNT, the page of experiments with run count and last run as indexed subqueries (2)."""
    q = request.GET.get("q", "").strip()
    sort = choice(request, "sort", tuple(EXPERIMENT_SORTS), "name")
    experiments = (
        Experiment.objects.active()
        .readable_by(request.user)
        .search(q)
        .with_run_stats()
        .order_by(*EXPERIMENT_SORTS[sort])
    )
    context = {
        "nav": "experiments",
        "breadcrumbs": [("Experiments", None)],
        "page": _page(request, experiments),
        "q": q,
        "sort": sort,
    }
    return _render(request, "web/experiment_list.html", context, partial=_htmx_partial(request, {"experiments"}))


def experiment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Queries: experiment, param and metric key counts, runs COUNT and page, the page's param and metric values (7).

    Filters and ordering read the metric summary rows (MetricSeries), never the point history.
    """
    if pk > BIGINT_MAX:
        raise Http404("No such experiment.")
    experiment = experiment_for(request.user, pk, queryset=Experiment.objects.active().select_related("owner"))
    runs = experiment.runs.active()
    recent = runs.order_by("-start_time").values("pk")[:RECENT_RUNS]
    param_keys = [key for key, _ in Param.objects.key_counts(recent)]
    metric_keys = [key for key, _ in MetricSeries.objects.key_counts(recent)]
    params = key_list(request, "params")
    params = param_keys[:DEFAULT_KEY_COLUMNS] if params is None else params
    metrics = key_list(request, "metrics")
    metrics = metric_keys[:DEFAULT_KEY_COLUMNS] if metrics is None else metrics

    filters, problems = metric_filters(request)
    for f in filters:
        runs = runs.metric_matches(f.key, f.operator, f.value)
        if f.key not in metric_keys:
            problems.append(f"No recent run logged a metric named {f.key!r}, so the filter “{f}” matches nothing.")
    order = metric_order(request)
    sort_keys = [Key("start_time", True, datetime), Key("id", True, str)]
    if order:
        key, descending = order
        runs = runs.with_metric_value(key)
        sort_keys.insert(0, Key("metric_value", descending, float, nullable=True))
        if key not in metric_keys:
            problems.append(f"No recent run logged a metric named {key!r}; runs are shown newest first.")

    columns = ("name", "status", "start_time", "end_time", "experiment_id", "user__username")
    page = keyset_page(request, runs.select_related("user").only(*columns), sort_keys, PAGE_SIZE)
    ids = [run.pk for run in page]
    param_values = Param.objects.values_by_run(ids, params, "value")
    metric_values = MetricSeries.objects.values_by_run(ids, metrics, "last_value")
    rows = [
        (run, [param_values.get((run.pk, k)) for k in params], [metric_values.get((run.pk, k)) for k in metrics])
        for run in page
    ]
    context = {
        "nav": "experiments",
        "breadcrumbs": [("Experiments", reverse("experiment_list")), (experiment.name, None)],
        "experiment": experiment,
        "user_level": level_of(experiment, request.user),
        **access_context(Target(experiment, "experiment"), request.user),
        "page": page,
        "rows": rows,
        "param_keys": param_keys,
        "metric_keys": metric_keys,
        "params": params,
        "metric_columns": [_sort_column(key, order) for key in metrics],
        "filter_text": ", ".join(str(f) for f in filters),
        "order": f"{'-' if order[1] else ''}{order[0]}" if order else "",
        "problems": problems,
    }
    return _render(request, "web/experiment_detail.html", context, partial=_htmx_partial(request, {"runs"}))


def _get_run_or_404(user, run_id: str) -> Run:
    runs = (
        Run.objects.active()
        .select_related("experiment", "user")
        .prefetch_build()
        .prefetch_related(
            "artifacts",
            Prefetch(
                "model_versions",
                queryset=ModelVersion.objects.select_related("model")
                .only("run_id", "version", "stage", "created_at", "model__name")
                .order_by("model__name", "version"),
            ),
        )
    )
    return run_for(user, run_id, queryset=runs)


def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    """Queries: run with experiment and user; params, metrics, inputs, steps, artifacts, registered versions (7), then
    one history query per charted metric."""
    run = _get_run_or_404(request.user, run_id)
    context = {
        "nav": "experiments",
        "breadcrumbs": [
            ("Experiments", reverse("experiment_list")),
            (run.experiment.name, reverse("experiment_detail", args=[run.experiment_id])),
            (str(run), None),
        ],
        "run": run,
        **_files_context(run.artifacts.all()),
        "can_register": run_level(run, request.user) >= Level.EDIT,
        **_build_context(run),
    }
    return render(request, "web/run_detail.html", context)


def run_artifact_download(request: HttpRequest, run_id: str, path: str) -> HttpResponse:
    run = run_for(request.user, run_id, queryset=Run.objects.active())
    artifact = get_object_or_404(ArtifactFile, run=run, path=path)
    return _download(request, artifact)


def run_artifact_preview(request: HttpRequest, run_id: str, path: str) -> HttpResponse:
    run = run_for(request.user, run_id, queryset=Run.objects.active())
    return _preview(request, get_object_or_404(ArtifactFile, run=run, path=path))


MAX_OVERLAYS = 3
OVERLAY_CHOICES = 50


def metric_history(request: HttpRequest, run_id: str, key: str) -> HttpResponse:
    """Queries: the series (run and experiment joined), the user's grants on the experiment, the other runs of the
    experiment that logged the metric (for the overlay picker), and one read of the points of this series and of up
    to three overlaid runs (5). The CSV streams every point from one server-side cursor.

    `?overlay=RUN_ID` (up to three) draws other runs' histories of the same metric over this one; they come from the
    same experiment, so whoever reads this run reads them."""
    series = get_object_or_404(
        MetricSeries.objects.select_related("run__experiment"), run_id=run_id, run__deleted_at__isnull=True, key=key
    )
    require_run_read(series.run, request.user)  # 404 alike for a run one may not read
    if request.GET.get("format") == "csv":
        return _metric_csv(series)
    run = series.run
    others = list(
        MetricSeries.objects.filter(run__experiment_id=run.experiment_id, run__deleted_at__isnull=True, key=key)
        .exclude(pk=series.pk)
        .select_related("run")
        .only("id", "count", "run__id", "run__name", "run__start_time")
        .order_by("-run__start_time")[:OVERLAY_CHOICES]
    )
    offered = {other.run_id: other for other in others}
    wanted = dict.fromkeys(request.GET.getlist("overlay"))
    overlaid = [offered[run_id] for run_id in wanted if run_id in offered][:MAX_OVERLAYS]
    histories = MetricPoint.objects.histories([series.pk, *(other.pk for other in overlaid)])
    steps, values = histories.get(series.pk, ([], []))
    overlays = [(str(other.run), *histories.get(other.pk, ([], []))) for other in overlaid]
    context = {
        "nav": "experiments",
        "breadcrumbs": [
            ("Experiments", reverse("experiment_list")),
            (run.experiment.name, reverse("experiment_detail", args=[run.experiment_id])),
            (str(run), reverse("run_detail", args=[run.pk])),
            (key, None),
        ],
        "series": series,
        "run": run,
        "figure": metric_history_figure(
            key, steps, values, max_points=FULL_HISTORY_POINTS, height=480, label=str(run), overlays=overlays
        ),
        "total_points": len(steps),
        "shown_points": min(len(steps), FULL_HISTORY_POINTS),
        "budget": FULL_HISTORY_POINTS,
        "overlaid": [
            (other, urlencode([("overlay", o.run_id) for o in overlaid if o is not other], doseq=True))
            for other in overlaid
        ],
        "overlay_choices": [other for other in others if other not in overlaid],
        "overlay_full": len(overlaid) >= MAX_OVERLAYS,
    }
    return render(request, "web/metric_history.html", context)


def _csv_number(value: float) -> str:
    return float_to_json(value) if math.isnan(value) or math.isinf(value) else repr(value)


def _metric_csv(series: MetricSeries) -> StreamingHttpResponse:
    """Every point, streamed in step order from a server-side cursor, a few thousand rows per chunk."""
    points = series.points.order_by("step", "timestamp").values_list("step", "timestamp", "value")

    def chunks():
        yield "step,timestamp,value\r\n"
        lines = []
        for step, timestamp, value in points.iterator(chunk_size=5000):
            lines.append(f"{step},{timestamp},{_csv_number(value)}\r\n")
            if len(lines) >= 5000:
                yield "".join(lines)
                lines = []
        if lines:
            yield "".join(lines)

    response = StreamingHttpResponse(chunks(), content_type="text/csv; charset=utf-8")
    filename = f"{series.run_id}-{series.key}.csv".replace("/", "_")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
