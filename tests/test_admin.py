"""The admin: every changelist does a fixed number of queries whatever the row count; history stays read-only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registry.catalog.models import ArtifactFile, ModelAlias, ModelGrant, ModelVersion, RegisteredModel, Stage
from registry.governance.models import StageChange, StagePolicy, StageTransitionRequest
from registry.tracking.models import (
    Dataset,
    Experiment,
    ExperimentGrant,
    MetricPoint,
    MetricSeries,
    Param,
    Run,
    RunInput,
)
from tests.factories import (
    ArtifactFileFactory,
    DatasetFactory,
    ExperimentFactory,
    MetricPointFactory,
    MetricSeriesFactory,
    ModelAliasFactory,
    ModelGrantFactory,
    ModelVersionFactory,
    ParamFactory,
    RegisteredModelFactory,
    RunFactory,
    RunInputFactory,
    StageChangeFactory,
    StageTransitionRequestFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ADMIN_APPS = ("tracking", "catalog", "governance")


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    """The manifest storage needs `collectstatic` to have run; the admin's pages only need URLs here."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The builders create a user per row; the default PBKDF2 work factor would make that take minutes."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def root_client(client, superuser):
    """A client signed in as the `superuser` persona."""
    client.force_login(superuser)
    return client


# --- Builders: each makes `n` rows whose related rows are all distinct, so an N+1 would show -------------------------


def make_experiments(n: int) -> None:
    for experiment in ExperimentFactory.create_batch(n):
        RunFactory(experiment=experiment)


def make_runs(n: int) -> None:
    for _ in range(n):
        RunFactory(user=UserFactory())


def make_datasets(n: int) -> None:
    for dataset in DatasetFactory.create_batch(n):
        RunInputFactory(dataset=dataset)


def make_registered_models(n: int) -> None:
    for model in RegisteredModelFactory.create_batch(n, owner=None):
        model.owner = UserFactory()
        model.save(update_fields=["owner"])
        ModelVersionFactory(model=model)


def make_model_versions(n: int) -> None:
    for _ in range(n):
        ModelVersionFactory(created_by=UserFactory())


def make_aliases(n: int) -> None:
    for _ in range(n):
        ModelAliasFactory(updated_by=UserFactory())


def make_transition_requests(n: int) -> None:
    for _ in range(n):
        StageTransitionRequestFactory(status="approved", decided_by=UserFactory(), decided_at=timezone.now())


def make_stage_changes(n: int) -> None:
    for _ in range(n):
        version = ModelVersionFactory()
        request = StageTransitionRequestFactory(
            version=version, status="approved", decided_by=UserFactory(), decided_at=timezone.now()
        )
        StageChangeFactory(version=version, request=request)


def make_model_grants(n: int) -> None:
    for _ in range(n):
        ModelGrantFactory(granted_by=UserFactory())


def make_experiment_grants(n: int) -> None:
    for _ in range(n):
        ExperimentGrant.objects.create(experiment=ExperimentFactory(), user=UserFactory(), level=2)


def make_policies(n: int) -> None:
    for _ in range(n):
        StagePolicy.objects.create(model=RegisteredModelFactory(), approval_required_for=["Staging"])


def make_artifacts(n: int) -> None:
    # Alternate owners so that both labels (run and version) are on the page.
    for i in range(n):
        if i % 2:
            ArtifactFileFactory(run=None, version=ModelVersionFactory())
        else:
            ArtifactFileFactory()


BUILDERS: dict[type, Callable[[int], None]] = {
    Experiment: make_experiments,
    Run: make_runs,
    Param: ParamFactory.create_batch,
    MetricSeries: MetricSeriesFactory.create_batch,
    MetricPoint: MetricPointFactory.create_batch,
    Dataset: make_datasets,
    RunInput: RunInputFactory.create_batch,
    RegisteredModel: make_registered_models,
    ModelVersion: make_model_versions,
    ModelAlias: make_aliases,
    StageTransitionRequest: make_transition_requests,
    StageChange: make_stage_changes,
    ArtifactFile: make_artifacts,
    ModelGrant: make_model_grants,
    ExperimentGrant: make_experiment_grants,
    StagePolicy: make_policies,
}

