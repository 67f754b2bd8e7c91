"""Recording what happened: the append-only audit log and the webhook outbox, written in the caller's transaction.

The services that change things call `record` (and `emit` where a webhook event exists) inside the same
`transaction.atomic` as the change, so a change and its record are committed together or not at all.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable

from django.db import transaction

from registry import rawsql
from registry.audit import webhooks
from registry.audit.models import AuditAction, AuditEvent, OutboxEvent, Webhook, WebhookDelivery, WebhookEventType
from registry.lib.errors import Forbidden, Invalid

SYSTEM = "system"


def actor_name(actor) -> str:
    """The name an event keeps for its actor: the username, or a system actor's own name ("system:demo")."""
    if isinstance(actor, str):
        return actor
    return actor.get_username() if getattr(actor, "pk", None) else ""


def record(
    action: str,
    *,
    actor,
    model=None,
    version=None,
    alias: str = "",
    experiment=None,
    run=None,
    request=None,
    subject: str = "",
    from_value: object = "",
    to_value: object = "",
    comment: str = "",
    data: dict | None = None,
) -> AuditEvent:
    """Append one event. `actor` is the user who acted (or a system actor's name); every event has one.

    The objects named are kept as ids and as the names and numbers they have now: a model (with `name`), a version
    (with `version` and `model`), an experiment, a run, a transition request.
    """
    name = actor_name(actor)
    if not name:
        raise ValueError(f"An audit event ({action}) needs the user who acted.")
    if model is None and version is not None:
        model = version.model
    # Every registration and stage change writes one of these: inserted without the ORM's per-call compiling.
    return rawsql.insert(
        AuditEvent(
            action=action,
            actor_id=actor.pk if not isinstance(actor, str) else None,
            actor_name=name,
            model_id=model.pk if model is not None else None,
            model_name=model.name if model is not None else "",
            version_number=version.version if version is not None else None,
            alias=alias,
            experiment_id=experiment.pk if experiment is not None else getattr(run, "experiment_id", None),
            experiment_name=experiment.name if experiment is not None else "",
            run_id=run.pk if run is not None else "",
            request_id=request.pk if request is not None else None,
            subject=subject,
            from_value=_text(from_value),
            to_value=_text(to_value),
            comment=comment,
            data=data or {},
        )
    )


def _text(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 256 else text[:255] + "…"


@functools.cache
def _webhook_columns() -> rawsql.Columns:
    return rawsql.Columns(Webhook, "id", "events", "model", "active")


def active_webhooks() -> list[Webhook]:
    """Asked on every change that may emit an event, usually to learn there are none: one hand-written query."""
    columns = _webhook_columns()
    connection = rawsql.connection_for(Webhook)
    rows = rawsql.fetchall(
        connection,
        f"SELECT {columns.select('w')} FROM {rawsql.table(Webhook)} w WHERE w.{rawsql.column(Webhook, 'active')}",
    )
    return [columns.load(row, connection) for row in rows]


def version_payload(version) -> dict:
    return {"model": version.model.name, "version": version.version, "stage": version.stage, "run_id": version.run_id}


def emit(event_type: str, *, model, payload: dict) -> OutboxEvent | None:
    """Write an event to the outbox with one delivery per subscribed webhook, in the current transaction.

    Nothing is sent here: `manage.py deliver_webhooks` sends what the outbox holds, so a change and its event are
    committed together or not at all.
    """
    model_id = model.pk if model else None
    hooks = [hook for hook in active_webhooks() if hook.wants(event_type, model_id)]
    if not hooks:
        return None
    with transaction.atomic():
        event = OutboxEvent.objects.create(
            type=event_type, model_id=model_id, payload={"event": event_type, "data": payload}
        )
        WebhookDelivery.objects.bulk_create([WebhookDelivery(webhook=hook, event=event) for hook in hooks])
    return event


# --- Webhook subscriptions (the admin and MLflow's webhook API both go through these) ------------------------------

WEBHOOK_NAME_MAX = 100
WEBHOOK_SECRET_MAX = 256


def _require_webhook_right(by, action: str) -> None:
    if by is None or not getattr(by, "is_active", False) or not by.has_perm(f"audit.{action}_webhook"):
        raise Forbidden(f"Managing webhooks takes the audit.{action}_webhook permission (administrators hold it).")


def _checked_webhook(name: str, url: str, events: Iterable[str]) -> list[str]:
    if not name or len(name) > WEBHOOK_NAME_MAX:
        raise Invalid(f"A webhook needs a name of at most {WEBHOOK_NAME_MAX} characters.")
    try:
        webhooks.check_target(url)
    except webhooks.TargetRefused as exc:
        raise Invalid(str(exc)) from None
    except webhooks.TargetUnresolvable:
        pass  # DNS may not be set up yet; every delivery checks again
    if len(url) > 2048:
        raise Invalid("A webhook URL is at most 2048 characters.")
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in WebhookEventType.values]
    if unknown or not chosen:
        raise Invalid(f"A webhook subscribes to at least one of: {', '.join(WebhookEventType.values)}.")
    return chosen


