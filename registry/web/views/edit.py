"""Editing in the dashboard: descriptions, tags and aliases in place; creating a model; registering a version from
a run's folder; deleting a model or a version after a confirmation that names what goes.

Every form calls the service that owns the write (registry.catalog.services, registry.governance.services), so the
permission check and the audit event come with it. With htmx a section swaps itself between showing and editing, and
a refused or invalid form comes back (422) with the message beside the field it is about; without JavaScript the
same URLs serve a page with the form, and a saved form redirects back.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from registry.accounts.access import level_of
from registry.catalog import services as catalog
from registry.catalog.access import model_for, version_for
from registry.catalog.models import ArtifactFile, ModelVersion, RegisteredModel
from registry.governance import services as governance
from registry.governance.errors import ApprovalRequired
from registry.governance.models import StagePolicy
from registry.lib.access import Level
from registry.lib.errors import DomainError, Forbidden, NotFound
from registry.lib.names import ALIAS_MAX, KEY_MAX, MODEL_NAME_MAX, NameError_, check_tag_key
from registry.scanning import services as scanning
from registry.tracking.access import run_for
from registry.tracking.models import Run
from registry.web.markdown import render_markdown
from registry.web.query import back_path

DESCRIPTION_MAX = 50_000
TAG_VALUE_MAX = 5000
TAG_ROWS_MAX = 100
# Folders offered when registering from a run: read from at most this many of its files.
RUN_FILES_READ = 10_000
RECENT_RUNS_OFFERED = 50
FORM_INVALID = 422  # htmx is configured (base.html) to swap 422 answers: the form comes back with its errors


# --- Shared ---------------------------------------------------------------------------------------------------------


@dataclass
class Editable:
    """A model or a version as the description and tags sections edit it."""

    obj: RegisteredModel | ModelVersion

    @property
    def is_model(self) -> bool:
        return isinstance(self.obj, RegisteredModel)

    @property
    def model(self) -> RegisteredModel:
        return self.obj if self.is_model else self.obj.model

    @property
    def key(self) -> str:
        """The prefix of the section ids: "model" or "version"."""
        return "model" if self.is_model else "version"

    @property
    def noun(self) -> str:
        return "model" if self.is_model else f"version {self.obj.version}"

    def url(self, section: str) -> str:
        if self.is_model:
            return reverse(f"model_{section}", args=[self.obj.name])
        return reverse(f"version_{section}", args=[self.obj.model.name, self.obj.version])

    @property
    def description_url(self) -> str:
        return self.url("description")

    @property
    def tags_url(self) -> str:
        return self.url("tags")

    def page_url(self) -> str:
        if self.is_model:
            return reverse("model_detail", args=[self.obj.name])
        return reverse("version_detail", args=[self.obj.model.name, self.obj.version])

    def update(self, by, **changes):
        if self.is_model:
            return catalog.model_update(model=self.obj, by=by, **changes)
        return catalog.version_update(version=self.obj, by=by, **changes)


def editable_context(obj, user) -> dict:
    """What the description and tags sections of a model or version page read."""
    target = Editable(obj)
    return {"editable": target, "can_edit": level_of(target.model, user) >= Level.EDIT}


def _respond(request: HttpRequest, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    """Just the partial for htmx; the page holding it (with breadcrumbs) otherwise."""
    if request.htmx:
        # An htmx form with errors answers 200: the browser would log a 4xx as an error in the console, and the
        # errors are in the fragment it swaps in. Without htmx the status says what happened (422).
        response = render(request, template, context)
    else:
        context.setdefault("nav", "models")
        context["partial_template"] = template
        response = render(request, "web/edit_page.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _done(request: HttpRequest, template: str, context: dict, *, back: str, message: str) -> HttpResponse:
    """After a save: the section showing the new value (htmx, with the message in it), else back to the page."""
    if request.htmx:
        context["saved"] = message
        return _respond(request, template, context)
    messages.success(request, message)
    return redirect(back)


def _editable_for(request: HttpRequest, name: str, version: int | None) -> Editable:
    if version is None:
        return Editable(model_for(request.user, name, need=Level.EDIT))
    return Editable(version_for(request.user, name, version, need=Level.EDIT))


def _breadcrumbs(target: Editable, last: str) -> list:
    model = target.model
    crumbs = [("Models", reverse("model_list")), (model.name, reverse("model_detail", args=[model.name]))]
    if not target.is_model:
        crumbs.append((f"Version {target.obj.version}", target.page_url()))
    return [*crumbs, (last, None)]


# --- Description ----------------------------------------------------------------------------------------------------


class DescriptionForm(forms.Form):
    description = forms.CharField(
        required=False,
        max_length=DESCRIPTION_MAX,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Markdown: **bold**, lists, tables, `code`, links.",
    )


@require_http_methods(["GET", "POST"])
def description_edit(request: HttpRequest, name: str, version: int | None = None) -> HttpResponse:
    """GET the form (or, with ?show, the section as it reads); POST saves through model_update / version_update."""
    if request.method == "GET" and "show" in request.GET:
        target = Editable(_read(request, name, version))
        return _respond(request, "web/edit_sections.html#description", editable_context(target.obj, request.user))
    target = _editable_for(request, name, version)
    context = {"editable": target, "can_edit": True, "breadcrumbs": _breadcrumbs(target, "Description")}
    if request.method == "GET":
        context["form"] = DescriptionForm(initial={"description": target.obj.description})
        return _respond(request, "web/edit_sections.html#description_form", context)
    form = DescriptionForm(request.POST)
    if form.is_valid():
        try:
            target.update(request.user, description=form.cleaned_data["description"])
        except DomainError as exc:
            form.add_error("description", exc.message)
    if not form.is_valid():
        context["form"] = form
        return _respond(request, "web/edit_sections.html#description_form", context, status=FORM_INVALID)
    return _done(
        request,
        "web/edit_sections.html#description",
        context,
        back=target.page_url(),
        message=f"Saved the description of {target.noun}.",
    )


@require_POST
def markdown_preview(request: HttpRequest) -> HttpResponse:
    """The description as it will read, rendered by the same sanitising Markdown filter the pages use."""
    text = request.POST.get("description", "")[:DESCRIPTION_MAX]
    html = render_markdown(text) if text.strip() else ""
    return render(request, "web/edit_sections.html#preview", {"html": html})


def _read(request: HttpRequest, name: str, version: int | None):
    return model_for(request.user, name) if version is None else version_for(request.user, name, version)


# --- Tags -----------------------------------------------------------------------------------------------------------


def _tag_rows(post) -> tuple[list[tuple[str, str]], dict[int, str], dict[str, str]]:
    """The (key, value) rows of a tags form, the error of each row by index, and the tags they make.

    Rows with an empty key and value are dropped (that is how a row is removed without JavaScript)."""
    keys, values = post.getlist("key"), post.getlist("value")
    rows = [(k.strip(), v) for k, v in zip(keys, values, strict=False) if k.strip() or v.strip()]
    errors: dict[int, str] = {}
    tags: dict[str, str] = {}
    if len(rows) > TAG_ROWS_MAX:
        errors[TAG_ROWS_MAX] = f"At most {TAG_ROWS_MAX} tags; remove {len(rows) - TAG_ROWS_MAX}."
    for index, (key, value) in enumerate(rows):
        if not key:
            errors[index] = "Give this tag a key, or clear its value to remove it."
        elif len(key) > KEY_MAX:
            errors[index] = f"A tag key is at most {KEY_MAX} characters."
        elif problem := _tag_key_problem(key):
            errors[index] = problem
        elif key in tags:
            errors[index] = f"The key {key!r} is used twice; keep one."
        elif len(value) > TAG_VALUE_MAX:
            errors[index] = f"A tag value is at most {TAG_VALUE_MAX} characters."
        else:
            tags[key] = value
    return rows, errors, tags


def _tag_key_problem(key: str) -> str:
    """The naming rule's message for a bad tag key (the service checks it too), so it shows beside its row."""
    try:
        check_tag_key(key)
    except NameError_ as exc:
        return str(exc)
    return ""


