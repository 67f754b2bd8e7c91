"""The audit log and webhooks move from the governance app: their rows are copied, each audit event with the name of
the model it names (kept from now on whatever happens to the model)."""

from django.db import migrations


def _reset_sequences(schema_editor, *models):
    """Rows were copied with their ids: move PostgreSQL's sequences past them (SQLite does it by itself)."""
    from django.core.management.color import no_style

    for statement in schema_editor.connection.ops.sequence_reset_sql(no_style(), list(models)):
        schema_editor.execute(statement)


def move_content_types(apps, schema_editor):
    """The models' content types (and so their permissions, held by groups, and admin log entries) move along."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for name in ("auditevent", "webhook", "outboxevent", "webhookdelivery", "deliveryattempt"):
        if not ContentType.objects.filter(app_label="audit", model=name).exists():
            ContentType.objects.filter(app_label="governance", model=name).update(app_label="audit")


def copy(apps, schema_editor):
    Old = {name: apps.get_model("governance", name) for name in ("AuditEvent", "Webhook", "OutboxEvent", "WebhookDelivery", "DeliveryAttempt")}
    New = {name: apps.get_model("audit", name) for name in Old}

    def bulk(model, rows):
        for start in range(0, len(rows), 2000):
            model.objects.bulk_create(rows[start : start + 2000])

    events = []
    for e in Old["AuditEvent"].objects.select_related("model", "actor").order_by("id").iterator(chunk_size=2000):
        actor_name = e.actor_name or (e.actor.username if e.actor_id and e.actor else "") or "system"
        events.append(
            New["AuditEvent"](
                id=e.id,
                action=e.action,
                at=e.at,
                actor_id=e.actor_id,
                actor_name=actor_name,
                model_id=e.model_id,
                model_name=e.model.name,
                version_number=e.version_number,
                alias=str((e.data or {}).get("alias", "")),
                request_id=e.request_id,
                from_value=e.from_value,
                to_value=e.to_value,
                comment=e.comment,
                data=e.data or {},
            )
        )
    bulk(New["AuditEvent"], events)
    bulk(
        New["Webhook"],
        [
            New["Webhook"](
                id=w.id, name=w.name, url=w.url, events=w.events, model_id=w.model_id, secret=w.secret,
                active=w.active, created_by_id=w.created_by_id, created_at=w.created_at,
            )
            for w in Old["Webhook"].objects.order_by("id")
        ],
    )
    bulk(
        New["OutboxEvent"],
        [
            New["OutboxEvent"](id=o.id, type=o.type, model_id=o.model_id, payload=o.payload, created_at=o.created_at)
            for o in Old["OutboxEvent"].objects.order_by("id").iterator(chunk_size=2000)
        ],
    )
    fields = ["status", "attempts", "next_attempt_at", "last_status_code", "last_latency_ms", "last_error",
              "delivered_at", "created_at"]
    bulk(
        New["WebhookDelivery"],
        [
            New["WebhookDelivery"](id=d.id, webhook_id=d.webhook_id, event_id=d.event_id, **{f: getattr(d, f) for f in fields})
            for d in Old["WebhookDelivery"].objects.order_by("id").iterator(chunk_size=2000)
        ],
    )
    bulk(
        New["DeliveryAttempt"],
        [
            New["DeliveryAttempt"](
                id=a.id, delivery_id=a.delivery_id, at=a.at, status_code=a.status_code, latency_ms=a.latency_ms,
                error=a.error, replay=a.replay,
            )
            for a in Old["DeliveryAttempt"].objects.order_by("id").iterator(chunk_size=2000)
        ],
    )
    _reset_sequences(schema_editor, *New.values())


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_initial'),
        ('governance', '0003_foreign_keys_indexed_by_composites'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.RunPython(copy, migrations.RunPython.noop),
        migrations.RunPython(move_content_types, migrations.RunPython.noop),
    ]
