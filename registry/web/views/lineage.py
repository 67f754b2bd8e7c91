"""Lineage pages: a graph drawn as SVG on the server (no script, nothing the CSP refuses) with the same graph as a
list for screen readers and keyboards. Queries: the object (with what the graph needs joined), then four
(registry.web.lineage), whatever the graph's size."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from registry.catalog.access import version_for
from registry.catalog.models import ModelVersion
from registry.lib.lineage import KIND_TITLES
from registry.tracking.models import Dataset
from registry.web.lineage import PER_KIND, dataset_graph, version_graph

ID_MAX = 2**63 - 1


def _render(
    request: HttpRequest, graph, *, title: str, about: str, breadcrumbs: list, back: str, nav: str = "models"
) -> HttpResponse:
    left_out = [(KIND_TITLES[kind], PER_KIND) for kind in graph.left_out]
    context = {
        "nav": nav,
        "graph": graph,
        "title": title,
        "about": about,
        "breadcrumbs": breadcrumbs,
        "back": back,
        "left_out": left_out,
    }
    return render(request, "web/lineage.html", context)


@require_GET
def version_lineage(request: HttpRequest, name: str, version: int) -> HttpResponse:
    queryset = ModelVersion.objects.select_related("model", "run__experiment")
    mv = version_for(request.user, name, version, queryset=queryset)
    page = reverse("version_detail", args=[mv.model.name, mv.version])
    return _render(
        request,
        version_graph(request.user, mv),
        title=f"Lineage of {mv.model.name} v{mv.version}",
        about="The data its run read, the run, what the run logged, every version registered from it (this one and its "
        "copies), and the aliases and stages they hold.",
        breadcrumbs=[
            ("Models", reverse("model_list")),
            (mv.model.name, reverse("model_detail", args=[mv.model.name])),
            (f"Version {mv.version}", page),
            ("Lineage", None),
        ],
        back=page,
    )


@require_GET
def dataset_lineage(request: HttpRequest, pk: int) -> HttpResponse:
    if pk > ID_MAX:
        raise Http404("No such dataset.")
    dataset = get_object_or_404(Dataset.objects.readable_by(request.user), pk=pk)
    page = reverse("dataset_detail", args=[dataset.pk])
    response = _render(
        request,
        dataset_graph(request.user, dataset),
        title=f"What {dataset.name} fed",
        about="The runs that read this data, what they logged, the versions registered from them, and the aliases and "
        "stages those hold.",
        breadcrumbs=[("Datasets", reverse("dataset_list")), (str(dataset), page), ("Lineage", None)],
        back=page,
        nav="datasets",
    )
    return response