@require_http_methods(["GET", "POST"])
def tags_edit(request: HttpRequest, name: str, version: int | None = None) -> HttpResponse:
    """Tags as key/value rows. POST replaces the whole set (model_update / version_update record what changed)."""
    if request.method == "GET" and "show" in request.GET:
        target = Editable(_read(request, name, version))
        return _respond(request, "web/edit_sections.html#tags", editable_context(target.obj, request.user))
    target = _editable_for(request, name, version)
    context = {"editable": target, "can_edit": True, "breadcrumbs": _breadcrumbs(target, "Tags")}
    if request.method == "GET":
        rows = list(target.obj.tags.items()) or [("", "")]
        context["rows"] = [(k, v, None) for k, v in rows]
        return _respond(request, "web/edit_sections.html#tags_form", context)
    rows, errors, tags = _tag_rows(request.POST)
    form_error = errors.pop(TAG_ROWS_MAX, "")
    if not errors and not form_error:
        try:
            target.update(request.user, tags=tags)
        except DomainError as exc:
            form_error = exc.message
    if errors or form_error:
        context["rows"] = [(k, v, errors.get(i)) for i, (k, v) in enumerate(rows)] or [("", "", None)]
        context["form_error"] = form_error
        return _respond(request, "web/edit_sections.html#tags_form", context, status=FORM_INVALID)
    return _done(
        request,
        "web/edit_sections.html#tags",
        context,
        back=target.page_url(),
        message=f"Saved the tags of {target.noun}.",
    )


