"""Reading the audit log: which events a user may see, and the filters of the audit page and API.

Events are readable where what they name is: a model's events by those who may read the model, an experiment's or a
run's by those who may read the experiment, an account's by the person who acted and by the account's holder (who
changed my rights, my password, my tokens). Superusers and holders of `audit.view_auditevent` (auditors) read
everything, including the events of deleted models and experiments.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from registry.accounts.models import account_subject
from registry.audit.models import AuditAction, AuditEvent
from registry.catalog.models import RegisteredModel
from registry.tracking.models import Experiment

AUDITOR_PERMISSION = "audit.view_auditevent"


def is_auditor(user) -> bool:
    return bool(user and user.is_active and (user.is_superuser or user.has_perm(AUDITOR_PERMISSION)))


def events_visible_to(user):
    events = AuditEvent.objects.all()
    if is_auditor(user):
        return events
    models = RegisteredModel.objects.readable_by(user).values("pk")
    experiments = Experiment.objects.readable_by(user).values("pk")
    unattached = Q(model_id__isnull=True) & Q(experiment_id__isnull=True)
    return events.filter(
        Q(model_id__in=models)
        | (Q(model_id__isnull=True) & Q(experiment_id__in=experiments))
        | (unattached & (Q(actor_id=user.pk) | _about(user)))
    )


def _about(user) -> Q:
    """Events that name `user`'s account. They name it by the username it had then, so each of its usernames only
    while it held it: since it joined, and from each rename on. A username an earlier, deleted account had does not
    bring that account's history with it, and a renamed account keeps its own."""
    held = Q()
    for username, since, until in account_names(user):
        held |= Q(subject=account_subject(username), at__gte=since, **({"at__lt": until} if until else {}))
    return held


def account_names(user) -> list[tuple[str, datetime, datetime | None]]:
    """The usernames `user`'s account has had since it joined, newest first, each with when it got it and when it
    gave it up (None: it holds it now), read back through its renames (`user_changed` events with `data.name`)."""
    renames = (
        AuditEvent.objects.filter(
            action=AuditAction.USER_CHANGED,
            at__gte=user.date_joined,
            model_id__isnull=True,
            experiment_id__isnull=True,
            data__has_key="name",
        )
        .order_by("-at", "-id")
        .values_list("at", "data")
    )
    names, name, until = [], user.get_username(), None
    for at, data in renames:
        pair = data["name"]
        if not (isinstance(pair, list) and len(pair) == 2):  # events are kept forever: read what was written loosely
            continue
        old, new = pair
        if new == name:  # while this account held `name` no other could be renamed to it: the newest is its own
            names.append((name, at, until))
            name, until = old, at
    names.append((name, user.date_joined, until))
    return names


def about_account(user):
    """Events about `user`'s own account, whoever acted: made, its rights, teams, password, name and tokens; newest
    first."""
    return AuditEvent.objects.filter(_about(user), model_id__isnull=True, experiment_id__isnull=True).order_by(
        "-at", "-id"
    )


def filtered(
    events,
    *,
    model: str = "",
    actor: str = "",
    action: str = "",
    experiment: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
):
    """Events about model `model` (by its name now, or the name it had when the event was recorded: a renamed or
    deleted model still answers), by `actor`, of `action`, within [since, until)."""
    if model:
        current = RegisteredModel.objects.filter(name=model).values_list("pk", flat=True).first()
        events = (
            events.filter(Q(model_name=model) | Q(model_id=current)) if current else events.filter(model_name=model)
        )
    if experiment:
        current = Experiment.objects.filter(name=experiment).values_list("pk", flat=True).first()
        named = Q(experiment_name=experiment)
        events = events.filter(named | Q(experiment_id=current)) if current else events.filter(named)
    if actor:
        events = events.filter(actor_name=actor)
    if action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(at__gte=since)
    if until is not None:
        events = events.filter(at__lt=until)
    return events.order_by("-at", "-id")
