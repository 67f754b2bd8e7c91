"""Upgrading a registry that has data: the audit log, webhooks, requests and stage history move to their new apps
with every row, and experiments get owners and grants from who logged runs there."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [
    ("accounts", "0001_api_tokens"),
    ("tracking", "0005_foreign_keys_indexed_by_composites"),
    ("catalog", "0002_foreign_keys_indexed_by_composites"),
    ("governance", "0003_foreign_keys_indexed_by_composites"),
    ("mlflow_compat", "0001_initial"),
    ("audit", None),  # the app did not exist yet
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


@pytest.mark.django_db(transaction=True)
def test_upgrading_keeps_every_row():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    # The default policy's gates that the data migrations add: sibling migrations each widen the gate kind check
    # and insert their own kind, so going back through one of them while another's gates remain would break its
    # narrower check. After another transactional test's flush there are none; run first (alone, or in another
    # order) they are there, so they go before going back.
    from registry.governance.models import PolicyGate

    PolicyGate.objects.all().delete()
    old = migrate(BEFORE)
    try:
        User = old.get_model("auth", "User")
        alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")
        Experiment, Run = old.get_model("tracking", "Experiment"), old.get_model("tracking", "Run")
        experiment = Experiment.objects.create(name="exp")
        Experiment.objects.get_or_create(name="Default")
        for user, start in ((alice, 1), (bob, 2)):
            Run.objects.create(
                id=f"{start:032x}", experiment=experiment, user=user, start_time=timezone.now(), status="finished"
            )
        Model = old.get_model("catalog", "RegisteredModel")
        Version = old.get_model("catalog", "ModelVersion")
        model = Model.objects.create(name="fraud", owner=alice, last_version=2)
        v1 = Version.objects.create(model=model, version=1, created_by=alice)
        Version.objects.create(model=model, version=2, created_by=bob)
        Request = old.get_model("catalog", "StageTransitionRequest")
        request = Request.objects.create(version=v1, from_stage="None", to_stage="Production", requested_by=bob)
        Change = old.get_model("catalog", "StageChange")
        Change.objects.create(model=model, version=v1, from_stage="None", to_stage="Staging", changed_by=alice)
        Audit = old.get_model("governance", "AuditEvent")
        Audit.objects.create(action="version_created", model=model, version=v1, actor=alice, actor_name="alice")
        Audit.objects.create(action="alias_set", model=model, version=v1, actor=None, data={"alias": "champion"})
        Audit.objects.create(action="request_created", model=model, version=v1, request=request, actor_name="bob")
        Webhook = old.get_model("governance", "Webhook")
        hook = Webhook.objects.create(name="h", url="https://x.example/h", events=["stage.changed"], secret="s")
        Outbox = old.get_model("governance", "OutboxEvent")
        event = Outbox.objects.create(type="stage.changed", model=model, payload={"event": "stage.changed"})
        old.get_model("governance", "WebhookDelivery").objects.create(webhook=hook, event=event)
        old.get_model("governance", "StagePolicy").objects.create(model=model, approval_required_for=["Production"])

        new = migrate(latest)

        AuditEvent = new.get_model("audit", "AuditEvent")
        rows = list(AuditEvent.objects.order_by("id").values_list("action", "actor_name", "model_name", "alias"))
        assert rows == [
            ("version_created", "alice", "fraud", ""),
            ("alias_set", "system", "fraud", "champion"),  # recorded without an actor, before every event had one
            ("request_created", "bob", "fraud", ""),
        ]
        assert AuditEvent.objects.get(action="request_created").request_id == request.pk
        NewRequest = new.get_model("governance", "StageTransitionRequest")
        moved = NewRequest.objects.get(pk=request.pk)
        assert (moved.model_id, moved.action, moved.requested_by_id) == (model.pk, "stage", bob.pk)
        assert new.get_model("governance", "StageChange").objects.get().request_id is None
        Delivery = new.get_model("audit", "WebhookDelivery")
        assert Delivery.objects.get().event.model_id == model.pk
        NewExperiment = new.get_model("tracking", "Experiment")
        assert NewExperiment.objects.get(name="exp").owner_id == alice.pk
        assert NewExperiment.objects.get(name="Default").default_level == 2  # everyone may log there
        grants = new.get_model("tracking", "ExperimentGrant").objects.values_list("user_id", "level")
        assert list(grants) == [(bob.pk, 2)]
        model_grants = new.get_model("catalog", "ModelGrant").objects.values_list("user_id", "level")
        assert list(model_grants) == [(bob.pk, 2)]  # bob registered a version of alice's model
        # New rows get new ids (PostgreSQL's sequences were moved past the copied ones).
        created = AuditEvent.objects.create(action="model_created", actor_name="x", model_name="y")
        assert created.pk > 3
        Policy = new.get_model("governance", "StagePolicy")
        assert Policy.objects.get(model_id=model.pk).protected_aliases == ["champion", "production"]
    finally:
        migrate(latest)
