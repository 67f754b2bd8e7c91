"""Model cards in the dashboard: shown on the model and version pages, edited in place (the description's htmx
pattern: the section swaps itself for its form and back), prefilled from what the registry knows, and exported as
one self-contained HTML file.

A version's card is its own sections over its model's; the form for a version shows the model's text where the
version has none. Every save goes through catalog.card_update (EDIT, size limits, the audit event).
"""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from registry.accounts.access import level_of
from registry.catalog import services as catalog
from registry.catalog.access import model_for, version_for
from registry.catalog.models import ModelCard, ModelVersion, RegisteredModel
from registry.lib import model_card as cards
from registry.lib.access import Level
from registry.lib.errors import DomainError
from registry.tracking.models import MetricSeries, RunInput
from registry.web.views.edit import FORM_INVALID, _done, _respond


def _urls(model: RegisteredModel, version: ModelVersion | None) -> dict:
    args = [model.name] if version is None else [model.name, version.version]
    prefix = "model" if version is None else "version"
    return {
        "edit_url": reverse(f"{prefix}_card", args=args),
        "export_url": reverse(f"{prefix}_card_export", args=args),
        "page_url": reverse("model_detail", args=[model.name])
        if version is None
        else reverse("version_detail", args=args),
    }


def card_context(model: RegisteredModel, user, version: ModelVersion | None = None) -> dict:
    """What the card section reads: every section as it reads now (one query), who may edit, the links."""
    if version is None:
        model_card = ModelCard.objects.filter(model=model, version__isnull=True).select_related("updated_by").first()
        own = None
        sections = cards.effective(model_card.sections if model_card else {}, None)
    else:
        model_card, own = ModelCard.objects.for_version(version)
        sections = cards.effective(model_card.sections if model_card else {}, own.sections if own else {})
    latest = max((c for c in (model_card, own) if c is not None), key=lambda c: c.updated_at, default=None)
    return {
        "card": {
            "key": "version" if version is not None else "model",
            "model": model,
            "version": version,
            "sections": sections,
            "filled": sum(1 for s in sections if s.text),
            "missing_for_gate": cards.missing_for_gate(sections),
            "model_revision": model_card.revision if model_card else 0,
            "version_revision": own.revision if own else 0,
            "updated_at": latest.updated_at if latest else None,
            **_urls(model, version),
        },
        "can_edit_card": level_of(model, user) >= Level.EDIT,
    }


class CardForm(forms.Form):
    """One Markdown field per section, each within cards.SECTION_MAX (an error beside the field past it)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key, title, help_text in cards.SECTIONS:
            self.fields[key] = forms.CharField(
                label=title,
                required=False,
                max_length=cards.SECTION_MAX,
                strip=False,
                help_text=help_text,
                widget=forms.Textarea(attrs={"rows": 4}),
            )


def _suggestions(model: RegisteredModel, version: ModelVersion | None) -> dict[str, str]:
    """Drafts from the version's run (datasets, final metrics, environment) and the model's owner: three queries."""
    owner = model.owner
    owners = (
        [f"{owner.get_full_name() or owner.get_username()}" + (f" <{owner.email}>" if owner.email else "")]
        if owner
        else []
    )
    if version is None or version.run_id is None:
        return cards.suggestions(owners=owners)
    run = version.run
    inputs = RunInput.objects.filter(run_id=run.pk).select_related("dataset").order_by("context", "dataset__name")
    facts = [
        cards.DatasetFact(
            name=i.dataset.name,
            digest=i.dataset.digest,
            context=i.context,
            rows=(i.dataset.profile or {}).get("num_rows") if isinstance(i.dataset.profile, dict) else None,
            source=i.dataset.source_uri,
        )
        for i in inputs
    ]
    return cards.suggestions(
        datasets=facts,
        metrics=MetricSeries.objects.last_values(run.pk),
        python_version=run.python_version,
        platform=run.platform,
        packages=run.packages if isinstance(run.packages, dict) else {},
        image=run.image,
        git_commit=run.git_commit,
        owners=owners,
    )


def _load(
    request: HttpRequest, name: str, version: int | None, need: Level
) -> tuple[RegisteredModel, ModelVersion | None]:
    if version is None:
        model = model_for(request.user, name, need=need)
        return model, None
    mv = version_for(request.user, name, version, need=need)
    return mv.model, mv


def _form_context(model: RegisteredModel, mv: ModelVersion | None, form: CardForm | None = None) -> dict:
    """The form with each field's current text, or where there is none a draft from the registry (marked), and for
    a version what the model's card says in its place."""
    if mv is None:
        base_card = ModelCard.objects.filter(model=model, version__isnull=True).first()
        own_sections, base_sections = (base_card.sections if base_card else {}), {}
    else:
        base_card, own_card = ModelCard.objects.for_version(mv)
        own_sections, base_sections = (own_card.sections if own_card else {}), (base_card.sections if base_card else {})
    drafts = _suggestions(model, mv)
    prefilled = set()
    if form is None:
        initial = dict(own_sections)
        for key, text in drafts.items():
            if not own_sections.get(key) and not base_sections.get(key):
                initial[key] = text
                prefilled.add(key)
        form = CardForm(initial=initial)
    fields = [
        {"field": form[key], "inherited": base_sections.get(key, ""), "prefilled": key in prefilled}
        for key in cards.SECTION_KEYS
    ]
    return {"form": form, "fields": fields, "prefilled": bool(prefilled)}


