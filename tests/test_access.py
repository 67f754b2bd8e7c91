"""Who may do what: the holes the access-control issue found, closed through every surface; managing access; the
rules that keep someone able to manage; private registries; rollback with two holders.

The route-by-route matrix is tests/test_permission_matrix.py; these tests read like the issue's examples.
"""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from registry.accounts.models import ApiToken
from registry.audit.models import AuditEvent
from registry.catalog import artifact_files
from registry.catalog import services as catalog
from registry.catalog.models import ModelAlias, ModelGrant, ModelVersion, RegisteredModel, Stage
from registry.governance import services as governance
from registry.governance.errors import GatesFailed
from registry.governance.history import rollback_plan
from registry.governance.models import GateKind, PolicyGate, StagePolicy, StageTransitionRequest
from registry.lib.errors import Conflict, Forbidden, Invalid, NotFound
from registry.tracking import services as tracking
from registry.tracking.models import Experiment, ExperimentGrant, Run
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, person

pytestmark = pytest.mark.django_db


class Caller:
    """One persona through /api/v1 and the MLflow API, with a write token."""

    def __init__(self, user):
        self.user = user
        self.token = ApiToken.issue(user=user, name="t")[1]
        self.client = Client(headers={"Authorization": f"Bearer {self.token}"})

    def api(self, method: str, path: str, body=None):
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(method, "/api/v1" + path, data, content_type="application/json")

    def mlflow(self, method: str, endpoint: str, body=None):
        if method == "GET":
            return self.client.get(f"/api/2.0/mlflow/{endpoint}", body or {})
        return self.client.generic(
            method, f"/api/2.0/mlflow/{endpoint}", json.dumps(body or {}), content_type="application/json"
        )


@pytest.fixture
def alice(db):
    """Owns the model `fraud` and the experiment `fraud-training`, with two versions: v1 in Production, v2 Archived."""
    return person("alice")


@pytest.fixture
def rita(db):
    """Only a requester: the registry-wide role, no grant."""
    return person("rita", REQUESTERS)


@pytest.fixture
def root(db):
    return person("root", superuser=True)


@pytest.fixture
def world(alice, root):
    experiment = tracking.experiment_create(name="fraud-training", by=alice)
    run = tracking.run_create(experiment=experiment, by=alice, name="r1")
    artifact_files.artifact_store(owner=run, path="model/model.pkl", stream=io.BytesIO(b"w"), by=alice)
    tracking.metrics_log(run=run, by=alice, points=[("f1", 0.5, 0, None)])
    model = catalog.model_create(name="fraud", by=alice, description="Scores payments.")
    v1 = catalog.version_create(model=model, by=alice, run=run, artifact_path="model")
    v2 = catalog.version_create(model=model, by=alice, run=run, artifact_path="model")
    governance.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=root)
    governance.stage_change_direct(version=v2, to_stage=Stage.ARCHIVED, by=root)
    governance.alias_set(model=model, alias="champion", version=v1, by=root)
    # Both gates of Production fail for v2: f1 0.5 < 0.9 and no evaluation dataset.
    policy = StagePolicy.objects.create(
        model=model, approval_required_for=["Production"], protected_aliases=["champion"]
    )
    PolicyGate.objects.create(policy=policy, kind=GateKind.METRIC, metric="f1", operator=">=", threshold=0.9)
    PolicyGate.objects.create(policy=policy, kind=GateKind.DATASET, context="evaluation")
    return {"model": model, "experiment": experiment, "run": run, "v1": v1, "v2": v2}


def unchanged(world) -> tuple:
    model = RegisteredModel.objects.get(pk=world["model"].pk)
    return (
        model.name,
        model.description,
        list(ModelAlias.objects.order_by("alias").values_list("alias", "version__version")),
        ModelVersion.objects.count(),
        Experiment.objects.get(pk=world["experiment"].pk).name,
    )


# --- The holes ------------------------------------------------------------------------------------------------------


