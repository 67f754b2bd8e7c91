"""The governance admin: constant-query changelists, read-only history, forms that say what is wrong, and the
replay and approve/reject actions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.audit import services as audit
from registry.audit import webhooks
from registry.audit.models import (
    AuditAction,
    AuditEvent,
    DeliveryAttempt,
    DeliveryStatus,
    OutboxEvent,
    Webhook,
    WebhookDelivery,
    WebhookEventType,
)
from registry.catalog.models import Stage
from registry.governance import services as governance
from registry.governance.models import GateKind, PolicyGate, RequestStatus, StagePolicy, StageTransitionRequest
from tests.factories import ModelVersionFactory, RegisteredModelFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def admin_url(model: type, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- Builders: `n` rows whose related rows are all distinct, so an N+1 would show ----------------------------------


def make_policies(n: int) -> None:
    for _ in range(n):
        policy = StagePolicy.objects.create(model=RegisteredModelFactory(), approval_required_for=["Staging"])
        PolicyGate.objects.create(policy=policy, kind=GateKind.METRIC, metric="f1", operator=">=", threshold=0.7)
        PolicyGate.objects.create(policy=policy, kind=GateKind.DATASET, context="evaluation")


def make_audit_events(n: int) -> None:
    for _ in range(n):
        version = ModelVersionFactory()
        audit.record(AuditAction.VERSION_CREATED, model=version.model, version=version, actor=UserFactory())


def make_webhooks(n: int) -> None:
    for i in range(n):
        Webhook.objects.create(
            name=f"hook-{Webhook.objects.count()}-{i}",
            url="https://hooks.example.com/registry",
            events=[WebhookEventType.VERSION_CREATED, WebhookEventType.STAGE_CHANGED],
            model=RegisteredModelFactory(),
            secret="s",
            created_by=UserFactory(),
        )


def _delivery(status: str = DeliveryStatus.PENDING) -> WebhookDelivery:
    model = RegisteredModelFactory()
    hook = Webhook.objects.create(
        name=f"hook-{model.name}", url="https://hooks.example.com/x", events=["version.created"], secret="s"
    )
    event = OutboxEvent.objects.create(type="version.created", model_id=model.pk, payload={"event": "version.created"})
    delivery = WebhookDelivery.objects.create(webhook=hook, event=event, status=status, attempts=1)
    DeliveryAttempt.objects.create(delivery=delivery, status_code=500, latency_ms=12, error="HTTP 500")
    return delivery


def make_deliveries(n: int) -> None:
    for _ in range(n):
        _delivery()


BUILDERS: dict[type, Callable[[int], None]] = {
    StagePolicy: make_policies,
    AuditEvent: make_audit_events,
    Webhook: make_webhooks,
    OutboxEvent: make_deliveries,
    WebhookDelivery: make_deliveries,
}

# Queries per changelist page, the same at 1 and at 50 rows. Every page: the session, the user, the row count twice
# (filtered and full), the page of rows with its related rows joined in. Then: AuditEvent lists the model names for
# its filter and runs the date hierarchy (min/max, the list of days), and counts only the filtered rows (its full
# count is skipped: the log grows for ever); OutboxEvent runs the date hierarchy; WebhookDelivery lists the webhooks
# for its webhook filter.
QUERIES = {StagePolicy: 5, AuditEvent: 7, Webhook: 5, OutboxEvent: 7, WebhookDelivery: 6}


@pytest.mark.parametrize("model", list(BUILDERS), ids=lambda m: m.__name__)
def test_changelist_queries_do_not_grow_with_rows(admin_client, model):
    url = admin_url(model, "changelist")
    build = BUILDERS[model]

    build(1)
    admin_client.get(url)  # warm per-process caches (content types, templates) out of the count
    with CaptureQueriesContext(connection) as at_one:
        response = admin_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == model.objects.count()

    build(49)
    with CaptureQueriesContext(connection) as at_fifty:
        response = admin_client.get(url)
    assert response.status_code == 200
    assert model.objects.count() >= 50
    assert len(response.context["cl"].result_list) == min(model.objects.count(), 100)
    assert len(at_one) == len(at_fifty) == QUERIES[model], "\n".join(q["sql"] for q in at_fifty.captured_queries)


def test_the_other_governance_pages_open(admin_client):
    delivery = _delivery()
    make_policies(1)
    policy = StagePolicy.objects.exclude(model=None).get()
    make_audit_events(1)
    pages = [
        admin_url(WebhookDelivery, "change", delivery.pk),
        admin_url(OutboxEvent, "change", delivery.event_id),
        admin_url(Webhook, "change", delivery.webhook_id),
        admin_url(Webhook, "add"),
        admin_url(StagePolicy, "change", policy.pk),
        admin_url(StagePolicy, "add"),
        admin_url(AuditEvent, "change", AuditEvent.objects.get().pk),
    ]
    for url in pages:
        assert admin_client.get(url).status_code == 200, url
    page = admin_client.get(admin_url(WebhookDelivery, "change", delivery.pk)).content.decode()
    assert "HTTP 500" in page, "the attempts are shown inline"


# --- Read-only history ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [AuditEvent, OutboxEvent, WebhookDelivery], ids=lambda m: m.__name__)
def test_history_cannot_be_added_changed_or_deleted(admin_client, model):
    delivery = _delivery()
    make_audit_events(1)
    obj = {AuditEvent: AuditEvent.objects.first(), OutboxEvent: delivery.event, WebhookDelivery: delivery}[model]

    assert admin_client.get(admin_url(model, "add")).status_code == 403
    assert admin_client.get(admin_url(model, "delete", obj.pk)).status_code == 403
    response = admin_client.post(admin_url(model, "change", obj.pk), {})
    assert response.status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


def test_audit_events_filter_by_action_and_model_and_search_by_actor_and_comment(admin_client):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    churn, fraud = RegisteredModelFactory(name="churn"), RegisteredModelFactory(name="fraud")
    audit.record(AuditAction.VERSION_CREATED, model=churn, actor=alice, comment="first cut")
    audit.record(AuditAction.ALIAS_SET, model=fraud, actor=bob, comment="promote the candidate")
    url = admin_url(AuditEvent, "changelist")

    def rows(**params) -> set[str]:
        response = admin_client.get(url, params)
        assert response.status_code == 200
        return {event.model_name for event in response.context["cl"].result_list}

    assert rows(action__exact="alias_set") == {"fraud"}
    assert rows(model_name="churn") == {"churn"}
    assert rows(q="fraud") == {"fraud"}
    assert rows(q="alice") == {"churn"}
    assert rows(q="candidate") == {"fraud"}


# --- Forms ----------------------------------------------------------------------------------------------------------


def gate_post(**gate) -> dict:
    data = {
        "model": "",
        "approval_required_for": ["Production"],
        "allow_direct_changes": "on",
        "gates-TOTAL_FORMS": "1",
        "gates-INITIAL_FORMS": "0",
        "gates-MIN_NUM_FORMS": "0",
        "gates-MAX_NUM_FORMS": "1000",
    }
    data.update({f"gates-0-{key}": value for key, value in gate.items()})
    return data


def test_a_metric_gate_needs_metric_operator_and_threshold(admin_client):
    StagePolicy.objects.all().delete()  # the global default is unique; this form makes a new one

    response = admin_client.post(admin_url(StagePolicy, "add"), gate_post(stage="Production", kind="metric"))

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert errors["metric"] == ["Metric gates need the metric key, e.g. f1."]
    assert errors["operator"] == ["Metric gates need a comparison operator."]
    assert "threshold" in errors
    assert not StagePolicy.objects.exists()


def test_a_dataset_gate_needs_a_context(admin_client):
    StagePolicy.objects.all().delete()

    response = admin_client.post(admin_url(StagePolicy, "add"), gate_post(stage="Production", kind="dataset"))

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert list(errors) == ["context"]


def test_a_complete_policy_is_saved_with_its_gates(admin_client):
    StagePolicy.objects.all().delete()
    data = gate_post(stage="Production", kind="metric", metric="f1", operator=">=", threshold="0.8")
    data["approval_required_for"] = ["Staging", "Production"]

    response = admin_client.post(admin_url(StagePolicy, "add"), data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    policy = StagePolicy.objects.get()
    assert policy.approval_required_for == ["Staging", "Production"]
    assert [gate.describe() for gate in policy.gates.all()] == ["f1 >= 0.8"]


def webhook_post(**overrides) -> dict:
    return {
        "name": "ci",
        "url": "http://127.0.0.1:9/hook",
        "events": ["version.created", "stage.changed"],
        "model": "",
        "secret": "",
        "active": "on",
        **overrides,
    }


def test_a_webhook_with_a_blank_secret_gets_one_generated_and_shown_once(admin_client, settings, superuser):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True

    response = admin_client.post(admin_url(Webhook, "add"), webhook_post(), follow=True)

    hook = Webhook.objects.get()
    assert hook.events == ["stage.changed", "version.created"]
    assert hook.created_by == superuser
    assert len(hook.secret) >= 32
    assert any(hook.secret in message for message in messages_of(response))
    page = admin_client.get(admin_url(Webhook, "change", hook.pk)).content.decode()
    assert hook.secret not in page, "the secret is not shown again"


def test_editing_a_webhook_with_a_blank_secret_keeps_it(admin_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    hook = Webhook.objects.create(name="ci", url="http://127.0.0.1:9/", events=["version.created"], secret="kept")

    response = admin_client.post(admin_url(Webhook, "change", hook.pk), webhook_post(name="renamed"))

    assert response.status_code == 302
    hook.refresh_from_db()
    assert (hook.name, hook.secret) == ("renamed", "kept")


def test_webhooks_made_changed_and_deleted_in_the_admin_are_audited(admin_client, settings, superuser):
    """A webhook's URL decides where the registry's news goes: the admin writes it through the audit services, as
    MLflow's webhook API does, and the log says who pointed it where."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    model = RegisteredModelFactory(name="churn")
    admin_client.post(admin_url(Webhook, "add"), webhook_post(model=model.pk, secret="first"))
    hook = Webhook.objects.get()
    created = AuditEvent.objects.get(action=AuditAction.WEBHOOK_CREATED)
    assert (created.actor_name, created.subject) == (superuser.username, f"webhook {hook.pk}")
    assert created.data == {
        "name": "ci",
        "url": "http://127.0.0.1:9/hook",
        "events": ["stage.changed", "version.created"],
        "active": True,
        "model": "churn",
    }

    admin_client.post(admin_url(Webhook, "change", hook.pk), webhook_post(url="http://127.0.0.1:9/elsewhere"))
    changed = AuditEvent.objects.get(action=AuditAction.WEBHOOK_CHANGED)
    assert changed.data["url"] == "http://127.0.0.1:9/elsewhere" and "model" not in changed.data  # now every model
    assert changed.data["secret_changed"] is False
    admin_client.post(admin_url(Webhook, "change", hook.pk), webhook_post(secret="second"))
    assert AuditEvent.objects.filter(action=AuditAction.WEBHOOK_CHANGED).order_by("id").last().data["secret_changed"]
    hook.refresh_from_db()
    assert hook.secret == "second" and hook.model is None

    response = admin_client.post(admin_url(Webhook, "delete", hook.pk), {"post": "yes"})
    assert response.status_code == 302 and not Webhook.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.WEBHOOK_DELETED, subject=f"webhook {hook.pk}").exists()


