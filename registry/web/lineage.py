"""The rows behind a lineage graph (registry.lib.lineage lays it out; templates/web/lineage.html draws it as SVG).

For a version: the datasets its run read → the run → the models the run logged → the versions registered from that
run (this one and its copies, in any model the user may read) → their aliases and stages. For a dataset: the runs
that read it → what they logged → the versions registered from them → aliases and stages.

Each graph costs four queries whatever its size (inputs, logged models, versions, aliases), each bounded by
PER_KIND; what is past the bound is counted as left out (one row more is read to know).
"""

from __future__ import annotations

from django.urls import reverse

from registry.catalog.models import ModelAlias, ModelVersion, Stage
from registry.lib.lineage import Graph, Node
from registry.mlflow_compat.models import LoggedModel
from registry.tracking.models import Dataset, Run, RunInput

PER_KIND = 40


def _bounded(queryset, kind: str, graph: Graph) -> list:
    rows = list(queryset[: PER_KIND + 1])
    if len(rows) > PER_KIND:
        graph.left_out[kind] = graph.left_out.get(kind, 0) + 1  # at least one more; the page says "more"
        rows = rows[:PER_KIND]
    return rows


def _dataset_node(dataset: Dataset, *, context: str = "", focus: bool = False) -> Node:
    sub = " · ".join(p for p in (context, dataset.digest[:10]) if p)
    return Node(
        f"dataset:{dataset.pk}", "dataset", dataset.name, sub, reverse("dataset_detail", args=[dataset.pk]), focus
    )


def _run_node(run: Run) -> Node:
    return Node(
        f"run:{run.pk}", "run", run.name or run.pk[:12], run.experiment.name, reverse("run_detail", args=[run.pk])
    )


def _version_node(version: ModelVersion, focus: bool) -> Node:
    return Node(
        f"version:{version.pk}",
        "version",
        f"{version.model.name} v{version.version}",
        "this version" if focus else f"registered {version.created_at:%Y-%m-%d}",
        reverse("version_detail", args=[version.model.name, version.version]),
        focus,
    )


def _downstream(graph: Graph, user, runs: list[Run], *, focus: ModelVersion | None = None) -> None:
    """Logged models, versions, aliases and stages of `runs` (three queries)."""
    run_ids = [run.pk for run in runs]
    logged = _bounded(
        LoggedModel.objects.active().filter(run_id__in=run_ids).only("id", "name", "run_id").order_by("name", "id"),
        "logged_model",
        graph,
    )
    for model in logged:
        graph.add(
            Node(
                f"logged:{model.pk}",
                "logged_model",
                model.name,
                model.pk[:14],
                reverse("run_detail", args=[model.run_id]),
            )
        )
        graph.link(f"run:{model.run_id}", f"logged:{model.pk}")
    versions = _bounded(
        ModelVersion.objects.readable_by(user)
        .filter(run_id__in=run_ids)
        .select_related("model")
        .only("id", "version", "stage", "source", "run_id", "created_at", "model__id", "model__name")
        .order_by("model__name", "-version"),
        "version",
        graph,
    )
    if focus is not None and all(v.pk != focus.pk for v in versions):
        versions.insert(0, focus)
    if focus is not None:  # the version the page is about leads its column
        versions.sort(key=lambda v: v.pk != focus.pk)
    for version in versions:
        node = graph.add(_version_node(version, focus is not None and version.pk == focus.pk))
        parents = [m for m in logged if m.run_id == version.run_id and m.pk in version.source]
        for parent in parents:
            graph.link(f"logged:{parent.pk}", node.id)
        if not parents:
            graph.link(f"run:{version.run_id}", node.id)
        if version.stage != Stage.NONE:
            stage_id = f"stage:{version.model_id}:{version.stage}"
            graph.add(
                Node(
                    stage_id,
                    "stage",
                    version.stage,
                    version.model.name,
                    reverse("model_detail", args=[version.model.name]) + "#timeline",
                )
            )
            graph.link(node.id, stage_id)
    by_id = {v.pk: v for v in versions}
    aliases = _bounded(
        ModelAlias.objects.filter(version_id__in=list(by_id)).only("alias", "version_id", "model_id").order_by("alias"),
        "alias",
        graph,
    )
    for alias in aliases:
        version = by_id[alias.version_id]
        alias_id = f"alias:{alias.model_id}:{alias.alias}"
        graph.add(
            Node(
                alias_id,
                "alias",
                f"@{alias.alias}",
                version.model.name,
                reverse("version_detail", args=[version.model.name, version.version]),
            )
        )
        graph.link(f"version:{version.pk}", alias_id)


def version_graph(user, version: ModelVersion) -> Graph:
    """The lineage of `version` (its model and run with the run's experiment loaded): four queries."""
    graph = Graph()
    run = version.run
    if run is None:
        _downstream(graph, user, [], focus=version)
        return graph.layout()
    inputs = _bounded(
        RunInput.objects.filter(run_id=run.pk).select_related("dataset").order_by("context", "dataset__name"),
        "dataset",
        graph,
    )
    for item in inputs:
        graph.add(_dataset_node(item.dataset, context=item.context))
    graph.add(_run_node(run))
    for item in inputs:
        graph.link(f"dataset:{item.dataset_id}", f"run:{run.pk}")
    _downstream(graph, user, [run], focus=version)
    return graph.layout()


def dataset_graph(user, dataset: Dataset) -> Graph:
    """Everything `dataset` fed that `user` may read: four queries."""
    graph = Graph()
    graph.add(_dataset_node(dataset, focus=True))
    inputs = _bounded(
        RunInput.objects.filter(dataset=dataset, run__deleted_at__isnull=True)
        .filter(run__in=Run.objects.readable_by(user).values("pk"))
        .select_related("run", "run__experiment")
        .order_by("-run__start_time", "context"),
        "run",
        graph,
    )
    runs = []
    for item in inputs:
        if f"run:{item.run_id}" not in graph.nodes:
            runs.append(item.run)
        node = graph.add(_run_node(item.run))
        node.sublabel = f"{item.context} · {item.run.experiment.name}"
        graph.link(f"dataset:{dataset.pk}", node.id)
    _downstream(graph, user, runs)
    return graph.layout()