def test_a_requester_cannot_rename_or_redescribe_someone_elses_model(world, rita):
    before = unchanged(world)
    caller = Caller(rita)
    assert caller.api("PATCH", "/models/fraud", {"name": "mine"}).status_code == 403
    assert caller.api("PATCH", "/models/fraud", {"description": "hijacked"}).status_code == 403
    renamed = caller.mlflow("POST", "registered-models/rename", {"name": "fraud", "new_name": "mine"})
    assert (renamed.status_code, renamed.json()["error_code"]) == (403, "PERMISSION_DENIED")
    updated = caller.mlflow("PATCH", "registered-models/update", {"name": "fraud", "description": "hijacked"})
    assert updated.status_code == 403
    assert unchanged(world) == before


def test_a_requester_cannot_point_champion_at_an_archived_version_that_fails_the_gates(world, rita):
    before = unchanged(world)
    caller = Caller(rita)
    response = caller.api("PUT", "/models/fraud/aliases/champion", {"version": 2})
    body = response.json()
    assert response.status_code == 403 and body["error"] == "approval_required"
    request = StageTransitionRequest.objects.get(pk=body["details"][0]["request_id"])
    assert (request.action, request.alias, request.version.version) == ("alias_set", "champion", 2)
    assert [g["passed"] for g in request.evidence["gates"]] == [False, False]  # frozen with the request
    mlflow = caller.mlflow("POST", "registered-models/alias", {"name": "fraud", "alias": "champion", "version": "2"})
    assert mlflow.status_code == 403 and f"#{request.pk} is already pending" in mlflow.json()["message"]
    assert unchanged(world) == before  # @champion still on v1


def test_deployments_pull_what_approval_allowed(world, rita, alice):
    """The alias request is decided as a Production move: gates at approval, an approver who is not the requester."""
    caller = Caller(rita)
    request_id = caller.api("PUT", "/models/fraud/aliases/champion", {"version": 2}).json()["details"][0]["request_id"]
    approver = person("paula", PRODUCTION_APPROVERS)
    with pytest.raises(GatesFailed):
        governance.transition_approve(request_id=request_id, by=approver)
    assert ModelAlias.objects.get(alias="champion").version.version == 1
    governance.transition_reject(request_id=request_id, by=approver, comment="v2 fails the gates")
    resolved = Caller(alice).api("GET", "/resolve?ref=fraud@champion").json()
    assert resolved["version"] == 1


def test_an_approver_moves_a_protected_alias_when_the_gates_pass(world, alice):
    approver = person("paula", PRODUCTION_APPROVERS)
    tracking.metrics_log(run=world["run"], by=alice, points=[("f1", 0.95, 1, None)])
    dataset = tracking.dataset_register(by=alice, name="eval", digest="e" * 64)
    tracking.run_input_add(run=world["run"], by=alice, dataset=dataset, context="evaluation")
    response = Caller(approver).api("PUT", "/models/fraud/aliases/champion", {"version": 2})
    assert response.status_code == 200 and ModelAlias.objects.get(alias="champion").version.version == 2
    event = AuditEvent.objects.filter(action="alias_set", alias="champion").latest("id")
    assert (event.actor_name, event.from_value, event.to_value) == ("paula", "1", "2")


def test_a_requester_cannot_register_into_someone_elses_model(world, rita):
    caller = Caller(rita)
    own = tracking.run_create(experiment=tracking.experiment_create(name="rita-exp", by=rita), by=rita)
    artifact_files.artifact_store(owner=own, path="model/m.pkl", stream=io.BytesIO(b"x"), by=rita)
    response = caller.api("POST", "/models/fraud/versions", {"run_id": own.pk, "artifact_path": "model"})
    assert response.status_code == 403
    mlflow = caller.mlflow("POST", "model-versions/create", {"name": "fraud", "source": f"runs:/{own.pk}/model"})
    assert mlflow.status_code == 403
    assert ModelVersion.objects.filter(model__name="fraud").count() == 2


def test_a_requester_cannot_register_her_own_model_from_someone_elses_run(world, rita):
    caller = Caller(rita)
    assert caller.api("POST", "/models", {"name": "ritas-model"}).status_code == 201
    run = world["run"].pk
    response = caller.api("POST", "/models/ritas-model/versions", {"run_id": run, "artifact_path": "model"})
    assert response.status_code == 403 and "experiment" in response.json()["message"]
    mlflow = caller.mlflow("POST", "model-versions/create", {"name": "ritas-model", "source": f"runs:/{run}/model"})
    assert mlflow.status_code == 403
    assert not ModelVersion.objects.filter(model__name="ritas-model").exists()