def test_staff_without_the_webhook_right_change_nothing(client, settings):
    """Without audit.change_webhook (the right the service checks too) the page refuses, and nothing changes."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    hook = Webhook.objects.create(name="ci", url="http://127.0.0.1:9/", events=["version.created"], secret="kept")
    sam = UserFactory(username="sam", is_staff=True)
    sam.user_permissions.add(*Permission.objects.filter(codename__in=["view_webhook", "add_webhook"]))
    client.force_login(sam)
    response = client.post(admin_url(Webhook, "change", hook.pk), webhook_post(url="http://127.0.0.1:9/mine"))
    assert response.status_code == 403
    hook.refresh_from_db()
    assert hook.url == "http://127.0.0.1:9/" and not AuditEvent.objects.exists()


def test_policies_deleted_from_the_list_are_each_recorded(admin_client):
    make_policies(2)
    ids = list(StagePolicy.objects.values_list("pk", flat=True))
    response = admin_client.post(
        admin_url(StagePolicy, "changelist"), {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert response.status_code == 302 and not StagePolicy.objects.exists()
    deleted = AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED, from_value="deleted")
    assert deleted.count() == len(ids) >= 2


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://hooks.example.com/x", "Enter a valid URL."),
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://10.0.0.1/hook", "private"),
    ],
)
def test_a_webhook_url_must_be_public_http(admin_client, settings, url, error):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False

    response = admin_client.post(admin_url(Webhook, "add"), webhook_post(url=url, secret="given"))

    assert response.status_code == 200
    assert error in " ".join(response.context["adminform"].form.errors["url"])
    assert not Webhook.objects.exists()


def test_a_webhook_needs_at_least_one_event(admin_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True

    response = admin_client.post(admin_url(Webhook, "add"), webhook_post(events=[]))

    assert response.status_code == 200
    assert "events" in response.context["adminform"].form.errors


# --- Actions --------------------------------------------------------------------------------------------------------


def test_replay_action_sends_the_selected_deliveries_again(admin_client, hook, receiver):
    version = ModelVersionFactory()
    audit.emit(WebhookEventType.VERSION_CREATED, model=version.model, payload=audit.version_payload(version))
    webhooks.deliver_due()
    delivery = WebhookDelivery.objects.get()

    response = admin_client.post(
        admin_url(WebhookDelivery, "changelist"),
        {"action": "replay_selected", "_selected_action": [delivery.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert len(receiver.requests) == 2
    assert receiver.requests[1].verifies(hook.secret)
    assert [a.replay for a in delivery.attempt_log.order_by("id")] == [False, True]
    assert any(message.startswith(f"Delivery {delivery.pk}: HTTP 200") for message in messages_of(response))


def test_replay_action_reports_a_refused_target(admin_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    delivery = _delivery(status=DeliveryStatus.FAILED)
    Webhook.objects.filter(pk=delivery.webhook_id).update(url="http://169.254.169.254/latest/")

    response = admin_client.post(
        admin_url(WebhookDelivery, "changelist"),
        {"action": "replay_selected", "_selected_action": [delivery.pk]},
        follow=True,
    )

    assert response.status_code == 200
    [message] = messages_of(response)
    assert "link-local" in message
    assert delivery.attempt_log.filter(replay=True).count() == 1


def test_replay_needs_the_right_to_change_webhooks(client):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(viewer)
    response = client.get(admin_url(WebhookDelivery, "changelist"))
    assert response.status_code == 200
    assert "replay_selected" not in response.content.decode()


def request_for(stage: str = Stage.STAGING, *, by=None) -> StageTransitionRequest:
    version = ModelVersionFactory()
    return governance.transition_request(version=version, to_stage=stage, by=by or UserFactory(is_superuser=True))


def decide(admin_client, action: str, *requests: StageTransitionRequest):
    return admin_client.post(
        admin_url(StageTransitionRequest, "changelist"),
        {"action": action, "_selected_action": [r.pk for r in requests]},
        follow=True,
    )


def test_approve_action_approves_and_reports_each_request(admin_client, superuser):
    good = request_for()
    own = request_for(by=superuser)  # nobody approves their own request under the default policy

    response = decide(admin_client, "approve_selected", good, own)

    assert response.status_code == 200
    good.refresh_from_db()
    own.refresh_from_db()
    assert good.status == RequestStatus.APPROVED
    assert good.decided_by == superuser
    assert good.version.stage == Stage.STAGING
    assert own.status == RequestStatus.PENDING
    found = messages_of(response)
    assert any(m.endswith("→ Staging: approved.") for m in found)
    assert any("cannot approve your own request" in m for m in found)


def test_approve_action_reports_failing_gates(admin_client):
    request = request_for()
    policy = StagePolicy.objects.create(model=request.version.model, approval_required_for=["Staging"])
    PolicyGate.objects.create(policy=policy, stage="Staging", kind="metric", metric="f1", operator=">=", threshold=0.9)

    response = decide(admin_client, "approve_selected", request)

    assert response.status_code == 200
    [message] = messages_of(response)
    assert "1 gate(s) fail" in message and "f1 >= 0.9" in message
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


def test_reject_action_rejects_and_reports_already_decided(admin_client, superuser):
    pending = request_for()
    decided = request_for()
    governance.transition_reject(request_id=decided.pk, by=UserFactory(is_superuser=True))

    response = decide(admin_client, "reject_selected", pending, decided)

    assert response.status_code == 200
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == (RequestStatus.REJECTED, superuser)
    found = messages_of(response)
    assert any(m.endswith("→ Staging: rejected.") for m in found)
    assert any("already rejected" in m for m in found)
