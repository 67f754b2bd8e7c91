"""Every write service leaves an audit event with its actor, or is one of the few that write a run's own history.

The services are found by introspection: every public function of a services module that takes `by`. Each needs an
entry below saying how to call it and which action it records (None: logging into a run, which the run's own history
holds); a service added later without one fails `test_every_write_service_has_an_entry`.
"""

from __future__ import annotations

import importlib
import inspect
import io
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group

from registry.accounts import grants
from registry.accounts import services as accounts
from registry.audit import services as audit_services
from registry.audit.models import AuditEvent, Webhook
from registry.catalog import artifact_files
from registry.catalog import services as catalog
from registry.catalog.blobs import artifact_key, artifact_storage
from registry.catalog.models import ArtifactFile, Stage
from registry.governance import services as governance
from registry.governance.models import StagePolicy
from registry.mlflow_compat import services as mlflow
from registry.mlflow_compat.models import LoggedModel
from registry.scanning import services as scanning
from registry.tracking import services as tracking
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, person

pytestmark = pytest.mark.django_db

MODULES = (catalog, artifact_files, tracking, governance, accounts, grants, mlflow, scanning, audit_services)
# Checks, not writes.
NOT_WRITES = {"mlflow_compat.require_logged_model_writer"}


def _label(module) -> str:
    """ "catalog" for registry.catalog.services, "grants" for registry.accounts.grants."""
    _, app, name = module.__name__.split(".")
    return app if name == "services" else name


def write_services() -> set[str]:
    found = set()
    for module in MODULES:
        for name, function in inspect.getmembers(module, inspect.isfunction):
            own = function.__module__ == module.__name__ and not name.startswith("_")
            if own and "by" in inspect.signature(function).parameters:
                found.add(f"{_label(module)}.{name}")
    return found - NOT_WRITES


class World:
    def __init__(self):
        self.owner = person("olive", REQUESTERS)
        self.approver = person("paula", PRODUCTION_APPROVERS)
        self.root = person("root", superuser=True)
        self.bob = person("bob")
        self.team = Group.objects.create(name="team")
        self.experiment = tracking.experiment_create(name="e", by=self.owner, tags={"k": "v"})
        self.run = tracking.run_create(experiment=self.experiment, by=self.owner, tags={"t": "1"})
        self.file = artifact_files.artifact_store(
            owner=self.run, path="model/m.pkl", stream=io.BytesIO(b"x"), by=self.owner
        )
        self.model = catalog.model_create(name="m", by=self.owner, tags={"k": "v"})
        self.v1 = catalog.version_create(model=self.model, by=self.owner, run=self.run, artifact_path="model")
        self.v2 = catalog.version_create(model=self.model, by=self.owner, tags={"k": "v"})
        governance.stage_change_direct(version=self.v1, to_stage=Stage.PRODUCTION, by=self.root)
        governance.stage_change_direct(version=self.v2, to_stage=Stage.PRODUCTION, by=self.root)
        governance.alias_set(model=self.model, alias="candidate", version=self.v1, by=self.owner)
        self.logged = mlflow.logged_model_create(
            by=self.owner,
            experiment=self.experiment,
            run=self.run,
            name="lm",
            model_type="",
            tags={"k": "v"},
            params={},
        )
        self.dataset = tracking.dataset_register(by=self.owner, name="d", digest="a" * 64)

    def pending(self):
        return governance.transition_request(version=self.v1, to_stage=Stage.STAGING, by=self.owner)


# name: (how to call it, the action it records; None for a run's own history)
def _webhook(w: World) -> Webhook:
    return Webhook.objects.create(name="w", url="https://hooks.example.com/", events=["version.created"], secret="s")