def test_a_requester_cannot_rename_someone_elses_experiment(world, rita):
    caller = Caller(rita)
    experiment_id = world["experiment"].pk
    assert caller.api("PATCH", f"/experiments/{experiment_id}", {"name": "mine"}).status_code == 403
    mlflow = caller.mlflow("POST", "experiments/update", {"experiment_id": str(experiment_id), "new_name": "mine"})
    assert mlflow.status_code == 403
    assert Experiment.objects.get(pk=experiment_id).name == "fraud-training"


def test_deleting_an_alias_through_the_api_records_who_did_it(world, alice):
    Caller(alice).api("PUT", "/models/fraud/aliases/candidate", {"version": 2})
    assert Caller(alice).api("DELETE", "/models/fraud/aliases/candidate").status_code == 204
    event = AuditEvent.objects.get(action="alias_deleted", alias="candidate")
    assert (event.actor_name, event.actor_id, event.from_value, event.model_name) == ("alice", alice.pk, "2", "fraud")


def test_deleting_a_model_keeps_its_audit_trail(world, alice, root):
    governance.stage_change_direct(version=world["v1"], to_stage=Stage.ARCHIVED, by=root)
    before = AuditEvent.objects.filter(model_id=world["model"].pk).count()
    assert Caller(alice).api("DELETE", "/models/fraud").status_code == 204
    assert not RegisteredModel.objects.filter(name="fraud").exists()
    events = AuditEvent.objects.filter(model_id=world["model"].pk)
    assert events.count() == before + 1
    deleted = events.get(action="model_deleted")
    assert (deleted.actor_name, deleted.model_name, deleted.data["versions"]) == ("alice", "fraud", 2)
    # Still answered, by name, for those who may read everything.
    found = Caller(root).api("GET", "/audit?model=fraud&limit=1000").json()["items"]
    assert len(found) == before + 1 and found[0]["action"] == "model_deleted"
    assert Caller(alice).api("GET", "/audit?model=fraud").json()["items"] == []  # not an auditor: gone with it


def test_deleting_the_user_who_acted_keeps_the_events_readable(world, alice, root):
    catalog.model_update(model=world["model"], by=alice, description="v2")
    alice.delete()
    event = AuditEvent.objects.get(action="model_updated")
    assert (event.actor_name, event.model_name) == ("alice", "fraud")


def test_audit_events_cannot_be_changed_or_removed(world):
    event = AuditEvent.objects.first()
    with pytest.raises(TypeError):
        event.comment = "rewritten"
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(comment="rewritten")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()


def test_the_database_refuses_to_rewrite_audit_events(world):
    """Below the ORM too: a trigger refuses UPDATE (and DELETE on PostgreSQL)."""
    from django.db import DatabaseError, connection, transaction

    table = AuditEvent._meta.db_table
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{table}" SET "comment" = %s', ["rewritten"])
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'DELETE FROM "{table}"')
    assert not AuditEvent.objects.filter(comment="rewritten").exists()