# --- Aliases --------------------------------------------------------------------------------------------------------


class AliasForm(forms.Form):
    alias = forms.CharField(max_length=ALIAS_MAX, help_text="Letters, digits, _ and -; e.g. champion, candidate.")
    version = forms.IntegerField(min_value=1, max_value=2**31 - 1, label="Version number")
    comment = forms.CharField(required=False, max_length=5000)


def aliases_context(model: RegisteredModel, user, form: AliasForm | None = None, *, version: int | None = None) -> dict:
    """The aliases section: every alias with its version, which are protected, and whether the user may move them.
    One query for the protected names, plus one for the aliases unless the model was loaded with prefetch_aliases."""
    protected = StagePolicy.objects.protected_aliases_for(model)
    return {
        "model": model,
        "aliases": [(a, a.alias in protected) for a in model.aliases.all()],
        "protected_aliases": protected,
        "can_edit_aliases": level_of(model, user) >= Level.EDIT,
        "alias_form": form or AliasForm(),
        "alias_version": version,  # the version page fills the number in
    }


@require_http_methods(["GET", "POST"])
def alias_set(request: HttpRequest, name: str) -> HttpResponse:
    """Point an alias at a version given by its number. A protected alias opens a request instead (ApprovalRequired),
    which the section says and links to."""
    model = model_for(request.user, name, queryset=RegisteredModel.objects.prefetch_aliases())
    if request.method == "GET":
        return _respond(request, "web/edit_sections.html#aliases", aliases_context(model, request.user))
    form = AliasForm(request.POST)
    status, notice = FORM_INVALID, ""
    if form.is_valid():
        alias, number = form.cleaned_data["alias"], form.cleaned_data["version"]
        version = ModelVersion.objects.filter(model=model, version=number).first()
        if version is None:
            form.add_error("version", f"{model.name} has no version {number}; the newest is v{model.last_version}.")
        else:
            version.model = model
            try:
                governance.alias_set(
                    model=model, alias=alias, version=version, by=request.user, comment=form.cleaned_data["comment"]
                )
                status, notice = 200, f"@{alias} now points at v{number}."
            except ApprovalRequired as exc:
                status, notice = 200, _request_notice(exc, f"@{alias} → v{number}")
            except Forbidden as exc:
                form.add_error(None, exc.message)
            except DomainError as exc:
                form.add_error("alias" if "alias" in exc.message.lower() else None, exc.message)
    if status != 200:
        context = aliases_context(model, request.user, form)
        context["breadcrumbs"] = _breadcrumbs(Editable(model), "Aliases")
        return _respond(request, "web/edit_sections.html#aliases", context, status=status)
    return _alias_done(request, model, notice)


