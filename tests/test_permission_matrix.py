"""Who may do what, route by route: every route of the dashboard, /api/v1 and the MLflow API, called by every persona.

The routes are read from the URL resolver, ninja's routers and the MLflow route tables; each needs an entry in CASES
saying how to call it and who may (a route added later without one fails `test_every_route_has_a_case`). Each case
runs once per persona, in a transaction rolled back afterwards, on a world where the registry's default level is NONE:

    owner              owns model `m` and experiment `e` (and the run, the versions, the pending request)
    editor             EDIT grant on both
    reader             READ grant on both
    outsider           nothing
    requester          READ on both and the registry-wide requester role
    model_approver     READ on both and a grant on `m` that may approve Production
    registry_approver  READ on both and the registry-wide Production approver role
    superuser          holds everything
    read_only          the owner, through a read-only token (API and MLflow only)

A persona that may not do something gets 403 or 404 (or, on the dashboard's forms, an error message) and the
database is left exactly as it was; a persona that may gets no such refusal.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field

import pytest
from django.contrib.messages import get_messages
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver

from registry.accounts.models import ApiToken
from registry.audit.models import AuditEvent, Webhook
from registry.catalog import artifact_files
from registry.catalog import services as catalog
from registry.catalog.models import ArtifactFile, ModelAlias, ModelGrant, ModelVersion, RegisteredModel, Stage
from registry.governance import services as governance
from registry.governance.models import StageTransitionRequest
from registry.mlflow_compat import views as mlflow_views
from registry.mlflow_compat.models import LoggedModel
from registry.tracking import services as tracking
from registry.tracking.models import Dataset, Experiment, ExperimentGrant, MetricSeries, Param, Run, RunInput
from registry.web import urls as web_urls
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, person

pytestmark = pytest.mark.django_db

PERSONAS = (
    "owner",
    "editor",
    "reader",
    "outsider",
    "requester",
    "model_approver",
    "registry_approver",
    "superuser",
    "read_only",
)
EVERYONE = frozenset(PERSONAS)
READERS = EVERYONE - {"outsider"}
EDITORS = frozenset({"owner", "editor", "superuser", "read_only"})
MANAGERS = frozenset({"owner", "superuser", "read_only"})
REQUESTERS_OF_M = frozenset({"owner", "requester", "registry_approver", "superuser", "read_only"})
APPROVERS_OF_M = frozenset({"model_approver", "registry_approver", "superuser"})
# May move a version of `m` to Staging now (no approval needed there): requesters, and approvers of Staging.
STAGING_MOVERS = REQUESTERS_OF_M
SUPERUSERS = frozenset({"superuser"})


# --- The world ------------------------------------------------------------------------------------------------------


@dataclass
class World:
    users: dict
    tokens: dict
    values: dict = field(default_factory=dict)


@pytest.fixture
def world(settings, tmp_path) -> World:
    settings.REGISTRY_DEFAULT_PERMISSION = 0  # a private registry: nothing is visible without a grant
    root = person("root", superuser=True)
    users = {
        "owner": person("olive"),
        "editor": person("eddie"),
        "reader": person("rhea"),
        "outsider": person("otto"),
        "requester": person("rita", REQUESTERS),
        "model_approver": person("mona"),
        "registry_approver": person("paula", PRODUCTION_APPROVERS),
        "superuser": root,
    }
    owner = users["owner"]
    experiment = tracking.experiment_create(name="e", by=owner)
    run = tracking.run_create(experiment=experiment, by=owner, name="r")
    tracking.log_batch(run=run, by=owner, params={"lr": "0.1"}, points=[("f1", 0.9, 0, None)] * 1, tags={"t": "1"})
    tracking.metrics_log(run=run, by=owner, points=[("loss", 1.0, 1, None), ("loss", 0.5, 2, None)])
    dataset = tracking.dataset_register(by=owner, name="d", digest="a" * 64)
    tracking.run_input_add(run=run, by=owner, dataset=dataset, context="training")
    dataset2 = tracking.dataset_register(by=owner, name="d", digest="c" * 64)
    tracking.run_input_add(run=run, by=owner, dataset=dataset2, context="evaluation")
    tracking.experiment_update(experiment=experiment, by=owner, tags={"k": "v"})
    artifact_files.artifact_store(owner=run, path="model/model.pkl", stream=io.BytesIO(b"weights"), by=owner)
    artifact_files.artifact_store(owner=run, path="notes.txt", stream=io.BytesIO(b"notes"), by=owner)
    model = catalog.model_create(name="m", by=owner, tags={"k": "v"})
    v1, v2, v3 = (
        catalog.version_create(model=model, by=owner, run=run, artifact_path="model", tags={"k": "v"}) for _ in range(3)
    )
    governance.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=root)
    governance.stage_change_direct(version=v3, to_stage=Stage.PRODUCTION, by=root, archive_existing=True)
    governance.stage_change_direct(version=v2, to_stage=Stage.STAGING, by=root)
    governance.alias_set(model=model, alias="champion", version=v3, by=root)
    governance.alias_set(model=model, alias="candidate", version=v2, by=owner)
    pending = governance.transition_request(version=v2, to_stage=Stage.PRODUCTION, by=owner, comment="please")
    logged = LoggedModel.objects.create(experiment=experiment, run=run, name="lm", creator=owner, tags={"k": "v"})
    hook = Webhook.objects.create(name="h", url="https://hooks.example.com/", events=["version.created"], secret="s")
    requesters_group = users["requester"].groups.get()
    catalog.model_grant_set(model=model, by=owner, group=requesters_group, level="READ")
    tracking.experiment_grant_set(experiment=experiment, by=owner, group=requesters_group, level="READ")
    for name in ("editor", "reader", "requester", "model_approver", "registry_approver"):
        level = "EDIT" if name == "editor" else "READ"
        rights = {"approve_stages": ["Production"]} if name == "model_approver" else {}
        catalog.model_grant_set(model=model, by=owner, user=users[name], level=level, **rights)
        tracking.experiment_grant_set(experiment=experiment, by=owner, user=users[name], level=level)
    tokens = {name: ApiToken.issue(user=user, name="t")[1] for name, user in users.items()}
    read_only, tokens["read_only"] = ApiToken.issue(user=owner, name="ro", scope=ApiToken.Scope.READ)
    users["read_only"] = owner
    values = {
        "model": "m",
        "experiment_id": experiment.pk,
        "run": run.pk,
        "dataset": dataset.pk,
        "dataset2": dataset2.pk,
        "owner_token": read_only.pk,
        "request": pending.pk,
        "logged": logged.pk,
        "webhook": hook.pk,
        "owner_name": owner.username,
        "reader_name": users["reader"].username,
        "outsider_name": users["outsider"].username,
    }
    return World(users=users, tokens=tokens, values=values)


def snapshot() -> str:
    """Everything a refused request must leave alone, as one digest."""
    rows = [
        list(
            RegisteredModel.objects.order_by("pk").values_list("name", "description", "tags", "owner", "default_level")
        ),
        list(ModelVersion.objects.order_by("pk").values_list("version", "stage", "description", "tags")),
        list(ModelAlias.objects.order_by("pk").values_list("alias", "version")),
        list(Webhook.objects.order_by("pk").values_list("name", "url", "events", "active", "secret")),
        list(ModelGrant.objects.order_by("pk").values_list("model", "user", "group", "level", "approve_stages")),
        list(ExperimentGrant.objects.order_by("pk").values_list("experiment", "user", "group", "level")),
        list(Experiment.objects.order_by("pk").values_list("name", "description", "tags", "deleted_at", "owner")),
        list(Run.objects.order_by("pk").values_list("pk", "name", "status", "tags", "deleted_at")),
        list(Param.objects.order_by("pk").values_list("key", "value")),
        list(MetricSeries.objects.order_by("pk").values_list("key", "count")),
        list(RunInput.objects.order_by("pk").values_list("run", "dataset", "context")),
        list(Dataset.objects.order_by("pk").values_list("name", "digest")),
        list(ArtifactFile.objects.order_by("pk").values_list("path", "sha256")),
        list(StageTransitionRequest.objects.order_by("pk").values_list("status", "action", "alias")),
        list(LoggedModel.objects.order_by("pk").values_list("name", "status", "tags", "params", "deleted_at")),
        AuditEvent.objects.count(),
        list(ApiToken.objects.order_by("pk").values_list("revoked_at")),
    ]
    return hashlib.sha256(json.dumps(rows, default=str, sort_keys=True).encode()).hexdigest()


# --- The cases ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """How to call a route, and who may. `hides`: for lists, what must not appear in the answer of a persona who may
    not read it (the list itself answers everyone)."""

    method: str
    url: str
    allowed: frozenset
    body: object = None
    hides: str = ""
    form: bool = False  # a dashboard form: a refusal may be an error message on the page it redirects to
    write: bool | None = None  # whether a read-only token is refused (default: any method but GET)
    also_ok: tuple = ()  # statuses besides 2xx and redirects that a persona who may call it can get

    @property
    def writes(self) -> bool:
        return self.method != "GET" if self.write is None else self.write


def case(method: str, url: str, allowed, body=None, **kwargs) -> Case:
    return Case(method, url, frozenset(allowed), body, **kwargs)


M, V, R, E = "/api/v1/models/{model}", "/api/v1/models/{model}/versions", "/api/v1/runs/{run}", "/api/v1/experiments"
MF = "/api/2.0/mlflow"

API_CASES = {
    "POST /experiments": case("POST", E, EVERYONE, {"name": "new-e"}),
    "GET /experiments": case("GET", E, READERS, hides='"e"'),
    "GET /experiments/{ref}": case("GET", E + "/{experiment_id}", READERS),
    "PATCH /experiments/{ref}": case("PATCH", E + "/{experiment_id}", EDITORS, {"description": "changed"}),
    "POST /runs": case("POST", "/api/v1/runs", EDITORS, {"experiment_id": "{experiment_id}", "name": "x"}),
    "GET /runs": case("GET", "/api/v1/runs", READERS, hides="{run}"),
    "GET /runs/{run_id}": case("GET", R, READERS),
    "PATCH /runs/{run_id}": case("PATCH", R, MANAGERS, {"name": "renamed"}),
    "POST /runs/{run_id}/log-batch": case("POST", R + "/log-batch", MANAGERS, {"params": {"new": "1"}}),
    "GET /runs/{run_id}/metrics/history": case("GET", R + "/metrics/history?key=loss", READERS),
    "GET /runs/{run_id}/metrics/series": case("GET", R + "/metrics/series?key=loss", READERS),
    "POST /runs/{run_id}/inputs": case("POST", R + "/inputs", MANAGERS, {"dataset_id": "{dataset}", "context": "eval"}),
    "POST /datasets": case("POST", "/api/v1/datasets", EVERYONE, {"name": "d2", "digest": "b" * 64}),
    "GET /datasets": case("GET", "/api/v1/datasets", READERS, hides='"d"'),
    "GET /datasets/{dataset_id}": case("GET", "/api/v1/datasets/{dataset}", READERS),
    "PUT /runs/{run_id}/artifacts/{path:path}": case("PUT", R + "/artifacts/extra.bin", MANAGERS, b"bytes"),
    "GET /runs/{run_id}/artifacts/{path:path}": case("GET", R + "/artifacts/notes.txt", READERS),
    "DELETE /runs/{run_id}/artifacts/{path:path}": case("DELETE", R + "/artifacts/notes.txt", MANAGERS),
    # Direct transfers need S3 (tests/api/test_direct_transfers.py): here, after the permission check, a 409.
    "POST /runs/{run_id}/multipart-uploads": case(
        "POST", R + "/multipart-uploads", MANAGERS, {"path": "w.bin", "size": 10}, also_ok=(409,)
    ),
    "POST /runs/{run_id}/multipart-uploads/complete": case(
        "POST",
        R + "/multipart-uploads/complete",
        MANAGERS,
        {"path": "w.bin", "upload_id": "u", "parts": [{"part_number": 1, "etag": "e"}]},
        also_ok=(409,),
    ),
    "POST /runs/{run_id}/multipart-uploads/abort": case(
        "POST", R + "/multipart-uploads/abort", MANAGERS, {"path": "w.bin", "upload_id": "u"}, also_ok=(409,)
    ),
    "GET /runs/{run_id}/artifacts": case("GET", R + "/artifacts", READERS),
    "GET /models/{name}/versions/{version}/artifacts": case("GET", V + "/1/artifacts", READERS),
    "GET /models/{name}/versions/{version}/artifacts/{path:path}": case("GET", V + "/1/artifacts/model.pkl", READERS),
    "POST /models": case("POST", "/api/v1/models", EVERYONE, {"name": "new-m"}),
    "GET /models": case("GET", "/api/v1/models", READERS, hides='"m"'),
    "GET /models/{name}": case("GET", M, READERS),
    "PATCH /models/{name}": case("PATCH", M, EDITORS, {"description": "changed"}),
    "DELETE /models/{name}": case("DELETE", M, MANAGERS, also_ok=(409,)),  # v3 is in Production
    "POST /models/{name}/versions": case("POST", V, EDITORS, {"run_id": "{run}", "artifact_path": "model"}),
    "GET /models/{name}/versions": case("GET", V, READERS),
    "GET /models/{name}/versions/{version}": case("GET", V + "/1", READERS),
    "POST /models/{name}/versions/{version}/rescan": case("POST", V + "/1/rescan", EDITORS),
    "PATCH /models/{name}/versions/{version}": case("PATCH", V + "/1", EDITORS, {"description": "changed"}),
    "GET /models/{name}/card": case("GET", M + "/card", READERS),
    "PUT /models/{name}/card": case("PUT", M + "/card", EDITORS, {"sections": {"intended_use": "x"}}),
    "GET /models/{name}/versions/{version}/card": case("GET", V + "/1/card", READERS),
    "PUT /models/{name}/versions/{version}/card": case("PUT", V + "/1/card", EDITORS, {"sections": {"owners": "x"}}),
    "DELETE /models/{name}/versions/{version}": case("DELETE", V + "/2", MANAGERS),
    "GET /models/{name}/aliases": case("GET", M + "/aliases", READERS),
    "PUT /models/{name}/aliases/{alias}": case("PUT", M + "/aliases/candidate", EDITORS, {"version": 1}),
    "DELETE /models/{name}/aliases/{alias}": case("DELETE", M + "/aliases/candidate", EDITORS),
    "GET /resolve": case("GET", "/api/v1/resolve?ref=m@champion", READERS),
    "POST /models/{name}/versions/{version}/transition-requests": case(
        "POST", V + "/1/transition-requests", REQUESTERS_OF_M, {"to_stage": "Staging"}
    ),
    "POST /models/{name}/alias-requests": case(
        "POST", M + "/alias-requests", REQUESTERS_OF_M | EDITORS, {"alias": "champion", "version": 1}
    ),
    "GET /transition-requests": case("GET", "/api/v1/transition-requests", READERS, hides='"m"'),
    "GET /transition-requests/{request_id}": case("GET", "/api/v1/transition-requests/{request}", READERS),
    "POST /transition-requests/{request_id}/approve": case(
        "POST", "/api/v1/transition-requests/{request}/approve", APPROVERS_OF_M, {}
    ),
    "POST /transition-requests/{request_id}/reject": case(
        "POST", "/api/v1/transition-requests/{request}/reject", APPROVERS_OF_M, {}
    ),
    "POST /transition-requests/{request_id}/cancel": case(
        "POST", "/api/v1/transition-requests/{request}/cancel", MANAGERS, {}
    ),
    "POST /models/{name}/versions/{version}/stage": case(
        "POST", V + "/1/stage", STAGING_MOVERS, {"to_stage": "Staging"}
    ),
    "GET /models/{name}/timeline": case("GET", M + "/timeline", READERS),
    "GET /models/{name}/stage-at": case("GET", M + "/stage-at?at=2100-01-01T00:00:00", READERS),
    "POST /models/{name}/rollback": case("POST", M + "/rollback", APPROVERS_OF_M, {}),
    "GET /models/{name}/audit": case("GET", M + "/audit", READERS),
    "GET /audit": case("GET", "/api/v1/audit", READERS, hides='"model": "m"'),
    "GET /models/{name}/access": case("GET", M + "/access", READERS),
    "PATCH /models/{name}/access": case("PATCH", M + "/access", MANAGERS, {"default_level": "READ"}),
    "PUT /models/{name}/access/users/{username}": case(
        "PUT", M + "/access/users/{outsider_name}", MANAGERS, {"level": "READ"}
    ),
    "DELETE /models/{name}/access/users/{username}": case("DELETE", M + "/access/users/{reader_name}", MANAGERS),
    "PUT /models/{name}/access/groups/{group}": case(
        "PUT", M + "/access/groups/Model%20requesters", MANAGERS, {"level": "READ"}
    ),
    "DELETE /models/{name}/access/groups/{group}": case("DELETE", M + "/access/groups/Model%20requesters", MANAGERS),
    "GET /experiments/{ref}/access": case("GET", E + "/{experiment_id}/access", READERS),
    "PATCH /experiments/{ref}/access": case(
        "PATCH", E + "/{experiment_id}/access", MANAGERS, {"default_level": "READ"}
    ),
    "PUT /experiments/{ref}/access/users/{username}": case(
        "PUT", E + "/{experiment_id}/access/users/{outsider_name}", MANAGERS, {"level": "READ"}
    ),
    "DELETE /experiments/{ref}/access/users/{username}": case(
        "DELETE", E + "/{experiment_id}/access/users/{reader_name}", MANAGERS
    ),
    "PUT /experiments/{ref}/access/groups/{group}": case(
        "PUT", E + "/{experiment_id}/access/groups/Model%20requesters", MANAGERS, {"level": "READ"}
    ),
    "DELETE /experiments/{ref}/access/groups/{group}": case(
        "DELETE", E + "/{experiment_id}/access/groups/Model%20requesters", MANAGERS
    ),
}

MLFLOW_CASES = {
    # Experiments
    "GET experiments/get-by-name": case("GET", MF + "/experiments/get-by-name?experiment_name=e", READERS),
    "POST experiments/create": case("POST", MF + "/experiments/create", EVERYONE, {"name": "new-e"}),
    "POST experiments/search": case("POST", MF + "/experiments/search", READERS, {}, hides='"name":"e"', write=False),
    "GET experiments/search": case("GET", MF + "/experiments/search", READERS, hides='"name":"e"'),
    "GET experiments/get": case("GET", MF + "/experiments/get?experiment_id={experiment_id}", READERS),
    "POST experiments/delete": case("POST", MF + "/experiments/delete", MANAGERS, {"experiment_id": "{experiment_id}"}),
    "POST experiments/restore": case(
        "POST", MF + "/experiments/restore", MANAGERS, {"experiment_id": "{experiment_id}"}
    ),
    "POST experiments/update": case(
        "POST", MF + "/experiments/update", MANAGERS, {"experiment_id": "{experiment_id}", "new_name": "e2"}
    ),
    "POST experiments/set-experiment-tag": case(
        "POST",
        MF + "/experiments/set-experiment-tag",
        EDITORS,
        {"experiment_id": "{experiment_id}", "key": "k", "value": "v"},
    ),
    "POST experiments/delete-experiment-tag": case(
        "POST", MF + "/experiments/delete-experiment-tag", EDITORS, {"experiment_id": "{experiment_id}", "key": "k"}
    ),
    # Runs
    "POST runs/create": case("POST", MF + "/runs/create", EDITORS, {"experiment_id": "{experiment_id}"}),
    "POST runs/update": case("POST", MF + "/runs/update", MANAGERS, {"run_id": "{run}", "status": "FINISHED"}),
    "POST runs/delete": case("POST", MF + "/runs/delete", MANAGERS, {"run_id": "{run}"}),
    "POST runs/restore": case("POST", MF + "/runs/restore", MANAGERS, {"run_id": "{run}"}),
    "GET runs/get": case("GET", MF + "/runs/get?run_id={run}", READERS),
    "POST runs/search": case(
        "POST", MF + "/runs/search", READERS, {"experiment_ids": ["{experiment_id}"]}, hides="{run}", write=False
    ),
    "POST runs/log-metric": case(
        "POST", MF + "/runs/log-metric", MANAGERS, {"run_id": "{run}", "key": "m", "value": 1, "timestamp": 1}
    ),
    "POST runs/log-parameter": case(
        "POST", MF + "/runs/log-parameter", MANAGERS, {"run_id": "{run}", "key": "p", "value": "1"}
    ),
    "POST runs/set-tag": case("POST", MF + "/runs/set-tag", MANAGERS, {"run_id": "{run}", "key": "k", "value": "v"}),
    "POST runs/delete-tag": case("POST", MF + "/runs/delete-tag", MANAGERS, {"run_id": "{run}", "key": "t"}),
    "POST runs/log-batch": case(
        "POST", MF + "/runs/log-batch", MANAGERS, {"run_id": "{run}", "params": [{"key": "q", "value": "1"}]}
    ),
    "POST runs/log-inputs": case(
        "POST",
        MF + "/runs/log-inputs",
        MANAGERS,
        {"run_id": "{run}", "datasets": [{"dataset": {"name": "x", "digest": "1", "source_type": "t", "source": "s"}}]},
    ),
    "POST runs/outputs": case(
        "POST", MF + "/runs/outputs", MANAGERS, {"run_id": "{run}", "models": [{"model_id": "{logged}"}]}
    ),
    "POST runs/log-model": case("POST", MF + "/runs/log-model", MANAGERS, {"run_id": "{run}", "model_json": "{}"}),
    "GET metrics/get-history": case("GET", MF + "/metrics/get-history?run_id={run}&metric_key=loss", READERS),
    "GET artifacts/list": case("GET", MF + "/artifacts/list?run_id={run}", READERS),
    # Webhooks: administrators only
    "POST webhooks": case(
        "POST",
        MF + "/webhooks",
        SUPERUSERS,
        {
            "name": "w",
            "url": "https://hooks.example.com/w",
            "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
        },
    ),
    "GET webhooks": case("GET", MF + "/webhooks", SUPERUSERS),
    "GET webhooks/{webhook_id}": case("GET", MF + "/webhooks/{webhook}", SUPERUSERS),
    "PATCH webhooks/{webhook_id}": case("PATCH", MF + "/webhooks/{webhook}", SUPERUSERS, {"status": "DISABLED"}),
    "DELETE webhooks/{webhook_id}": case("DELETE", MF + "/webhooks/{webhook}", SUPERUSERS),
    "POST webhooks/{webhook_id}/test": case("POST", MF + "/webhooks/{webhook}/test", SUPERUSERS, {}, also_ok=(400,)),
    # Logged models
    "POST logged-models": case(
        "POST", MF + "/logged-models", EDITORS, {"experiment_id": "{experiment_id}", "name": "x"}
    ),
    "POST logged-models/search": case(
        "POST",
        MF + "/logged-models/search",
        READERS,
        {"experiment_ids": ["{experiment_id}"]},
        hides="{logged}",
        write=False,
    ),
    "GET logged-models/{model_id}": case("GET", MF + "/logged-models/{logged}", READERS),
    "PATCH logged-models/{model_id}": case(
        "PATCH", MF + "/logged-models/{logged}", MANAGERS, {"status": "LOGGED_MODEL_READY"}
    ),
    "DELETE logged-models/{model_id}": case("DELETE", MF + "/logged-models/{logged}", MANAGERS),
    "PATCH logged-models/{model_id}/tags": case(
        "PATCH", MF + "/logged-models/{logged}/tags", MANAGERS, {"tags": [{"key": "k", "value": "v"}]}
    ),
    "DELETE logged-models/{model_id}/tags/(?P<tag_key>.+)": case(
        "DELETE", MF + "/logged-models/{logged}/tags/k", MANAGERS
    ),
    "POST logged-models/{model_id}/params": case(
        "POST", MF + "/logged-models/{logged}/params", MANAGERS, {"params": [{"key": "k", "value": "v"}]}
    ),
    # Registered models
    "POST registered-models/create": case("POST", MF + "/registered-models/create", EVERYONE, {"name": "new-m"}),
    "POST registered-models/rename": case(
        "POST", MF + "/registered-models/rename", MANAGERS, {"name": "m", "new_name": "m2"}
    ),
    "PATCH registered-models/update": case(
        "PATCH", MF + "/registered-models/update", EDITORS, {"name": "m", "description": "changed"}
    ),
    "DELETE registered-models/delete": case(
        "DELETE",
        MF + "/registered-models/delete",
        MANAGERS,
        {"name": "m"},
        also_ok=(400,),  # v3 is in Production
    ),
    "GET registered-models/get": case("GET", MF + "/registered-models/get?name=m", READERS),
    "GET registered-models/search": case("GET", MF + "/registered-models/search", READERS, hides='"name":"m"'),
    "POST registered-models/get-latest-versions": case(
        "POST", MF + "/registered-models/get-latest-versions", READERS, {"name": "m"}, write=False
    ),
    "GET registered-models/get-latest-versions": case(
        "GET", MF + "/registered-models/get-latest-versions?name=m", READERS
    ),
    "POST registered-models/set-tag": case(
        "POST", MF + "/registered-models/set-tag", EDITORS, {"name": "m", "key": "k", "value": "v"}
    ),
    "DELETE registered-models/delete-tag": case(
        "DELETE", MF + "/registered-models/delete-tag", EDITORS, {"name": "m", "key": "k"}
    ),
    "POST registered-models/alias": case(
        "POST", MF + "/registered-models/alias", EDITORS, {"name": "m", "alias": "candidate", "version": "1"}
    ),
    "DELETE registered-models/alias": case(
        "DELETE", MF + "/registered-models/alias", EDITORS, {"name": "m", "alias": "candidate"}
    ),
    "GET registered-models/alias": case("GET", MF + "/registered-models/alias?name=m&alias=champion", READERS),
    # Model versions
    "POST model-versions/create": case(
        "POST", MF + "/model-versions/create", EDITORS, {"name": "m", "source": "runs:/{run}/model"}
    ),
    "PATCH model-versions/update": case(
        "PATCH", MF + "/model-versions/update", EDITORS, {"name": "m", "version": "1", "description": "changed"}
    ),
    "POST model-versions/transition-stage": case(
        "POST",
        MF + "/model-versions/transition-stage",
        STAGING_MOVERS,
        {"name": "m", "version": "1", "stage": "Staging"},
    ),
    "DELETE model-versions/delete": case(
        "DELETE", MF + "/model-versions/delete", MANAGERS, {"name": "m", "version": "2"}
    ),
    "GET model-versions/get": case("GET", MF + "/model-versions/get?name=m&version=1", READERS),
    "GET model-versions/search": case("GET", MF + "/model-versions/search", READERS, hides='"name":"m"'),
    "GET model-versions/get-download-uri": case(
        "GET", MF + "/model-versions/get-download-uri?name=m&version=1", READERS
    ),
    "POST model-versions/set-tag": case(
        "POST", MF + "/model-versions/set-tag", EDITORS, {"name": "m", "version": "1", "key": "k", "value": "v"}
    ),
    "DELETE model-versions/delete-tag": case(
        "DELETE", MF + "/model-versions/delete-tag", EDITORS, {"name": "m", "version": "1", "key": "k"}
    ),
    # Users and permissions (MLflow's auth API)
    "POST users/create": case(
        "POST", MF + "/users/create", SUPERUSERS, {"username": "newbie", "password": "a-Long-pw-1"}
    ),
    "GET users/get": case("GET", MF + "/users/get?username={owner_name}", SUPERUSERS | {"owner", "read_only"}),
    "GET users/current": case("GET", MF + "/users/current", EVERYONE),
    "GET users/list": case("GET", MF + "/users/list", SUPERUSERS),
    "PATCH users/update-password": case(
        "PATCH", MF + "/users/update-password", SUPERUSERS, {"username": "{reader_name}", "password": "a-Long-pw-2"}
    ),
    "PATCH users/update-admin": case(
        "PATCH", MF + "/users/update-admin", SUPERUSERS, {"username": "{reader_name}", "is_admin": True}
    ),
    "DELETE users/delete": case("DELETE", MF + "/users/delete", SUPERUSERS, {"username": "{outsider_name}"}),
    "POST experiments/permissions/create": case(
        "POST",
        MF + "/experiments/permissions/create",
        MANAGERS,
        {"experiment_id": "{experiment_id}", "username": "{outsider_name}", "permission": "READ"},
    ),
    "GET experiments/permissions/get": case(
        "GET", MF + "/experiments/permissions/get?experiment_id={experiment_id}&username={reader_name}", READERS
    ),
    "PATCH experiments/permissions/update": case(
        "PATCH",
        MF + "/experiments/permissions/update",
        MANAGERS,
        {"experiment_id": "{experiment_id}", "username": "{reader_name}", "permission": "EDIT"},
    ),
    "DELETE experiments/permissions/delete": case(
        "DELETE",
        MF + "/experiments/permissions/delete",
        MANAGERS,
        {"experiment_id": "{experiment_id}", "username": "{reader_name}"},
    ),
    "POST registered-models/permissions/create": case(
        "POST",
        MF + "/registered-models/permissions/create",
        MANAGERS,
        {"name": "m", "username": "{outsider_name}", "permission": "READ"},
    ),
    "GET registered-models/permissions/get": case(
        "GET", MF + "/registered-models/permissions/get?name=m&username={reader_name}", READERS
    ),
    "PATCH registered-models/permissions/update": case(
        "PATCH",
        MF + "/registered-models/permissions/update",
        MANAGERS,
        {"name": "m", "username": "{reader_name}", "permission": "EDIT"},
    ),
    "DELETE registered-models/permissions/delete": case(
        "DELETE", MF + "/registered-models/permissions/delete", MANAGERS, {"name": "m", "username": "{reader_name}"}
    ),
    # MLflow 3's unified permission routes
    "3.0 POST users/permissions/grant": case(
        "POST",
        "/api/3.0/mlflow/users/permissions/grant",
        MANAGERS,
        {"username": "{outsider_name}", "resource_type": "registered_model", "resource_id": "m", "permission": "READ"},
    ),
    "3.0 POST users/permissions/revoke": case(
        "POST",
        "/api/3.0/mlflow/users/permissions/revoke",
        MANAGERS,
        {"username": "{reader_name}", "resource_type": "experiment", "resource_id": "{experiment_id}"},
    ),
    "3.0 GET users/permissions/get": case(
        "GET",
        "/api/3.0/mlflow/users/permissions/get?username={owner_name}&resource_type=registered_model&resource_id=m",
        MANAGERS,
    ),
    # The artifact proxy
    "artifacts GET list": case("GET", "/api/2.0/mlflow-artifacts/artifacts?path=runs/{run}/artifacts", READERS),
    "artifacts GET": case("GET", "/api/2.0/mlflow-artifacts/artifacts/runs/{run}/artifacts/notes.txt", READERS),
    "artifacts PUT": case("PUT", "/api/2.0/mlflow-artifacts/artifacts/runs/{run}/artifacts/x.bin", MANAGERS, b"x"),
    "artifacts DELETE": case("DELETE", "/api/2.0/mlflow-artifacts/artifacts/runs/{run}/artifacts/notes.txt", MANAGERS),
    "server-info": case("GET", "/api/3.0/mlflow/server-info", EVERYONE),
}

# MLflow's direct-transfer routes, called with artifacts on S3 (moto) and direct transfers on.
MPU = "/api/2.0/mlflow-artifacts/mpu"
DIRECT_CASES = {
    "mpu create": case("POST", MPU + "/create/runs/{run}/artifacts", MANAGERS, {"path": "/tmp/w.bin", "num_parts": 2}),
    "mpu complete": case(
        "POST",
        MPU + "/complete/runs/{run}/artifacts",
        MANAGERS,
        {"path": "/tmp/w.bin", "upload_id": "forged", "parts": [{"part_number": 1, "etag": "e"}]},
        also_ok=(400,),  # the forged upload id, once the caller is known to be allowed
    ),
    "mpu abort": case(
        "POST", MPU + "/abort/runs/{run}/artifacts", MANAGERS, {"path": "/tmp/w.bin", "upload_id": "f"}, also_ok=(400,)
    ),
    "presigned GET": case("GET", "/api/2.0/mlflow-artifacts/presigned/runs/{run}/artifacts/notes.txt", READERS),
}

DASHBOARD = READERS - {"read_only"}  # the dashboard is signed into, not reached with tokens
WEB_CASES = {
    "": case("GET", "/", EVERYONE),
    "healthz": case("GET", "/healthz", EVERYONE),
    "readyz": case("GET", "/readyz", EVERYONE),
    # Off unless REGISTRY_METRICS (then open, or to REGISTRY_METRICS_TOKEN's holders: tests/test_ops.py).
    "metrics": case("GET", "/metrics", frozenset()),
    "favicon.ico": case("GET", "/favicon.ico", EVERYONE),
    "login/": case("GET", "/login/", EVERYONE),
    "logout/": case("POST", "/logout/", EVERYONE),
    "profile/": case("GET", "/profile/", EVERYONE),
    "profile/tokens/<int:pk>/revoke/": case("POST", "/profile/tokens/{owner_token}/revoke/", {"owner"}),
    # Your own password, always: a wrong current one is a form error (400) on your own page.
    "profile/password/": case(
        "POST",
        "/profile/password/",
        EVERYONE,
        {"current_password": "not-it", "new_password": "a-New-pass-9137", "new_password_again": "a-New-pass-9137"},
        also_ok=(400,),
    ),
    # Your own name and email, always.
    "profile/details/": case("POST", "/profile/details/", EVERYONE, {"email": "me@example.org"}),
    "models/": case("GET", "/models/", DASHBOARD, hides=">m<"),
    "models/<model:name>/": case("GET", "/models/m/", DASHBOARD),
    "models/<model:name>/versions/<int:version>/": case("GET", "/models/m/versions/1/", DASHBOARD),
    "models/<model:name>/versions/<int:version>/request-stage/": case(
        "POST", "/models/m/versions/1/request-stage/", REQUESTERS_OF_M, {"to_stage": "Staging"}, form=True
    ),
    "models/<model:name>/versions/<int:version>/move/": case(
        "POST", "/models/m/versions/1/move/", STAGING_MOVERS, {"to_stage": "Staging"}, form=True
    ),
    "models/<model:name>/rollback/": case("POST", "/models/m/rollback/", APPROVERS_OF_M, {"confirm": "yes"}, form=True),
    "models/<model:name>/audit/": case("GET", "/models/m/audit/", DASHBOARD),
    # Editing in the dashboard
    "new-model/": case("POST", "/new-model/", EVERYONE, {"name": "fresh"}, form=True),
    "register/": case("POST", "/register/", EDITORS, {"run": "{run}", "folder": "model", "model": "m"}, form=True),
    "markdown-preview/": case("POST", "/markdown-preview/", EVERYONE, {"description": "*hi*"}),
    "models/<model:name>/description/": case(
        "POST", "/models/m/description/", EDITORS, {"description": "x"}, form=True
    ),
    "models/<model:name>/tags/": case("POST", "/models/m/tags/", EDITORS, {"key": "a", "value": "b"}, form=True),
    "models/<model:name>/aliases/": case(
        "POST", "/models/m/aliases/", EDITORS, {"alias": "candidate", "version": 1}, form=True
    ),
    "models/<model:name>/aliases/delete/": case(
        "POST", "/models/m/aliases/delete/", EDITORS, {"alias": "candidate"}, form=True
    ),
    "models/<model:name>/rename/": case("POST", "/models/m/rename/", MANAGERS, {"new_name": "m-renamed"}),
    "models/<model:name>/delete/": case("GET", "/models/m/delete/", MANAGERS),
    "models/<model:name>/versions/<int:version>/description/": case(
        "POST", "/models/m/versions/1/description/", EDITORS, {"description": "x"}, form=True
    ),
    "models/<model:name>/versions/<int:version>/lineage/": case("GET", "/models/m/versions/1/lineage/", DASHBOARD),
    "datasets/<int:pk>/lineage/": case("GET", "/datasets/{dataset}/lineage/", DASHBOARD),
    "models/<model:name>/card/": case("POST", "/models/m/card/", EDITORS, {"intended_use": "x"}, form=True),
    "models/<model:name>/card.html": case("GET", "/models/m/card.html", DASHBOARD),
    "models/<model:name>/versions/<int:version>/card/": case(
        "POST", "/models/m/versions/1/card/", EDITORS, {"limitations": "x"}, form=True
    ),
    "models/<model:name>/versions/<int:version>/card.html": case("GET", "/models/m/versions/1/card.html", DASHBOARD),
    "models/<model:name>/versions/<int:version>/tags/": case(
        "POST", "/models/m/versions/1/tags/", EDITORS, {"key": "a", "value": "b"}, form=True
    ),
    "models/<model:name>/versions/<int:version>/delete/": case("GET", "/models/m/versions/2/delete/", EDITORS),
    "models/<model:name>/versions/<int:version>/rescan/": case(
        "POST", "/models/m/versions/1/rescan/", EDITORS, form=True
    ),
    "models/<model:name>/versions/<int:version>/preview/<path:path>": case(
        "GET", "/models/m/versions/1/preview/model.pkl", DASHBOARD
    ),
    "runs/<str:run_id>/preview/<path:path>": case("GET", "/runs/{run}/preview/notes.txt", DASHBOARD),
    "models/<model:name>/access/grant/": case(
        "POST",
        "/models/m/access/grant/",
        MANAGERS,
        {"grantee": "user", "name": "{outsider_name}", "level": "READ"},
        form=True,
    ),
    "models/<model:name>/access/revoke/": case(
        "POST", "/models/m/access/revoke/", MANAGERS, {"grantee": "user", "name": "{reader_name}"}, form=True
    ),
    "models/<model:name>/access/settings/": case(
        "POST", "/models/m/access/settings/", MANAGERS, {"everyone": "READ"}, form=True
    ),
    "models/<model:name>/versions/<int:version>/artifacts/<path:path>": case(
        "GET", "/models/m/versions/1/artifacts/model.pkl", DASHBOARD
    ),
    "experiments/": case("GET", "/experiments/", DASHBOARD, hides=">e<"),
    "experiments/<int:pk>/": case("GET", "/experiments/{experiment_id}/", DASHBOARD),
    "experiments/<int:pk>/rename/": case(
        "POST", "/experiments/{experiment_id}/rename/", MANAGERS, {"new_name": "e-renamed"}
    ),
    "experiments/<int:pk>/access/grant/": case(
        "POST",
        "/experiments/{experiment_id}/access/grant/",
        MANAGERS,
        {"grantee": "user", "name": "{outsider_name}", "level": "READ"},
        form=True,
    ),
    "experiments/<int:pk>/access/revoke/": case(
        "POST",
        "/experiments/{experiment_id}/access/revoke/",
        MANAGERS,
        {"grantee": "user", "name": "{reader_name}"},
        form=True,
    ),
    "experiments/<int:pk>/access/settings/": case(
        "POST", "/experiments/{experiment_id}/access/settings/", MANAGERS, {"everyone": "READ"}, form=True
    ),
    "runs/<str:run_id>/": case("GET", "/runs/{run}/", DASHBOARD),
    "runs/<str:run_id>/metrics/<path:key>/": case("GET", "/runs/{run}/metrics/loss/", DASHBOARD),
    "runs/<str:run_id>/artifacts/<path:path>": case("GET", "/runs/{run}/artifacts/notes.txt", DASHBOARD),
    "approvals/": case("GET", "/approvals/", DASHBOARD, hides="please"),
    "audit/": case("GET", "/audit/", DASHBOARD, hides="m@champion"),
    "approvals/<int:pk>/approve/": case("POST", "/approvals/{request}/approve/", APPROVERS_OF_M, {}, form=True),
    "approvals/<int:pk>/reject/": case("POST", "/approvals/{request}/reject/", APPROVERS_OF_M, {}, form=True),
    "approvals/<int:pk>/cancel/": case("POST", "/approvals/{request}/cancel/", MANAGERS, {}, form=True),
    "compare/": case("GET", "/compare/?versions=m:1,m:2", DASHBOARD),
    "datasets/": case("GET", "/datasets/", DASHBOARD, hides=">d<"),
    "datasets/compare/": case("GET", "/datasets/compare/?ids={dataset}&ids={dataset2}", DASHBOARD),
    "datasets/<int:pk>/": case("GET", "/datasets/{dataset}/", DASHBOARD),
}


# --- Discovering the routes -----------------------------------------------------------------------------------------


def web_routes() -> set[str]:
    keys = set()
    for pattern in web_urls.urlpatterns:
        assert isinstance(pattern, URLPattern | URLResolver)
        keys.add(str(pattern.pattern))
    return keys


def api_routes() -> set[str]:
    from registry.api.api import api

    return {
        f"{method} {path}"
        for _prefix, router in api._routers
        for path, view in router.path_operations.items()
        for operation in view.operations
        for method in operation.methods
    }


def mlflow_routes() -> set[str]:
    keys = {f"{r.method} {_route_text(r)}" for r in mlflow_views.ROUTES}
    keys |= {f"3.0 {r.method} {_route_text(r)}" for r in mlflow_views.ROUTES_V3}
    keys |= {"artifacts GET list", "artifacts GET", "artifacts PUT", "artifacts DELETE", "server-info"}
    keys |= {"mpu create", "mpu complete", "mpu abort", "presigned GET"}
    return keys


def _route_text(route) -> str:
    text = route.pattern.pattern.strip("^$")
    return text.replace(mlflow_views._MODEL_ID, "{model_id}").replace(mlflow_views._WEBHOOK_ID, "{webhook_id}")


def test_every_route_has_a_case():
    """A route added without saying who may call it fails here."""
    assert web_routes() == set(WEB_CASES)
    assert api_routes() == set(API_CASES)
    assert mlflow_routes() == set(MLFLOW_CASES) | set(DIRECT_CASES)


# --- Running a case -------------------------------------------------------------------------------------------------


class Rollback(Exception):
    pass


def fill(text: str, values: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


def fill_body(body, values: dict, *, typed: bool = False):
    """The body with its placeholders filled, as text (MLflow's API takes ids as strings); `typed`: a value that is
    one whole placeholder keeps its type ({experiment_id} is a number, as /api/v1 wants it)."""
    if isinstance(body, bytes) or body is None:
        return body
    if isinstance(body, dict):
        return {key: fill_body(value, values, typed=typed) for key, value in body.items()}
    if isinstance(body, list):
        return [fill_body(value, values, typed=typed) for value in body]
    if isinstance(body, str):
        whole = re.fullmatch(r"\{(\w+)\}", body)
        if typed and whole and whole.group(1) in values:
            return values[whole.group(1)]
        return fill(body, values)
    return body


def call(world: World, persona: str, surface: str, spec: Case):
    url = fill(spec.url, world.values)
    body = fill_body(spec.body, world.values, typed=surface == "api")
    if surface == "web":
        client = Client()
        client.force_login(world.users[persona])
        if spec.method == "GET":
            return client.get(url)
        return client.post(url, body or {})
    client = Client(headers={"Authorization": f"Bearer {world.tokens[persona]}"})
    if isinstance(body, bytes):
        return client.generic(spec.method, url, body, content_type="application/octet-stream")
    data = json.dumps(body) if body is not None else None
    return client.generic(spec.method, url, data or "", content_type="application/json")


def refused(response, spec: Case) -> bool:
    if response.status_code in (401, 403, 404):
        return True
    if spec.form and response.status_code == 422:
        return True  # the form came back with the refusal beside its field
    if spec.form and response.status_code in (200, 302):
        return any(m.level_tag == "error" for m in get_messages(response.wsgi_request))
    return False


def check(world: World, surface: str, key: str, spec: Case) -> None:
    personas = [p for p in PERSONAS if not (surface == "web" and p == "read_only")]
    problems = []
    for persona in personas:
        allowed = persona in spec.allowed
        if surface != "web" and persona == "read_only" and spec.writes:
            allowed = False  # a read-only token never writes
        before = snapshot()
        try:
            with transaction.atomic():
                response = call(world, persona, surface, spec)
                after = snapshot()
                raise Rollback
        except Rollback:
            pass
        status = response.status_code
        if status >= 500:
            problems.append(f"{persona}: {status}")
        elif spec.hides:
            # A list: it answers everyone, and shows the hidden thing to those who may read it only.
            seen = fill(spec.hides, world.values) in _text(response, 10**7)
            if status != 200:
                problems.append(f"{persona}: the list answered {status}")
            elif seen != (persona in spec.allowed):
                problems.append(f"{persona} {'sees what it may not' if seen else 'does not see what it may'}")
        elif allowed and (refused(response, spec) or (status >= 400 and status not in spec.also_ok)):
            problems.append(f"{persona} may, but got {status} {_text(response)}")
        elif not allowed:
            if not refused(response, spec):
                problems.append(f"{persona} may not, but got {status} {_text(response)}")
            if after != before:
                problems.append(f"{persona} was refused ({status}) but something was stored")
    assert not problems, f"{surface} {key}:\n  " + "\n  ".join(problems)


def _text(response, limit: int = 300) -> str:
    if getattr(response, "streaming", False):
        return "<streamed>"
    return response.content[:limit].decode(errors="replace")


@pytest.mark.parametrize("key", sorted(API_CASES))
def test_api(world, key):
    check(world, "api", key, API_CASES[key])


@pytest.mark.parametrize("key", sorted(MLFLOW_CASES))
def test_mlflow(world, key):
    check(world, "mlflow", key, MLFLOW_CASES[key])


@pytest.fixture
def world_on_s3(request, settings):
    request.getfixturevalue("s3_artifacts")  # before the world stores its files
    settings.ARTIFACTS_S3_PRESIGNED_DOWNLOADS = True
    settings.ARTIFACTS_S3_MULTIPART_UPLOADS = True
    return request.getfixturevalue("world")


@pytest.mark.s3
@pytest.mark.parametrize("key", sorted(DIRECT_CASES))
def test_mlflow_direct_transfers(world_on_s3, key):
    check(world_on_s3, "mlflow", key, DIRECT_CASES[key])


@pytest.mark.parametrize("key", sorted(WEB_CASES))
def test_dashboard(world, key):
    check(world, "web", key, WEB_CASES[key])