def _breadcrumbs(model: RegisteredModel, mv: ModelVersion | None) -> list:
    crumbs = [("Models", reverse("model_list")), (model.name, reverse("model_detail", args=[model.name]))]
    if mv is not None:
        crumbs.append((f"Version {mv.version}", reverse("version_detail", args=[model.name, mv.version])))
    return [*crumbs, ("Model card", None)]


@require_http_methods(["GET", "POST"])
def card_edit(request: HttpRequest, name: str, version: int | None = None) -> HttpResponse:
    """GET the form (or, with ?show, the card as it reads); POST saves through catalog.card_update."""
    if request.method == "GET" and "show" in request.GET:
        model, mv = _load(request, name, version, Level.READ)
        return _respond(request, "web/card_sections.html#card", card_context(model, request.user, mv))
    model, mv = _load(request, name, version, Level.EDIT)
    context = {**card_context(model, request.user, mv), "breadcrumbs": _breadcrumbs(model, mv)}
    if request.method == "GET":
        context.update(_form_context(model, mv))
        return _respond(request, "web/card_sections.html#card_form", context)
    form = CardForm(request.POST)
    if form.is_valid():
        try:
            catalog.card_update(model=model, version=mv, by=request.user, sections=form.cleaned_data)
        except catalog.CardInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        except DomainError as exc:
            form.add_error(None, exc.message)
    if not form.is_valid():
        context.update(_form_context(model, mv, form))
        return _respond(request, "web/card_sections.html#card_form", context, status=FORM_INVALID)
    context.update(card_context(model, request.user, mv))
    noun = "the model" if mv is None else f"version {mv.version}"
    return _done(
        request,
        "web/card_sections.html#card",
        context,
        back=context["card"]["page_url"] + f"#{context['card']['key']}-card",
        message=f"Saved the model card of {noun}.",
    )


@require_GET
def card_export(request: HttpRequest, name: str, version: int | None = None) -> HttpResponse:
    """The card as one HTML file: styles inline, no scripts, no files it needs from elsewhere, so it can be mailed,
    archived or attached to a review as it is."""
    model, mv = _load(request, name, version, Level.READ)
    context = card_context(model, request.user, mv)
    facts = []
    if mv is not None:
        facts = [("Version", str(mv.version)), ("Stage", mv.stage), ("Source", mv.source or "—")]
        aliases = list(mv.aliases.values_list("alias", flat=True))
        if aliases:
            facts.append(("Aliases", ", ".join(f"@{a}" for a in sorted(aliases))))
        if mv.run_id:
            facts.append(("Run", mv.run_id))
    context.update(
        model=model,
        version=mv,
        facts=facts,
        signature=mv.signature if mv is not None and isinstance(mv.signature, dict) else None,
        generated_at=timezone.now(),
        generated_by=request.user.get_username(),
    )
    html = render_to_string("web/model_card_export.html", context, request=request)
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    filename = f"{slugify(model.name) or 'model'}{f'-v{mv.version}' if mv else ''}-model-card.html"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    # The file carries its own stylesheet: the page's policy allows exactly that and nothing to run or load.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return response