@require_POST
def alias_delete(request: HttpRequest, name: str) -> HttpResponse:
    model = model_for(request.user, name, queryset=RegisteredModel.objects.prefetch_aliases())
    alias = request.POST.get("alias", "")
    try:
        governance.alias_delete(model=model, alias=alias, by=request.user, comment=request.POST.get("comment", ""))
        notice = f"Deleted @{alias}."
    except ApprovalRequired as exc:
        notice = _request_notice(exc, f"deleting @{alias}")
    except DomainError as exc:
        context = aliases_context(model, request.user)
        context["alias_problem"] = exc.message
        context["breadcrumbs"] = _breadcrumbs(Editable(model), "Aliases")
        return _respond(request, "web/edit_sections.html#aliases", context, status=FORM_INVALID)
    return _alias_done(request, model, notice)


def _request_notice(exc: ApprovalRequired, what: str) -> str:
    request_id = exc.details[0]["request_id"]
    state = "opened" if exc.details[0]["created"] else "is already open"
    return (
        f"That alias is protected: request #{request_id} for {what} {state}; "
        "an approver decides it on the Approvals page."
    )


def _alias_done(request: HttpRequest, model: RegisteredModel, notice: str) -> HttpResponse:
    if request.htmx:
        fresh = model_for(request.user, model.name, queryset=RegisteredModel.objects.prefetch_aliases())
        context = aliases_context(fresh, request.user)
        context["saved"] = notice
        return _respond(request, "web/edit_sections.html#aliases", context)
    messages.success(request, notice)
    return redirect(back_path(request, reverse("model_detail", args=[model.name])) + "#aliases")


# --- Creating a model -----------------------------------------------------------------------------------------------


class ModelForm(forms.Form):
    name = forms.CharField(
        max_length=MODEL_NAME_MAX, help_text="How deployments and code refer to it; e.g. churn-model."
    )
    description = forms.CharField(
        required=False, max_length=DESCRIPTION_MAX, strip=False, widget=forms.Textarea(attrs={"rows": 6})
    )
    everyone = forms.ChoiceField(
        label="Everyone signed in may",
        choices=[("", "The registry's default"), ("NONE", "Not see it (private)"), ("READ", "Read"), ("EDIT", "Edit")],
        required=False,
    )


@require_http_methods(["GET", "POST"])
def model_create(request: HttpRequest) -> HttpResponse:
    form = ModelForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = FORM_INVALID
        if form.is_valid():
            data = form.cleaned_data
            try:
                model = catalog.model_create(
                    name=data["name"],
                    by=request.user,
                    description=data["description"],
                    default_level=Level[data["everyone"]] if data["everyone"] else None,
                )
            except DomainError as exc:
                form.add_error("name", exc.message)
            else:
                messages.success(request, f"Created {model.name}. Register its first version from a run.")
                return redirect("model_detail", name=model.name)
    context = {
        "nav": "models",
        "breadcrumbs": [("Models", reverse("model_list")), ("New model", None)],
        "form": form,
    }
    return render(request, "web/model_create.html", context, status=status)


# --- Registering a version from a run's folder -----------------------------------------------------------------------


def run_folders(run: Run) -> list[tuple[str, int, int]]:
    """Each folder of the run's files (nested ones too, "" for all of them) with its file count and bytes: one query."""
    files = ArtifactFile.objects.filter(run=run).order_by("path").values_list("path", "size")[:RUN_FILES_READ]
    folders: dict[str, list[int]] = {"": [0, 0]}
    for path, size in files:
        parts = path.split("/")[:-1]
        for depth in range(len(parts) + 1):
            folder = "/".join(parts[:depth])
            entry = folders.setdefault(folder, [0, 0])
            entry[0] += 1
            entry[1] += size or 0
    return [(folder, count, size) for folder, (count, size) in sorted(folders.items())]