CALLS: dict[str, tuple[Callable[[World], object], str | None]] = {
    # Webhook subscriptions
    "audit.webhook_create": (
        lambda w: audit_services.webhook_create(
            by=w.root, name="w", url="https://hooks.example.com/", events=["version.created"]
        ),
        "webhook_created",
    ),
    "audit.webhook_update": (
        lambda w: audit_services.webhook_update(webhook=_webhook(w), by=w.root, active=False),
        "webhook_changed",
    ),
    "audit.webhook_delete": (
        lambda w: audit_services.webhook_delete(webhook=_webhook(w), by=w.root),
        "webhook_deleted",
    ),
    # Catalog
    "catalog.model_create": (lambda w: catalog.model_create(name="n", by=w.bob), "model_created"),
    "catalog.model_rename": (lambda w: catalog.model_rename(model=w.model, new_name="m2", by=w.owner), "model_renamed"),
    "catalog.model_update": (
        lambda w: catalog.model_update(model=w.model, description="d", by=w.owner),
        "model_updated",
    ),
    "catalog.model_tag_set": (
        lambda w: catalog.model_tag_set(model=w.model, key="k", value=None, by=w.owner),
        "model_tags_changed",
    ),
    "catalog.model_delete": (
        lambda w: (
            governance.production_rollback(model=w.model, by=w.root),
            governance.stage_change_direct(version=w.v1, to_stage=Stage.ARCHIVED, by=w.root),
            catalog.model_delete(model=w.model, by=w.owner),
        ),
        "model_deleted",
    ),
    "catalog.model_grant_set": (
        lambda w: catalog.model_grant_set(model=w.model, by=w.owner, group=w.team, level="READ"),
        "access_granted",
    ),
    "catalog.model_grant_revoke": (
        lambda w: (
            catalog.model_grant_set(model=w.model, by=w.owner, user=w.bob, level="READ"),
            catalog.model_grant_revoke(model=w.model, by=w.owner, user=w.bob),
        ),
        "access_revoked",
    ),
    "catalog.model_owner_set": (
        lambda w: catalog.model_owner_set(model=w.model, by=w.owner, owner=w.bob),
        "owner_changed",
    ),
    "catalog.model_default_level_set": (
        lambda w: catalog.model_default_level_set(model=w.model, by=w.owner, level="NONE"),
        "default_level_changed",
    ),
    "catalog.version_create": (lambda w: catalog.version_create(model=w.model, by=w.owner), "version_created"),
    "catalog.version_copy": (
        lambda w: catalog.version_copy(version=w.v1, model=w.model, by=w.owner),
        "version_created",
    ),
    "catalog.version_register": (
        lambda w: catalog.version_register(model_name="m", run=w.run, artifact_path="model", by=w.owner),
        "version_created",
    ),
    "catalog.card_update": (
        lambda w: catalog.card_update(model=w.model, version=w.v1, by=w.owner, sections={"intended_use": "Scoring."}),
        "model_card_changed",
    ),
    "catalog.version_update": (
        lambda w: catalog.version_update(version=w.v1, by=w.owner, description="d"),
        "version_updated",
    ),
    "catalog.version_tag_set": (
        lambda w: catalog.version_tag_set(version=w.v2, key="k", value="w", by=w.owner),
        "version_tags_changed",
    ),
    "catalog.version_delete": (
        lambda w: (
            governance.stage_change_direct(version=w.v1, to_stage=Stage.ARCHIVED, by=w.root),
            catalog.version_delete(version=w.v1, by=w.owner),
        ),
        "version_deleted",
    ),
    "artifact_files.artifact_store": (
        lambda w: artifact_files.artifact_store(owner=w.run, path="b.bin", stream=io.BytesIO(b"y"), by=w.owner),
        "artifact_stored",
    ),
    "artifact_files.artifact_register_uploaded": (
        lambda w: artifact_files.artifact_register_uploaded(
            owner=w.run,
            path="c.bin",
            key=artifact_storage().save(artifact_key(w.run, "c.bin"), io.BytesIO(b"z")),
            by=w.owner,
        ),
        "artifact_stored",
    ),
    "artifact_files.artifact_delete": (
        lambda w: artifact_files.artifact_delete(artifact=w.file, by=w.owner),
        "artifact_deleted",
    ),
    # File safety scan
    "scanning.version_rescan": (lambda w: scanning.version_rescan(version=w.v1, by=w.owner), "scan_requested"),
    # Tracking
    "tracking.experiment_create": (lambda w: tracking.experiment_create(name="x", by=w.bob), "experiment_created"),
    "tracking.experiment_named": (lambda w: tracking.experiment_named("y", by=w.bob), "experiment_created"),
    "tracking.experiment_rename": (
        lambda w: tracking.experiment_rename(experiment=w.experiment, name="e2", by=w.owner),
        "experiment_renamed",
    ),
    "tracking.experiment_update": (
        lambda w: tracking.experiment_update(experiment=w.experiment, description="d", by=w.owner),
        "experiment_updated",
    ),
    "tracking.experiment_tag_delete": (
        lambda w: tracking.experiment_tag_delete(experiment=w.experiment, key="k", by=w.owner),
        "experiment_updated",
    ),
    "tracking.experiment_set_deleted": (
        lambda w: tracking.experiment_set_deleted(experiment=w.experiment, deleted=True, by=w.owner),
        "experiment_deleted",
    ),
    "tracking.experiment_grant_set": (
        lambda w: tracking.experiment_grant_set(experiment=w.experiment, by=w.owner, user=w.bob, level="EDIT"),
        "access_granted",
    ),
    "tracking.experiment_grant_revoke": (
        lambda w: (
            tracking.experiment_grant_set(experiment=w.experiment, by=w.owner, user=w.bob, level="EDIT"),
            tracking.experiment_grant_revoke(experiment=w.experiment, by=w.owner, user=w.bob),
        ),
        "access_revoked",
    ),
    "tracking.experiment_owner_set": (
        lambda w: tracking.experiment_owner_set(experiment=w.experiment, by=w.owner, owner=w.bob),
        "owner_changed",
    ),
    "tracking.experiment_default_level_set": (
        lambda w: tracking.experiment_default_level_set(experiment=w.experiment, by=w.owner, level="EDIT"),
        "default_level_changed",
    ),
    "tracking.run_rename": (lambda w: tracking.run_rename(run=w.run, name="r2", by=w.owner), "run_renamed"),
    "tracking.run_set_deleted": (
        lambda w: tracking.run_set_deleted(run=w.run, deleted=True, by=w.owner),
        "run_deleted",
    ),
    # A run's own history: what training logs into its runs.
    "tracking.run_create": (lambda w: tracking.run_create(experiment=w.experiment, by=w.owner), None),
    "tracking.run_finish": (lambda w: tracking.run_finish(run=w.run, by=w.owner), None),
    "tracking.run_steps_set": (lambda w: tracking.run_steps_set(run=w.run, by=w.owner, steps=[{"name": "s"}]), None),
    "tracking.run_tags_set": (lambda w: tracking.run_tags_set(run=w.run, by=w.owner, tags={"a": "b"}), None),
    "tracking.run_tag_delete": (lambda w: tracking.run_tag_delete(run=w.run, by=w.owner, key="t"), None),
    "tracking.run_fields_set": (
        lambda w: tracking.run_fields_set(run=w.run, by=w.owner, fields={"git_commit": "abc"}),
        None,
    ),
    "tracking.log_batch": (
        lambda w: tracking.log_batch(run=w.run, by=w.owner, params={"p": 1}, points=[("m", 1.0, 0, None)], tags={}),
        None,
    ),
    "tracking.metrics_log": (lambda w: tracking.metrics_log(run=w.run, by=w.owner, points=[("m", 1.0, 0, None)]), None),
    "tracking.params_log": (lambda w: tracking.params_log(run=w.run, by=w.owner, params={"q": 1}), None),
    "tracking.dataset_register": (lambda w: tracking.dataset_register(by=w.bob, name="d2", digest="b" * 64), None),
    "tracking.run_input_add": (lambda w: tracking.run_input_add(run=w.run, by=w.owner, dataset=w.dataset), None),
    # Governance
    "governance.transition_request": (lambda w: w.pending(), "request_created"),
    "governance.transition_approve": (
        lambda w: governance.transition_approve(request_id=w.pending().pk, by=w.approver),
        "request_approved",
    ),
    "governance.transition_reject": (
        lambda w: governance.transition_reject(request_id=w.pending().pk, by=w.approver),
        "request_rejected",
    ),
    "governance.transition_cancel": (
        lambda w: governance.transition_cancel(request_id=w.pending().pk, by=w.owner),
        "request_cancelled",
    ),
    "governance.stage_change_direct": (
        lambda w: governance.stage_change_direct(version=w.v1, to_stage=Stage.STAGING, by=w.owner),
        "stage_changed",
    ),
    "governance.stage_move": (
        lambda w: governance.stage_move(version=w.v1, to_stage=Stage.STAGING, by=w.owner),
        "stage_changed",
    ),
    "governance.alias_set": (
        lambda w: governance.alias_set(model=w.model, alias="candidate", version=w.v2, by=w.owner),
        "alias_set",
    ),
    "governance.alias_delete": (
        lambda w: governance.alias_delete(model=w.model, alias="candidate", by=w.owner),
        "alias_deleted",
    ),
    "governance.alias_request": (
        lambda w: governance.alias_request(model=w.model, alias="champion", version=w.v1, by=w.owner),
        "request_created",
    ),
    "governance.production_rollback": (
        lambda w: governance.production_rollback(model=w.model, by=w.approver),
        "rollback",
    ),
    "governance.policy_record": (
        lambda w: governance.policy_record(policy=StagePolicy.objects.create(model=w.model), by=w.root, created=True),
        "policy_changed",
    ),
    # Accounts (the grant services are called through the catalog's and tracking's above)
    "accounts.sso_user_sync": (
        lambda w: accounts.sso_user_sync(user=None, username="sso-user", groups=["from-idp"]),
        "user_created",
    ),
    "grants.grant_set": (
        lambda w: grants.grant_set(
            obj=w.model, by=w.owner, user=w.bob, level="READ", scope={"model": w.model}, what="m"
        ),
        "access_granted",
    ),
    "grants.grant_revoke": (
        lambda w: (
            grants.grant_set(obj=w.model, by=w.owner, user=w.bob, level="READ", scope={"model": w.model}, what="m"),
            grants.grant_revoke(obj=w.model, by=w.owner, user=w.bob, scope={"model": w.model}, what="m"),
        ),
        "access_revoked",
    ),
    "grants.owner_set": (
        lambda w: grants.owner_set(obj=w.model, by=w.owner, owner=w.bob, scope={"model": w.model}, what="m"),
        "owner_changed",
    ),
    "grants.default_level_set": (
        lambda w: grants.default_level_set(obj=w.model, by=w.owner, level="READ", scope={"model": w.model}, what="m"),
        "default_level_changed",
    ),
    "accounts.user_create": (
        lambda w: accounts.user_create(username="newbie", password="a-Long-pw-1", by=w.root),
        "user_created",
    ),
    "accounts.user_password_set": (
        lambda w: accounts.user_password_set(user=w.bob, password="a-Long-pw-2", by=w.root),
        "user_changed",
    ),
    "accounts.user_password_off": (
        lambda w: accounts.user_password_off(user=w.bob, by=w.root),
        "user_changed",
    ),
    "accounts.user_admin_set": (
        lambda w: accounts.user_admin_set(user=w.bob, is_admin=True, by=w.root),
        "user_changed",
    ),
    "accounts.user_access_set": (
        lambda w: accounts.user_access_set(user=w.bob, by=w.root, is_staff=True, groups=[]),
        "user_changed",
    ),
    "accounts.user_details_set": (
        lambda w: accounts.user_details_set(user=w.bob, by=w.root, email="bob@example.org"),
        "user_changed",
    ),
    "accounts.user_delete": (lambda w: accounts.user_delete(user=w.bob, by=w.root), "user_deleted"),
    "accounts.group_save": (
        lambda w: accounts.group_save(group=w.team, name="team-renamed", by=w.root),
        "group_changed",
    ),
    "accounts.group_delete": (lambda w: accounts.group_delete(group=w.team, by=w.root), "group_deleted"),
    "accounts.token_issue": (
        lambda w: accounts.token_issue(user=w.bob, name="ci", scope="read", by=w.bob),
        "token_created",
    ),
    "accounts.token_revoke": (
        lambda w: accounts.token_revoke(
            token=accounts.token_issue(user=w.bob, name="ci", scope="read", by=w.bob)[0], by=w.root
        ),
        "token_revoked",
    ),
    # The MLflow API's own workflows: through the services above, or a run's history (logged models included)
    "mlflow_compat.experiment_create": (
        lambda w: mlflow.experiment_create(name="z", tags={"mlflow.note.content": "d"}, by=w.bob),
        "experiment_created",
    ),
    "mlflow_compat.experiment_tag_set": (
        lambda w: mlflow.experiment_tag_set(experiment=w.experiment, key="a", value="b", by=w.owner),
        "experiment_updated",
    ),
    "mlflow_compat.version_register": (
        lambda w: mlflow.version_register(model=w.model, source=f"runs:/{w.run.pk}/model", host="h", by=w.owner),
        "version_created",
    ),
    "mlflow_compat.run_tags_apply": (
        lambda w: mlflow.run_tags_apply(run=w.run, by=w.owner, tags={"mlflow.runName": "x", "a": "b"}),
        None,
    ),
    "mlflow_compat.run_tag_delete": (lambda w: mlflow.run_tag_delete(run=w.run, by=w.owner, key="t"), None),
    "mlflow_compat.metrics_log": (
        lambda w: mlflow.metrics_log(run=w.run, by=w.owner, points=[tracking.Point("m", 1.0)]),
        None,
    ),
    "mlflow_compat.log_batch": (
        lambda w: mlflow.log_batch(run=w.run, by=w.owner, points=[], model_metrics=[], params={"r": "1"}, tags={}),
        None,
    ),
    "mlflow_compat.datasets_log": (
        lambda w: mlflow.datasets_log(run=w.run, by=w.owner, datasets=[({"name": "d3", "digest": "c"}, "eval", [])]),
        None,
    ),
    "mlflow_compat.model_links_add": (
        lambda w: mlflow.model_links_add(run=w.run, by=w.owner, model_ids=[w.logged.pk], direction="output"),
        None,
    ),
    "mlflow_compat.logged_model_create": (
        lambda w: mlflow.logged_model_create(
            by=w.owner, experiment=w.experiment, run=w.run, name="l2", model_type="", tags={}, params={}
        ),
        None,
    ),
    "mlflow_compat.logged_model_finish": (
        lambda w: mlflow.logged_model_finish(logged_model=w.logged, status=LoggedModel.Status.READY, by=w.owner),
        None,
    ),
    "mlflow_compat.logged_model_dict_update": (
        lambda w: mlflow.logged_model_dict_update(logged_model=w.logged, by=w.owner, field="tags", values={"a": "b"}),
        None,
    ),
    "mlflow_compat.logged_model_delete": (
        lambda w: mlflow.logged_model_delete(logged_model=w.logged, by=w.owner),
        None,
    ),
}


