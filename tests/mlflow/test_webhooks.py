"""MLflow 3's webhook API through the official client, mapped onto the registry's webhooks (our events, our HMAC)."""

from __future__ import annotations

import pytest
from mlflow.entities.webhook import WebhookEvent
from mlflow.exceptions import MlflowException

from registry.accounts.models import ApiToken
from registry.audit import webhooks as delivery
from registry.audit.models import AuditAction, AuditEvent, Webhook, WebhookDelivery
from tests.mlflow.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)

URL = "https://hooks.example.com/registry"


@pytest.fixture
def admin_client(client, superuser, as_token):
    as_token(ApiToken.issue(user=superuser, name="root")[1])
    return client


def test_webhooks_through_mlflows_api_are_the_registrys(admin_client, superuser):
    client = admin_client
    created = client.create_webhook(
        name="deploys",
        url=URL,
        events=[WebhookEvent("model_version", "created"), WebhookEvent("model_version_alias", "created")],
        secret="s3cret",
    )
    hook = Webhook.objects.get()
    assert (hook.name, hook.url, hook.secret, hook.active) == ("deploys", URL, "s3cret", True)
    assert hook.events == ["alias.changed", "version.created"]
    assert created.webhook_id == str(hook.pk) and created.status.value == "ACTIVE"
    fetched = client.get_webhook(created.webhook_id)
    assert {(e.entity.value, e.action.value) for e in fetched.events} == {
        ("model_version", "created"),
        ("model_version_alias", "created"),
        ("model_version_alias", "deleted"),
    }
    assert [w.name for w in client.list_webhooks()] == ["deploys"]

    # A registration is delivered as ours: the registry's payload, signed with the webhook's secret.
    client.create_registered_model("scorer")
    client.create_model_version("scorer", "s3://bucket/model")
    queued = WebhookDelivery.objects.select_related("event").get(webhook=hook)
    assert queued.event.type == "version.created" and queued.event.payload["data"]["model"] == "scorer"
    body = delivery.body_of(queued)
    assert delivery.verify("s3cret", 1700000000, body, delivery.sign("s3cret", 1700000000, body), tolerance=None)

    updated = client.update_webhook(created.webhook_id, status="DISABLED", name="deploys-2")
    assert updated.status.value == "DISABLED"
    hook.refresh_from_db()
    assert (hook.name, hook.active, hook.secret) == ("deploys-2", False, "s3cret")
    client.delete_webhook(created.webhook_id)
    assert not Webhook.objects.exists()
    actions = list(AuditEvent.objects.filter(actor_id=superuser.pk).values_list("action", flat=True).order_by("id"))
    assert [a for a in actions if a.startswith("webhook")] == [
        AuditAction.WEBHOOK_CREATED,
        AuditAction.WEBHOOK_CHANGED,
        AuditAction.WEBHOOK_DELETED,
    ]


def test_events_without_a_registry_equivalent_and_bad_targets_are_refused(admin_client):
    with pytest.raises(MlflowException, match="no webhook for registered_model.created") as unknown:
        admin_client.create_webhook(name="x", url=URL, events=[WebhookEvent("registered_model", "created")])
    assert error_code(unknown) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="loopback") as private:
        admin_client.create_webhook(
            name="x", url="http://127.0.0.1:9/hook", events=[WebhookEvent("model_version", "created")]
        )
    assert error_code(private) == "INVALID_PARAMETER_VALUE"
    assert not Webhook.objects.exists()


def test_only_administrators_manage_webhooks(client):
    with pytest.raises(MlflowException) as refused:
        client.create_webhook(name="x", url=URL, events=[WebhookEvent("model_version", "created")])
    assert error_code(refused) == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as listing:
        client.list_webhooks()
    assert error_code(listing) == "PERMISSION_DENIED"
    assert not Webhook.objects.exists() and not AuditEvent.objects.exists()