# Queries per changelist page, the same at 1 and at 50 rows (and on SQLite and PostgreSQL). Every page does 5:
# the session, the user, the filtered count, the full count, and the page of rows with their related rows joined in.
# Then: MetricPoint skips the full count (show_full_result_count is off for a table that grows fastest);
# Dataset and RunInput list the distinct values of a field filter (source_type, context);
# Run, ModelVersion and StageChange run the date hierarchy (min/max, then the distinct days);
# Run also lists experiments for its experiment filter.
QUERIES = {
    Experiment: 5,
    Run: 8,
    Param: 5,
    MetricSeries: 5,
    MetricPoint: 4,
    Dataset: 6,
    RunInput: 6,
    RegisteredModel: 5,
    ModelVersion: 7,
    ModelAlias: 5,
    StageTransitionRequest: 5,
    StageChange: 7,
    ArtifactFile: 5,
    ModelGrant: 5,
    ExperimentGrant: 5,
    StagePolicy: 5,
}


def registered_models() -> list[type]:
    return sorted(
        (model for model in admin.site._registry if model._meta.app_label in ADMIN_APPS),
        key=lambda model: model._meta.label,
    )


def admin_url(model: type, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_registered_model_has_a_builder():
    assert set(registered_models()) == set(BUILDERS)


@pytest.mark.parametrize("model", list(BUILDERS), ids=lambda m: m.__name__)
def test_changelist_queries_do_not_grow_with_rows(root_client, model):
    url = admin_url(model, "changelist")
    build = BUILDERS[model]

    build(1)
    root_client.get(url)  # warm per-process caches (content types, templates) out of the count
    with CaptureQueriesContext(connection) as at_one:
        response = root_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == model.objects.count()

    build(49)
    with CaptureQueriesContext(connection) as at_fifty:
        response = root_client.get(url)
    assert response.status_code == 200
    rows = model.objects.count()
    assert rows >= 50
    assert len(response.context["cl"].result_list) == min(rows, response.context["cl"].list_per_page)

    queries_at_fifty = [q["sql"] for q in at_fifty.captured_queries]
    assert len(at_one) == len(at_fifty), "\n".join(queries_at_fifty)
    assert len(at_fifty) == QUERIES[model], "\n".join(queries_at_fifty)


# --- Change pages and what the admin must not allow ----------------------------------------------------------------


@pytest.mark.parametrize("model", list(BUILDERS), ids=lambda m: m.__name__)
def test_change_page_opens(root_client, model):
    BUILDERS[model](1)
    obj = model.objects.order_by("-pk").first()
    response = root_client.get(admin_url(model, "change", obj.pk))
    assert response.status_code == 200
    assert response.context["original"] == obj


def test_stage_history_is_read_only(root_client):
    make_stage_changes(1)
    change = StageChange.objects.get()

    changelist = root_client.get(admin_url(StageChange, "changelist"))
    assert changelist.status_code == 200
    assert admin_url(StageChange, "add") not in changelist.content.decode()
    assert "delete_selected" not in changelist.content.decode()

    assert root_client.get(admin_url(StageChange, "add")).status_code == 403
    assert root_client.post(admin_url(StageChange, "add"), {"comment": "forged"}).status_code == 403

    page = root_client.get(admin_url(StageChange, "change", change.pk))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert '<input type="submit" value="Save"' not in page.content.decode()
    forged = {"from_stage": Stage.NONE, "to_stage": Stage.ARCHIVED, "kind": "direct", "comment": "forged"}
    assert root_client.post(admin_url(StageChange, "change", change.pk), forged).status_code == 403

    assert root_client.get(admin_url(StageChange, "delete", change.pk)).status_code == 403
    assert root_client.post(admin_url(StageChange, "delete", change.pk), {"post": "yes"}).status_code == 403
    bulk_delete = {"action": "delete_selected", "_selected_action": [change.pk], "post": "yes"}
    root_client.post(admin_url(StageChange, "changelist"), bulk_delete)

    change.refresh_from_db()
    assert (change.to_stage, change.comment) == (Stage.STAGING, "")
    assert StageChange.objects.count() == 1


@pytest.mark.parametrize("model", [ModelVersion, ArtifactFile, MetricSeries, MetricPoint], ids=lambda m: m.__name__)
def test_rows_made_by_services_cannot_be_added_by_hand(root_client, model):
    BUILDERS[model](1)
    changelist = root_client.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    assert changelist.context["has_add_permission"] is False
    assert admin_url(model, "add") not in changelist.content.decode()
    assert root_client.get(admin_url(model, "add")).status_code == 403
    assert root_client.post(admin_url(model, "add"), {}).status_code == 403


def test_model_version_stage_cannot_be_edited_in_the_admin(root_client):
    version = ModelVersionFactory()
    response = root_client.get(admin_url(ModelVersion, "change", version.pk))
    assert response.status_code == 200
    assert "stage" not in response.context["adminform"].form.fields
    assert "version" not in response.context["adminform"].form.fields


def test_admin_needs_staff(client, outsider):
    client.force_login(outsider)
    response = client.get(admin_url(ModelVersion, "changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_tags_are_edited_as_key_value_rows_and_saved_through_the_service(root_client):
    model = RegisteredModelFactory(name="churn", tags={"team": "growth"}, owner=UserFactory(username="olga"))
    page = root_client.get(admin_url(RegisteredModel, "change", model.pk)).content.decode()
    assert 'name="tags__key" value="team"' in page and 'name="tags__value" value="growth"' in page
    assert "<textarea" not in page.split('name="tags__key"')[0].rsplit("Tags", 1)[-1]  # rows, not a JSON box

    form = {
        "name": "churn",
        "description": "",
        "owner": model.owner_id,
        "default_level": "",
        "tags__key": ["team", "tier", ""],
        "tags__value": ["retention", "gold", ""],
        "grants-TOTAL_FORMS": 0,
        "grants-INITIAL_FORMS": 0,
    }
    response = root_client.post(admin_url(RegisteredModel, "change", model.pk), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    model.refresh_from_db()
    assert model.tags == {"team": "retention", "tier": "gold"}
    from registry.audit.models import AuditAction, AuditEvent

    assert AuditEvent.objects.filter(action=AuditAction.MODEL_TAGS_CHANGED, model_name="churn").exists()

    form.update({"tags__key": ["team", "team"], "tags__value": ["a", "b"]})
    response = root_client.post(admin_url(RegisteredModel, "change", model.pk), form)
    assert response.status_code == 200
    assert "The key &#x27;team&#x27; is given twice; keep one." in response.content.decode()
    model.refresh_from_db()
    assert model.tags == {"team": "retention", "tier": "gold"}


@pytest.mark.parametrize(
    ("admin_model", "name", "words"),
    [
        (RegisteredModel, "..", "must not be &#x27;..&#x27;"),
        (RegisteredModel, "abc\u202edef", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        (RegisteredModel, "Churn", "names are unique ignoring case"),
        (Experiment, "a?b", "must not contain &#x27;?&#x27;"),
        (Experiment, "CHURN-TRAINING", "names are unique ignoring case"),
    ],
)
def test_the_admin_refuses_names_the_rule_refuses(root_client, admin_model, name, words):
    """The admin is one more surface: the naming rule answers beside the name, and nothing is stored."""
    RegisteredModelFactory(name="churn")
    ExperimentFactory(name="churn-training")
    before = admin_model.objects.count()
    form = {"name": name, "description": "", "default_level": "", "grants-TOTAL_FORMS": 0, "grants-INITIAL_FORMS": 0}
    response = root_client.post(admin_url(admin_model, "add"), form)
    assert response.status_code == 200
    assert words in response.content.decode()
    assert admin_model.objects.count() == before