def test_every_write_service_has_an_entry():
    assert write_services() == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_write_is_recorded_with_its_actor(name):
    world = World()
    call, action = CALLS[name]
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    call(world)
    events = list(AuditEvent.objects.filter(id__gt=last).order_by("id"))
    assert all(e.actor_name and e.actor_id for e in events), [(e.action, e.actor_name) for e in events]
    if action is None:
        assert events == [], f"{name} writes a run's own history, not the audit log: {[e.action for e in events]}"
    else:
        assert action in [e.action for e in events], (name, [e.action for e in events])


def test_an_event_without_an_actor_is_refused(db):
    from registry.audit import services as audit

    with pytest.raises(ValueError, match="needs the user who acted"):
        audit.record("model_created", actor=None)


def test_the_demo_and_migrations_name_their_system_actors(db):
    from registry.audit import services as audit

    event = audit.record("policy_changed", actor="system:migration")
    assert (event.actor_name, event.actor_id) == ("system:migration", None)


def test_module_list_covers_every_services_module():
    """A new app's services module must be walked too. The audit app's records what the others do (its webhook
    services are walked), and the demo's calls the others."""
    import pathlib

    root = pathlib.Path(importlib.import_module("registry").__file__).parent
    found = {p.parent.name for p in root.glob("*/services.py")} - {"demo"}
    assert found == {m.__name__.split(".")[1] for m in MODULES if m.__name__.endswith(".services")}


def test_a_refused_write_records_nothing(db):
    world = World()
    before = AuditEvent.objects.count()
    with pytest.raises(Exception):  # noqa: B017 - any refusal
        catalog.model_rename(model=world.model, new_name="x", by=world.bob)
    assert AuditEvent.objects.count() == before
    assert not ArtifactFile.objects.filter(path="nothing").exists()