def _webhook_data(hook: Webhook) -> dict:
    data = {"name": hook.name, "url": hook.url, "events": hook.events, "active": hook.active}
    if hook.model_id:
        data["model"] = hook.model.name
    return data


KEEP = object()  # webhook_update's `model` when the caller does not change it (None: every model)


def webhook_create(
    *, by, name: str, url: str, events: Iterable[str], secret: str = "", active: bool = True, model=None
) -> tuple[Webhook, str]:
    """Subscribe `url` to `events` (audit.add_webhook), of one registered `model` or (None) of all. Returns the
    webhook and its secret: the one given, or a generated one that is shown only now (deliveries are signed with it,
    see registry.audit.webhooks)."""
    _require_webhook_right(by, "add")
    chosen = _checked_webhook(name, url, events)
    if len(secret) > WEBHOOK_SECRET_MAX:
        raise Invalid(f"A webhook secret is at most {WEBHOOK_SECRET_MAX} characters.")
    secret = secret or secrets.token_urlsafe(32)
    with transaction.atomic():
        hook = Webhook.objects.create(
            name=name, url=url, events=chosen, secret=secret, active=active, model=model, created_by=by
        )
        record(AuditAction.WEBHOOK_CREATED, actor=by, subject=f"webhook {hook.pk}", data=_webhook_data(hook))
    return hook, secret


def webhook_update(
    *,
    webhook: Webhook,
    by,
    name: str | None = None,
    url: str | None = None,
    events: Iterable[str] | None = None,
    secret: str | None = None,
    active: bool | None = None,
    model=KEEP,
) -> Webhook:
    """Change what is given (audit.change_webhook); a new secret signs the deliveries made from now on. `model`: the
    one registered model it now follows, or None for all."""
    _require_webhook_right(by, "change")
    chosen = _checked_webhook(
        webhook.name if name is None else name,
        webhook.url if url is None else url,
        webhook.events if events is None else events,
    )
    if secret is not None and not 0 < len(secret) <= WEBHOOK_SECRET_MAX:
        raise Invalid(f"A webhook secret is 1 to {WEBHOOK_SECRET_MAX} characters.")
    with transaction.atomic():
        webhook.name = webhook.name if name is None else name
        webhook.url = webhook.url if url is None else url
        webhook.events = chosen
        webhook.secret = webhook.secret if secret is None else secret
        webhook.active = webhook.active if active is None else active
        if model is not KEEP:
            webhook.model = model
        webhook.save()
        data = {**_webhook_data(webhook), "secret_changed": secret is not None}
        record(AuditAction.WEBHOOK_CHANGED, actor=by, subject=f"webhook {webhook.pk}", data=data)
    return webhook


def webhook_delete(*, webhook: Webhook, by) -> None:
    """Delete the subscription and its pending deliveries (audit.delete_webhook)."""
    _require_webhook_right(by, "delete")
    with transaction.atomic():
        record(AuditAction.WEBHOOK_DELETED, actor=by, subject=f"webhook {webhook.pk}", data=_webhook_data(webhook))
        webhook.delete()