class RegisterForm(forms.Form):
    run = forms.CharField(max_length=64, label="Run", help_text="The run whose files become the version's files.")
    folder = forms.CharField(required=False, max_length=1024, label="Folder")
    model = forms.CharField(max_length=MODEL_NAME_MAX, label="Model")
    create = forms.BooleanField(required=False, label="Create the model if it does not exist")
    description = forms.CharField(required=False, max_length=DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 3}))


@require_http_methods(["GET", "POST"])
def version_register(request: HttpRequest) -> HttpResponse:
    """Pick the run, pick the folder, name the model: catalog.version_register copies the folder's files into the
    next version. GET ?run= (from a run page) or ?model= (from a model page) fills the form in; an htmx GET for
    #register-folders answers just the folder picker of the chosen run."""
    data = request.POST if request.method == "POST" else request.GET
    form = RegisterForm(data if request.method == "POST" else None, initial=data.dict())
    run = _register_run(request.user, data.get("run", "").strip())
    if request.htmx and request.htmx.target == "register-folders":
        context = {"run": run, "folders": run_folders(run) if run else [], "chosen_folder": data.get("folder", "")}
        return render(request, "web/register.html#folders", context)
    status = 200
    if request.method == "POST":
        status = FORM_INVALID
        if form.is_valid():
            if run is None:
                form.add_error("run", "No run with this id that you may read; paste the id from the run's page.")
            else:
                try:
                    version = catalog.version_register(
                        model_name=form.cleaned_data["model"].strip(),
                        run=run,
                        artifact_path=form.cleaned_data["folder"],
                        by=request.user,
                        description=form.cleaned_data["description"],
                        create_model=form.cleaned_data["create"],
                    )
                except DomainError as exc:
                    form.add_error(_register_field(exc), exc.message)
                else:
                    files = len(version.created_files)
                    messages.success(
                        request,
                        f"Registered {version.model.name} v{version.version} with {files} file{'s' * (files != 1)}.",
                    )
                    return redirect("version_detail", name=version.model.name, version=version.version)
    editable_models = RegisteredModel.objects.at_least(request.user, Level.EDIT).order_by("name")
    recent_runs = (
        Run.objects.active()
        .readable_by(request.user)
        .select_related("experiment")
        .only("id", "name", "start_time", "experiment__name")
        .order_by("-start_time")[:RECENT_RUNS_OFFERED]
    )
    context = {
        "nav": "models",
        "breadcrumbs": [("Models", reverse("model_list")), ("Register a version", None)],
        "form": form,
        "run": run,
        "folders": run_folders(run) if run else [],
        "chosen_folder": data.get("folder", "model" if run is None else _default_folder(run)),
        "model_names": list(editable_models.values_list("name", flat=True)[:500]),
        "recent_runs": recent_runs,
    }
    return render(request, "web/register.html", context, status=status)


def _register_run(user, run_id: str) -> Run | None:
    if not run_id or len(run_id) > 64:
        return None
    try:
        return run_for(user, run_id, queryset=Run.objects.active().select_related("experiment"))
    except NotFound:
        return None


def _default_folder(run: Run) -> str:
    """The folder a registration usually takes: "model" when the run has one, else all the run's files."""
    return "model" if ArtifactFile.objects.filter(run=run, path__startswith="model/").exists() else ""


def _register_field(exc: DomainError) -> str | None:
    text = exc.message.lower()
    if "path" in text or "folder" in text or "artifact" in text:
        return "folder"
    if "experiment" in text or "run" in text:
        return "run"
    if "model" in text or "name" in text:
        return "model"
    return None


@require_POST
def version_rescan(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Scan a version's files again (EDIT), e.g. after the allowlist was extended; large files finish in the
    background."""
    mv = version_for(request.user, name, version, need=Level.EDIT)
    try:
        scanning.version_rescan(version=mv, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{name} v{version}: its files were scanned again.")
    return redirect(reverse("version_detail", args=[name, version]) + "#safety")
