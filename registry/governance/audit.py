"""Recording what happened: the append-only audit log and the webhook outbox, written in the caller's transaction."""

from __future__ import annotations

from django.db import transaction

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
    return AuditEvent.objects.create(
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


def version_payload(version: ModelVersion) -> dict:
    return {"model": version.model.name, "version": version.version, "stage": version.stage, "run_id": version.run_id}


def emit(event_type: str, *, model: RegisteredModel | None, payload: dict) -> OutboxEvent | None:
    """Write an event to the outbox with one delivery per subscribed webhook, in the current transaction.

    Nothing is sent here: `manage.py deliver_webhooks` sends what the outbox holds, so a change and its event are
    committed together or not at all.
    """
    model_id = model.pk if model else None
    hooks = [hook for hook in Webhook.objects.filter(active=True) if hook.wants(event_type, model_id)]
    if not hooks:
        return None
    with transaction.atomic():
        event = OutboxEvent.objects.create(type=event_type, model=model, payload={"event": event_type, "data": payload})
        WebhookDelivery.objects.bulk_create([WebhookDelivery(webhook=hook, event=event) for hook in hooks])
    return event