def test_admin_edits_reach_the_audit_log(world, root, client):
    client.force_login(root)
    model = world["model"]
    response = client.post(
        f"/admin/catalog/registeredmodel/{model.pk}/change/",
        {
            "name": "fraud",
            "description": "Edited in the admin.",
            "owner": str(model.owner_id),
            "default_level": "",
            "tags": "{}",
            "grants-TOTAL_FORMS": "0",
            "grants-INITIAL_FORMS": "0",
            "grants-MIN_NUM_FORMS": "0",
            "grants-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert AuditEvent.objects.get(action="model_updated").actor_name == "root"
    alias = client.post(
        "/admin/catalog/modelalias/add/", {"model": str(model.pk), "alias": "candidate", "version_number": "2"}
    )
    assert alias.status_code == 302
    event = AuditEvent.objects.get(action="alias_set", alias="candidate")
    assert (event.actor_name, event.to_value) == ("root", "2")


# --- Rollback with two holders --------------------------------------------------------------------------------------


def test_rollback_with_two_holders_restores_the_one_before_the_current(alice, root):
    model = catalog.model_create(name="churn", by=alice)
    experiment = tracking.experiment_create(name="churn-exp", by=alice)
    run = tracking.run_create(experiment=experiment, by=alice)
    v1, v2, v3 = (catalog.version_create(model=model, by=alice, run=run) for _ in range(3))
    for version in (v1, v2, v3):  # approval leaves earlier holders in place by default
        governance.stage_change_direct(version=version, to_stage=Stage.PRODUCTION, by=root)
        governance.alias_set(model=model, alias="champion", version=version, by=root)
    StagePolicy.objects.create(
        model=model, approval_required_for=["Production"], protected_aliases=["champion", "live"]
    )
    governance.alias_set(model=model, alias="live", version=v3, by=root)
    governance.alias_set(model=model, alias="candidate", version=v3, by=root)  # not protected: stays
    plan = rollback_plan(model)
    assert (plan.current.version, plan.previous.version, plan.aliases) == (3, 2, ["champion", "live"])

    restored = governance.production_rollback(model=model, by=root, comment="latency")
    stages = dict(ModelVersion.objects.filter(model=model).values_list("version", "stage"))
    aliases = dict(ModelAlias.objects.filter(model=model).values_list("alias", "version__version"))
    assert restored.version == 2
    assert stages == {1: "Production", 2: "Production", 3: "Archived"}
    assert aliases == {"champion": 2, "live": 2, "candidate": 3}
    event = AuditEvent.objects.get(action="rollback")
    assert (event.from_value, event.to_value, event.data["aliases"]) == ("3", "2", ["champion", "live"])
    # Once more: v2 goes, v1 (which held Production before v2 entered it) stays.
    governance.production_rollback(model=model, by=root)
    stages = dict(ModelVersion.objects.filter(model=model).values_list("version", "stage"))
    assert stages == {1: "Production", 2: "Archived", 3: "Archived"}
    assert ModelAlias.objects.get(model=model, alias="champion").version.version == 1


def test_rollback_back_to_an_archived_version(alice, root):
    model = catalog.model_create(name="churn", by=alice)
    v1, v2 = (catalog.version_create(model=model, by=alice) for _ in range(2))
    governance.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=root)
    governance.stage_change_direct(version=v2, to_stage=Stage.PRODUCTION, by=root, archive_existing=True)
    governance.production_rollback(model=model, by=root)
    stages = dict(ModelVersion.objects.filter(model=model).values_list("version", "stage"))
    assert stages == {1: "Production", 2: "Archived"}


# --- Managing access ------------------------------------------------------------------------------------------------


def test_the_owner_shares_a_model_and_the_grantee_gets_exactly_that(world, alice):
    bob = person("bob")
    owner = Caller(alice)
    assert Caller(bob).api("PATCH", "/models/fraud", {"description": "x"}).status_code == 403
    granted = owner.api("PUT", "/models/fraud/access/users/bob", {"level": "EDIT", "approve_stages": ["Staging"]})
    assert granted.status_code == 200 and granted.json()["level"] == "EDIT"
    assert Caller(bob).api("PATCH", "/models/fraud", {"description": "by bob"}).status_code == 200
    assert Caller(bob).api("PATCH", "/models/fraud", {"name": "bobs"}).status_code == 403  # renaming is MANAGE
    access = Caller(bob).api("GET", "/models/fraud/access").json()
    assert access["owner"] == "alice" and access["your_level"] == "EDIT"
    assert access["grants"][0] | {"granted_at": None} == {
        "user": "bob",
        "group": None,
        "level": "EDIT",
        "request_stages": [],
        "approve_stages": ["Staging"],
        "granted_by": "alice",
        "granted_at": None,
    }
    assert owner.api("DELETE", "/models/fraud/access/users/bob").status_code == 204
    assert Caller(bob).api("PATCH", "/models/fraud", {"description": "again"}).status_code == 403
    events = AuditEvent.objects.filter(model_id=world["model"].pk, subject="user:bob").order_by("id")
    actions = list(events.values_list("action"))
    assert actions == [("access_granted",), ("access_revoked",)]


def test_a_team_gets_access_through_its_group(world, alice):
    team, bob = Group.objects.create(name="risk-team"), person("bob")
    bob.groups.add(team)
    assert Caller(alice).api("PUT", "/models/fraud/access/groups/risk-team", {"level": "EDIT"}).status_code == 200
    assert Caller(bob).api("PATCH", "/models/fraud", {"description": "team edit"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/models/fraud/access/users/nobody", {"level": "READ"}, 404, "No user named 'nobody'"),
        ("/models/fraud/access/groups/nobody", {"level": "READ"}, 404, "No group named 'nobody'"),
        ("/models/fraud/access/users/bob", {"level": "OWNER"}, 422, ""),
        ("/models/fraud/access/users/bob", {"level": "READ", "approve_stages": ["Shipped"]}, 422, ""),
    ],
)
def test_bad_grants_say_what_to_fix(world, alice, path, body, status, says):
    person("bob")
    response = Caller(alice).api("PUT", path, body)
    assert response.status_code == status and says in response.json()["message"] + str(response.json()["details"])
    assert not ModelGrant.objects.filter(model=world["model"]).exists()


def test_nobody_demotes_themselves_or_leaves_a_model_without_a_manager(world, alice, root):
    bob = person("bob")
    catalog.model_grant_set(model=world["model"], by=alice, user=bob, level="MANAGE")
    with pytest.raises(Conflict, match="take MANAGE on model 'fraud' away from you"):
        catalog.model_grant_set(model=world["model"], by=bob, user=bob, level="READ")
    with pytest.raises(Conflict, match="away from you"):
        catalog.model_grant_revoke(model=world["model"], by=bob, user=bob)
    # The owner's implicit MANAGE stays; another manager may demote bob.
    catalog.model_grant_set(model=world["model"], by=alice, user=bob, level="READ")
    # Without an owner, the last MANAGE grant cannot go.
    RegisteredModel.objects.filter(pk=world["model"].pk).update(owner=None)
    model = RegisteredModel.objects.get(pk=world["model"].pk)
    catalog.model_grant_set(model=model, by=root, user=bob, level="MANAGE")
    with pytest.raises(Conflict, match="nobody who may manage"):
        catalog.model_grant_revoke(model=model, by=root, user=bob)
    assert ModelGrant.objects.get(model=model, user=bob).level == 3
    response = Caller(bob).api("PUT", "/models/fraud/access/users/bob", {"level": "EDIT"})
    assert response.status_code == 409 and "Ask another manager" in response.json()["message"]


def test_handing_a_model_over_keeps_the_old_owner_a_manager(world, alice):
    person("bob")
    response = Caller(alice).api("PATCH", "/models/fraud/access", {"owner": "bob"})
    assert response.status_code == 200 and response.json()["owner"] == "bob"
    assert ModelGrant.objects.get(model=world["model"], user=alice).level == 3
    assert AuditEvent.objects.get(action="owner_changed").to_value == "bob"


def test_only_managers_change_access_and_readers_see_it(world, rita):
    caller = Caller(rita)
    assert caller.api("GET", "/models/fraud/access").status_code == 200
    assert caller.api("PUT", "/models/fraud/access/users/rita", {"level": "MANAGE"}).status_code == 403
    assert caller.api("PATCH", "/models/fraud/access", {"default_level": "EDIT"}).status_code == 403
    assert not ModelGrant.objects.exists()


# --- Private registries and private models --------------------------------------------------------------------------


def test_a_private_registry_shows_nothing_without_a_grant(world, settings):
    settings.REGISTRY_DEFAULT_PERMISSION = 0
    otto = Caller(person("otto"))
    assert otto.api("GET", "/models").json()["items"] == []
    assert otto.api("GET", "/models/fraud").status_code == 404  # not 403: the name does not leak
    assert otto.api("GET", "/resolve?ref=fraud@champion").json()["message"] == "No model named 'fraud'."
    assert otto.api("GET", f"/runs/{world['run'].pk}").status_code == 404
    assert otto.mlflow("GET", "registered-models/search").json() == {"registered_models": []}
    assert otto.mlflow("GET", "registered-models/get", {"name": "fraud"}).status_code == 404
    client = Client()
    client.force_login(otto.user)
    assert client.get("/models/fraud/").status_code == 404
    assert "fraud" not in client.get("/models/").content.decode()


def test_a_team_makes_one_model_private_in_a_readable_registry(world, alice):
    caller = Caller(alice)
    assert caller.api("PATCH", "/models/fraud/access", {"default_level": "NONE"}).status_code == 200
    team = Group.objects.create(name="risk-team")
    assert caller.api("PUT", "/models/fraud/access/groups/risk-team", {"level": "READ"}).status_code == 200
    outsider, member = person("otto"), person("mia")
    member.groups.add(team)
    assert Caller(outsider).api("GET", "/models/fraud").status_code == 404
    assert Caller(member).api("GET", "/models/fraud").status_code == 200
    assert Caller(outsider).api("GET", "/experiments/fraud-training").status_code == 200  # only the model is private


def test_the_default_experiment_takes_everyones_runs(db, settings):
    settings.REGISTRY_DEFAULT_PERMISSION = 0
    caller = Caller(person("otto"))
    response = caller.api("POST", "/runs", {"name": "quick try"})
    assert response.status_code == 201 and response.json()["experiment"] == "Default"


# --- Services refuse as every surface does --------------------------------------------------------------------------


def test_services_raise_the_shared_refusals(world, rita, alice):
    model, run = world["model"], world["run"]
    with pytest.raises(Forbidden):
        catalog.model_rename(model=model, new_name="x", by=rita)
    with pytest.raises(Forbidden):
        tracking.log_batch(run=run, by=rita, params={"a": 1}, points=[], tags={})
    outsider = person("otto")
    RegisteredModel.objects.filter(pk=model.pk).update(default_level=0)
    with pytest.raises(NotFound):
        catalog.model_update(model=RegisteredModel.objects.get(pk=model.pk), by=outsider, description="x")
    with pytest.raises(Invalid):
        catalog.model_grant_set(model=model, by=alice, user=rita, level="NONE")
    assert not Run.objects.filter(params__key="a").exists()
    assert not ExperimentGrant.objects.exists()


# --- A permission check never costs a query per row -----------------------------------------------------------------


def _models_with_grants(count: int, start: int, alice, reader, team) -> None:
    for n in range(start, start + count):
        model = catalog.model_create(name=f"g-{n:03d}", by=alice, tags={"team": "x"})
        catalog.model_grant_set(model=model, by=alice, user=reader, level="READ")
        catalog.model_grant_set(model=model, by=alice, group=team, level="EDIT", approve_stages=["Staging"])
        experiment = tracking.experiment_create(name=f"g-{n:03d}", by=alice)
        tracking.experiment_grant_set(experiment=experiment, by=alice, user=reader, level="READ")
        if n % 2:  # every other one private to its grantees
            catalog.model_default_level_set(model=model, by=alice, level="NONE")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/models?limit=1000",
        "/api/v1/experiments?limit=1000",
        "/api/2.0/mlflow/registered-models/search?max_results=1000",
        "/api/2.0/mlflow/experiments/search?max_results=1000",
        "/api/v1/transition-requests?status=all",
        "/api/v1/audit?limit=1000",
    ],
)
def test_lists_cost_the_same_at_1_and_50_rows_with_grants(alice, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    reader, team = person("rhea"), Group.objects.create(name="team")
    reader.groups.add(team)
    caller = Caller(reader)
    caller.api("GET", "/models")  # the token's first use stamps it

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = caller.client.get(url)
        assert response.status_code == 200
        return len(queries)

    _models_with_grants(1, 0, alice, reader, team)
    one = count()
    _models_with_grants(49, 1, alice, reader, team)
    assert count() == one


@pytest.mark.parametrize("url", ["/models/", "/experiments/", "/approvals/", "/audit/", "/datasets/"])
def test_dashboard_lists_cost_the_same_at_1_and_50_rows_with_grants(alice, url, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    reader, team = person("rhea"), Group.objects.create(name="team")
    reader.groups.add(team)
    client.force_login(reader)

    def count() -> int:
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        return len(queries)

    _models_with_grants(1, 0, alice, reader, team)
    one = count()
    _models_with_grants(49, 1, alice, reader, team)
    assert count() == one
