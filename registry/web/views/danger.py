"""The danger zone: renaming a model or an experiment and deleting a model or a version, each behind a page that says
what it changes and asks to confirm. The catalog and tracking services check the right (MANAGE to rename, or to
delete a model; EDIT to delete a version) and record the audit event; these views only ask and translate their
errors."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from registry.catalog import services as catalog
from registry.catalog.access import model_for, version_for
from registry.catalog.models import ArtifactFile, Stage
from registry.lib.access import Level
from registry.lib.errors import DomainError
from registry.lib.names import EXPERIMENT_NAME_MAX, MODEL_NAME_MAX
from registry.tracking import services as tracking
from registry.tracking.access import experiment_for
from registry.tracking.models import Experiment
from registry.web.views.edit import FORM_INVALID

# --- Renaming -------------------------------------------------------------------------------------------------------


class RenameForm(forms.Form):
    new_name = forms.CharField(label="New name", max_length=MODEL_NAME_MAX)


def _renamed(form: forms.Form, current: str, rename) -> bool:
    """Whether the form's `new_name` is valid, not `current`, and `rename(new_name)` (a service call) took it; if
    not, the reason is on the form."""
    if not form.is_valid():
        return False
    new_name = form.cleaned_data["new_name"]
    if new_name == current:
        form.add_error("new_name", f"{current} is its name already; type the name it should have.")
        return False
    try:
        rename(new_name)
    except DomainError as exc:
        form.add_error("new_name", exc.message)
        return False
    return True


@require_http_methods(["GET", "POST"])
def model_rename(request: HttpRequest, name: str) -> HttpResponse:
    """Rename a model (MANAGE). Its versions, aliases, grants, stage history and audit log stay with it; code that
    loads it by name must use the new one, which the page says before anyone confirms."""
    model = model_for(request.user, name, need=Level.MANAGE)
    form = RenameForm(request.POST or None, initial={"new_name": model.name})

    def rename(new_name: str) -> None:
        catalog.model_rename(model=model, new_name=new_name, by=request.user)

    if request.method == "POST" and _renamed(form, model.name, rename):
        messages.success(request, f"Renamed {name} to {model.name}. Code that loads it by name needs the new name.")
        return redirect("model_detail", name=model.name)
    context = {
        "nav": "models",
        "breadcrumbs": [
            ("Models", reverse("model_list")),
            (name, reverse("model_detail", args=[name])),
            ("Rename", None),
        ],
        "model": model,
        "name": name,
        "form": form,
        "aliases": list(model.aliases.order_by("alias").values_list("alias", flat=True)),
        "in_production": list(
            model.versions.filter(stage=Stage.PRODUCTION).order_by("version").values_list("version", flat=True)
        ),
    }
    return render(request, "web/model_rename.html", context, status=FORM_INVALID if form.errors else 200)


class ExperimentRenameForm(forms.Form):
    new_name = forms.CharField(label="New name", max_length=EXPERIMENT_NAME_MAX)


@require_http_methods(["GET", "POST"])
def experiment_rename(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename an experiment (MANAGE). Its page keeps its address (by id); MLflow code that names it
    (`set_experiment("old")`) would make a new experiment under the old name, which the page says."""
    experiment = experiment_for(request.user, pk, need=Level.MANAGE, queryset=Experiment.objects.active())
    name = experiment.name
    form = ExperimentRenameForm(request.POST or None, initial={"new_name": name})

    def rename(new_name: str) -> None:
        tracking.experiment_rename(experiment=experiment, name=new_name, by=request.user)

    if request.method == "POST" and _renamed(form, name, rename):
        messages.success(request, f"Renamed {name} to {experiment.name}.")
        return redirect("experiment_detail", pk=experiment.pk)
    context = {
        "nav": "experiments",
        "breadcrumbs": [
            ("Experiments", reverse("experiment_list")),
            (name, reverse("experiment_detail", args=[experiment.pk])),
            ("Rename", None),
        ],
        "experiment": experiment,
        "name": name,
        "form": form,
    }
    return render(request, "web/experiment_rename.html", context, status=FORM_INVALID if form.errors else 200)


# --- Deleting -------------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def model_delete(request: HttpRequest, name: str) -> HttpResponse:
    """A page naming what goes (versions, files, bytes, aliases, grants); the model's name typed again deletes it."""
    model = model_for(request.user, name, need=Level.MANAGE)
    problem = ""
    if request.method == "POST":
        if request.POST.get("confirm_name", "") != model.name:
            problem = f"Type the model's name, {model.name}, to confirm."
        else:
            try:
                catalog.model_delete(model=model, by=request.user)
            except DomainError as exc:
                problem = exc.message
            else:
                messages.success(request, f"Deleted {name} and its versions. The audit log keeps the record.")
                return redirect("model_list")
    files = ArtifactFile.objects.filter(version__model=model).aggregate(count=Count("id"), size=Sum("size"))
    context = {
        "nav": "models",
        "breadcrumbs": [
            ("Models", reverse("model_list")),
            (model.name, reverse("model_detail", args=[model.name])),
            ("Delete", None),
        ],
        "model": model,
        "kind": "model",
        "versions": model.versions.count(),
        "in_production": list(model.versions.filter(stage=Stage.PRODUCTION).values_list("version", flat=True)),
        "aliases": list(model.aliases.values_list("alias", flat=True)),
        "files": files["count"],
        "size": files["size"] or 0,
        "problem": problem,
        "back": reverse("model_detail", args=[model.name]),
    }
    return render(request, "web/confirm_delete.html", context, status=FORM_INVALID if problem else 200)


@require_http_methods(["GET", "POST"])
def version_delete(request: HttpRequest, name: str, version: int) -> HttpResponse:
    mv = version_for(request.user, name, version, need=Level.EDIT)
    problem = ""
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            problem = "Tick the box to confirm."
        else:
            try:
                catalog.version_delete(version=mv, by=request.user)
            except DomainError as exc:
                problem = exc.message
            else:
                messages.success(request, f"Deleted {name} v{version}. The audit log keeps the record.")
                return redirect("model_detail", name=name)
    files = ArtifactFile.objects.filter(version=mv).aggregate(count=Count("id"), size=Sum("size"))
    context = {
        "nav": "models",
        "breadcrumbs": [
            ("Models", reverse("model_list")),
            (name, reverse("model_detail", args=[name])),
            (f"Version {version}", reverse("version_detail", args=[name, version])),
            ("Delete", None),
        ],
        "model": mv.model,
        "version": mv,
        "kind": "version",
        "in_production": [mv.version] if mv.stage == Stage.PRODUCTION else [],
        "aliases": list(mv.aliases.values_list("alias", flat=True)),
        "files": files["count"],
        "size": files["size"] or 0,
        "problem": problem,
        "back": reverse("version_detail", args=[name, version]),
    }
    return render(request, "web/confirm_delete.html", context, status=FORM_INVALID if problem else 200)
