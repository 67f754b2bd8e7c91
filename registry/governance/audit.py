"""Recording what happened: the append-only audit log and the webhook outbox, written in the caller's transaction."""

from __future__ import annotations

import functools

from django.db import transaction

from registry import rawsql
from registry.catalog.models import ModelVersion, RegisteredModel, StageTransitionRequest
from registry.governance.models import AuditEvent, OutboxEvent, Webhook, WebhookDelivery


def record(
    action: str,
    *,
    model: RegisteredModel,
    version: ModelVersion | None = None,
    actor=None,
    from_value: str = "",
    to_value: str = "",
    comment: str = "",
    request: StageTransitionRequest | None = None,
    data: dict | None = None,
) -> AuditEvent:
    # Every registration and stage change writes one of these: inserted without the ORM's per-call compiling.
    return rawsql.insert(
        AuditEvent(
            action=action,
            model=model,
            version=version,
            version_number=version.version if version else None,
            actor=actor if getattr(actor, "pk", None) else None,
            actor_name=actor.get_username() if getattr(actor, "pk", None) else "",
            from_value=str(from_value or ""),
            to_value=str(to_value or ""),
            comment=comment,
            request=request,
            data=data or {},
        )
    )


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


def version_payload(version: ModelVersion) -> dict:
    return {"model": version.model.name, "version": version.version, "stage": version.stage, "run_id": version.run_id}


def emit(event_type: str, *, model: RegisteredModel | None, payload: dict) -> OutboxEvent | None:
    """Write an event to the outbox with one delivery per subscribed webhook, in the current transaction.

    Nothing is sent here: `manage.py deliver_webhooks` sends what the outbox holds, so a change and its event are
    committed together or not at all.
    """
    model_id = model.pk if model else None
    hooks = [hook for hook in active_webhooks() if hook.wants(event_type, model_id)]
    if not hooks:
        return None
    with transaction.atomic():
        event = OutboxEvent.objects.create(type=event_type, model=model, payload={"event": event_type, "data": payload})
        WebhookDelivery.objects.bulk_create([WebhookDelivery(webhook=hook, event=event) for hook in hooks])
    return event
