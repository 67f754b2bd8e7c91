"""Who may do what, on the model and experiment pages: the access panel, and the forms that change it.

Everyone who may read the object sees its owner, everyone's level and the grants (so they know whom to ask); a
MANAGE holder grants and revokes users and groups, sets everyone's level and hands the object over. The forms call
the catalog's and tracking's services; a refusal (unknown user, demoting yourself, nobody left to manage it) is an
error message on the page and nothing changes. An htmx form swaps just the panel.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from registry.accounts.access import level_of, registry_default
from registry.accounts.grants import grants_of
from registry.accounts.services import find_group, find_user
from registry.catalog import services as catalog
from registry.catalog.access import model_for
from registry.catalog.models import RegisteredModel, Stage
from registry.lib.access import GRANTABLE, Level
from registry.lib.errors import DomainError
from registry.tracking import services as tracking
from registry.tracking.access import experiment_for

LEVEL_CHOICES = [(level.name, level.label) for level in GRANTABLE]
EVERYONE_CHOICES = [("DEFAULT", "The registry's default"), ("NONE", "None"), ("READ", "Read"), ("EDIT", "Edit")]
STAGE_CHOICES = [(s, s) for s in (Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED, Stage.NONE)]


@dataclass
class Target:
    """A model or an experiment, with what the panel needs to change it."""

    obj: object
    kind: str  # "model" or "experiment"

    @property
    def is_model(self) -> bool:
        return self.kind == "model"

    @property
    def url_arg(self):
        return self.obj.name if self.is_model else self.obj.pk

    def grant(self, by, **kwargs):
        if self.is_model:
            return catalog.model_grant_set(model=self.obj, by=by, **kwargs)
        kwargs.pop("request_stages", None), kwargs.pop("approve_stages", None)
        return tracking.experiment_grant_set(experiment=self.obj, by=by, **kwargs)

    def revoke(self, by, **grantee):
        if self.is_model:
            return catalog.model_grant_revoke(model=self.obj, by=by, **grantee)
        return tracking.experiment_grant_revoke(experiment=self.obj, by=by, **grantee)

    def set_everyone(self, by, level):
        if self.is_model:
            return catalog.model_default_level_set(model=self.obj, by=by, level=level)
        return tracking.experiment_default_level_set(experiment=self.obj, by=by, level=level)

    def set_owner(self, by, owner):
        if self.is_model:
            return catalog.model_owner_set(model=self.obj, by=by, owner=owner)
        return tracking.experiment_owner_set(experiment=self.obj, by=by, owner=owner)


def access_context(target: Target, user) -> dict:
    """The panel's context: one query (the grants with their users and groups) beyond the user's level, which the
    page has read already."""
    obj = target.obj
    level = level_of(obj, user)
    return {
        "access_target": target,
        "access_owner": obj.owner,
        "access_everyone": Level(obj.default_level).label if obj.default_level is not None else None,
        "access_registry_default": registry_default().label,
        "access_grants": grants_of(obj),
        "access_level": level.label,
        "can_manage": level >= Level.MANAGE,
        "level_choices": LEVEL_CHOICES,
        "everyone_choices": EVERYONE_CHOICES,
        "stage_choices": STAGE_CHOICES,
    }


class GrantForm(forms.Form):
    grantee = forms.ChoiceField(choices=[("user", "User"), ("group", "Group")])
    name = forms.CharField(max_length=150)
    level = forms.ChoiceField(choices=LEVEL_CHOICES)
    request_stages = forms.MultipleChoiceField(choices=STAGE_CHOICES, required=False)
    approve_stages = forms.MultipleChoiceField(choices=STAGE_CHOICES, required=False)


class RevokeForm(forms.Form):
    grantee = forms.ChoiceField(choices=[("user", "User"), ("group", "Group")])
    name = forms.CharField(max_length=150)


class SettingsForm(forms.Form):
    everyone = forms.ChoiceField(choices=EVERYONE_CHOICES, required=False)
    owner = forms.CharField(max_length=150, required=False)


def _grantee(data: dict) -> dict:
    if data["grantee"] == "user":
        return {"user": find_user(data["name"].strip())}
    return {"group": find_group(data["name"].strip())}


def _act(request: HttpRequest, target: Target, form_class, act) -> HttpResponse:
    form = form_class(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        messages.error(request, f"Nothing was changed: {problems}")
    else:
        try:
            messages.success(request, act(form.cleaned_data))
        except DomainError as exc:
            messages.error(request, f"Nothing was changed: {exc.message}")
    if not request.htmx:
        return redirect(_page_url(target) + "#access")
    fresh = _load(request, target.kind, target.url_arg)
    context = {**access_context(fresh, request.user), "inline_messages": True}
    response = render(request, "web/access_sections.html#access_panel", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _page_url(target: Target) -> str:
    if target.is_model:
        return reverse("model_detail", args=[target.obj.name])
    return reverse("experiment_detail", args=[target.obj.pk])


def _load(request: HttpRequest, kind: str, ref) -> Target:
    if kind == "model":
        return Target(model_for(request.user, ref, queryset=RegisteredModel.objects.select_related("owner")), kind)
    return Target(experiment_for(request.user, ref), kind)


def _grant(request: HttpRequest, target: Target) -> HttpResponse:
    def act(data: dict) -> str:
        grantee = _grantee(data)
        target.grant(
            request.user,
            level=data["level"],
            request_stages=data["request_stages"],
            approve_stages=data["approve_stages"],
            **grantee,
        )
        return f"{data['grantee'].capitalize()} {data['name']} now has {Level[data['level']].label} access."

    return _act(request, target, GrantForm, act)


def _revoke(request: HttpRequest, target: Target) -> HttpResponse:
    def act(data: dict) -> str:
        target.revoke(request.user, **_grantee(data))
        return f"Revoked the grant of {data['grantee']} {data['name']}."

    return _act(request, target, RevokeForm, act)


def _settings(request: HttpRequest, target: Target) -> HttpResponse:
    def act(data: dict) -> str:
        done = []
        if data["everyone"]:
            target.set_everyone(request.user, None if data["everyone"] == "DEFAULT" else data["everyone"])
            done.append("everyone's level")
        if data["owner"].strip():
            target.set_owner(request.user, find_user(data["owner"].strip()))
            done.append(f"the owner ({data['owner'].strip()})")
        return "Changed " + " and ".join(done) + "." if done else "Nothing to change."

    return _act(request, target, SettingsForm, act)


@require_POST
def model_grant(request: HttpRequest, name: str) -> HttpResponse:
    return _grant(request, _load(request, "model", name))


@require_POST
def model_revoke(request: HttpRequest, name: str) -> HttpResponse:
    return _revoke(request, _load(request, "model", name))


@require_POST
def model_access_settings(request: HttpRequest, name: str) -> HttpResponse:
    return _settings(request, _load(request, "model", name))


@require_POST
def experiment_grant(request: HttpRequest, pk: int) -> HttpResponse:
    return _grant(request, _load(request, "experiment", pk))


@require_POST
def experiment_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    return _revoke(request, _load(request, "experiment", pk))


@require_POST
def experiment_access_settings(request: HttpRequest, pk: int) -> HttpResponse:
    return _settings(request, _load(request, "experiment", pk))
