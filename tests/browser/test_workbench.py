"""The dashboard as a workbench, in Chromium, as a user does it: edit a description and find it in the audit log, set
an alias by its version number, register a version from a run's folder, tick runs and compare them, delete after a
confirmation; and every page fits a desktop and a phone with no serious accessibility problem (axe-core)."""

from __future__ import annotations

import io

import pytest

from registry.audit.models import AuditAction, AuditEvent
from registry.catalog import artifact_files
from registry.catalog import services as catalog
from registry.catalog.models import ModelAlias, ModelVersion, RegisteredModel
from registry.governance import services as governance
from registry.governance.models import StageTransitionRequest
from registry.tracking import services as tracking
from tests.browser.checks import check_page
from tests.builders import admin
from tests.conftest import AXE
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-browser-1"
MLMODEL = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"


@pytest.fixture
def world():
    """olga owns experiment "churn-training" (four finished runs, each with a model folder) and model "churn" (three
    versions from the first three runs); eddie may edit both; rhea may read them."""
    olga = UserFactory(username="olga", password=PASSWORD)
    eddie = UserFactory(username="eddie", password=PASSWORD)
    rhea = UserFactory(username="rhea", password=PASSWORD)
    experiment = tracking.experiment_create(name="churn-training", by=olga)
    runs = []
    for n in range(4):
        run = tracking.run_create(experiment=experiment, by=olga, name=f"gbm-{n}")
        tracking.log_batch(
            run=run,
            by=olga,
            params={"max_depth": str(3 + n), "lr": "0.1"},
            points=[("val_loss", 0.5 - 0.05 * n, 0, None), ("accuracy", 0.8 + 0.02 * n, 0, None)],
            tags={},
        )
        for path, body in (("model/MLmodel", MLMODEL), ("model/model.pkl", "weights"), ("notes.txt", "notes")):
            artifact_files.artifact_store(owner=run, path=path, stream=io.BytesIO(body.encode()), by=olga)
        tracking.run_finish(run=run, by=olga)
        runs.append(run)
    model = catalog.model_create(name="churn", by=olga, description="Predicts churn.")
    for run in runs[:3]:
        catalog.version_create(model=model, by=olga, run=run, artifact_path="model")
    for user, level in ((eddie, "EDIT"), (rhea, "READ")):
        catalog.model_grant_set(model=model, by=olga, user=user, level=level)
        tracking.experiment_grant_set(experiment=experiment, by=olga, user=user, level=level)
    return {"model": model, "experiment": experiment, "runs": runs}


def sign_in(page, live_server, username: str = "olga") -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/models/")


def test_edit_the_description_preview_it_and_find_it_in_the_audit_log(page, live_server, world):
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/models/churn/")
    section = page.locator("#model-description")
    section.get_by_role("link", name="Edit the description").click()
    box = page.get_by_role("textbox", name="Description")
    box.fill("A **gradient-boosted** churn model.\n\n- trained weekly")
    page.get_by_role("tab", name="Preview").click()
    assert page.locator("#model-description-preview strong").inner_text() == "gradient-boosted"
    page.get_by_role("tab", name="Write").click()
    page.get_by_role("button", name="Save description").click()

    saved = page.locator("#model-description .callout.ok")
    saved.wait_for()
    assert saved.inner_text() == "Saved the description of model."
    page.wait_for_function("() => document.activeElement.textContent === 'Saved the description of model.'")
    assert page.locator("#model-description .markdown strong").inner_text() == "gradient-boosted"
    page.reload()
    assert "trained weekly" in page.locator("#model-description").inner_text()

    page.goto(f"{live_server.url}/audit/")
    row = page.locator("tr", has_text="Model description changed").first
    assert "olga" in row.inner_text() and "churn" in row.inner_text()
    assert check_page(page) == []


def test_tags_as_key_value_rows_with_errors_beside_the_row(page, live_server, world):
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/models/churn/")
    page.get_by_role("link", name="Edit the tags").click()
    page.get_by_role("button", name="Add a tag").click()
    page.get_by_label("New tag key").last.fill("team")
    page.get_by_label("New tag value").last.fill("retention")
    page.get_by_role("button", name="Add a tag").click()
    page.get_by_label("New tag key").last.fill("team")  # the same key twice: refused beside the row
    page.get_by_label("New tag value").last.fill("growth")
    page.get_by_role("button", name="Save tags").click()
    error = page.locator("#model-tags .field-error")
    error.wait_for()
    assert "used twice" in error.inner_text()
    assert RegisteredModel.objects.get(name="churn").tags == {}  # nothing stored

    page.get_by_role("button", name="Remove tag team").last.click()
    page.get_by_role("button", name="Save tags").click()
    page.locator("#model-tags .callout.ok").wait_for()
    assert page.locator("#model-tags .badge.tag").inner_text() == "team: retention"
    assert RegisteredModel.objects.get(name="churn").tags == {"team": "retention"}


def test_set_an_alias_by_version_number_and_a_protected_one_asks_for_approval(page, live_server, world):
    sign_in(page, live_server, "eddie")
    page.goto(f"{live_server.url}/models/churn/")
    aliases = page.locator("#aliases")
    aliases.get_by_label("Alias", exact=True).fill("candidate")
    aliases.get_by_label("Version number").fill("9")
    aliases.get_by_role("button", name="Point alias").click()
    page.locator("#aliases .field-error").wait_for()
    assert "churn has no version 9; the newest is v3." in page.locator("#aliases .field-error").inner_text()

    aliases.get_by_label("Version number").fill("2")
    aliases.get_by_role("button", name="Point alias").click()
    page.locator("#aliases .callout.ok").wait_for()
    assert page.locator("#aliases .callout.ok").inner_text() == "@candidate now points at v2."
    assert "@candidate → v2" in page.locator("#aliases .alias-list").inner_text()
    assert ModelAlias.objects.get(model__name="churn", alias="candidate").version.version == 2

    # @champion is protected: eddie may edit but not approve Production, so a request opens instead.
    aliases.get_by_label("Alias", exact=True).fill("champion")
    aliases.get_by_label("Version number").fill("3")
    aliases.get_by_role("button", name="Point alias").click()
    page.locator("#aliases .callout.ok", has_text="protected").wait_for()
    request = StageTransitionRequest.objects.get(alias="champion")
    assert f"request #{request.pk}" in page.locator("#aliases .callout.ok").inner_text()
    assert not ModelAlias.objects.filter(model__name="churn", alias="champion").exists()
    assert check_page(page) == []


def test_register_a_version_from_a_runs_folder(page, live_server, world):
    run = world["runs"][3]
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    page.get_by_role("link", name="Register as a model version").click()
    assert page.get_by_label("Run").input_value() == run.pk
    assert page.get_by_label("model/", exact=False).first.is_checked()  # the model folder is offered first
    assert "2 files" in page.locator("#register-folders").inner_text()
    page.get_by_label("Model", exact=True).fill("churn")
    page.get_by_role("button", name="Register version").click()

    page.wait_for_url(f"{live_server.url}/models/churn/versions/4/")
    assert page.locator(".message.success").inner_text() == "Registered churn v4 with 2 files."
    files = page.locator("#files")
    assert "MLmodel" in files.inner_text() and "model.pkl" in files.inner_text()
    version = ModelVersion.objects.get(model__name="churn", version=4)
    assert version.run_id == run.pk and version.created_by.username == "olga"
    assert AuditEvent.objects.filter(action=AuditAction.VERSION_CREATED, version_number=4).exists()
    assert check_page(page) == []


def test_registering_under_a_new_name_needs_the_create_box(page, live_server, world):
    run = world["runs"][0]
    sign_in(page, live_server, "eddie")
    page.goto(f"{live_server.url}/register/?run={run.pk}")
    page.get_by_label("Model", exact=True).fill("churn-v2")
    page.get_by_role("button", name="Register version").click()
    assert "tick “create it”" in page.locator("#id_model_error").inner_text()
    assert not RegisteredModel.objects.filter(name="churn-v2").exists()
    page.get_by_label("Create the model if there is none by this name").check()
    page.get_by_role("button", name="Register version").click()
    page.wait_for_url(f"{live_server.url}/models/churn-v2/versions/1/")
    assert RegisteredModel.objects.get(name="churn-v2").owner.username == "eddie"


def test_tick_three_runs_and_compare_them(page, live_server, world):
    runs = world["runs"]
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/experiments/{world['experiment'].pk}/")
    bar = page.locator("[data-compare-form]")
    assert not bar.is_visible()
    for run in runs[:3]:
        page.get_by_label(f"Compare run {run.name}").check()
    assert bar.is_visible()
    assert bar.locator("[data-compare-count]").inner_text() == "3"
    bar.get_by_role("button", name="Compare").click()

    page.wait_for_url("**/compare/?runs=*")
    assert page.locator("h1").inner_text() == "Compare 3 runs"
    for run in runs[:3]:
        assert run.pk in page.url
    # Deltas against the first run are judged by direction: val_loss falls (better), accuracy rises (better).
    row = page.locator("#metrics tr", has_text="val_loss")
    assert "better" in row.locator("td").nth(2).inner_text()
    assert check_page(page) == []


def test_tick_versions_sort_by_a_metric_and_filter_by_stage(page, live_server, world):
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/models/churn/")
    page.locator("#versions th", has_text="accuracy").get_by_role("link").click()
    page.wait_for_url("**sort=-accuracy**")
    first = page.locator("#versions tbody tr").first
    assert first.locator("td").nth(1).inner_text().startswith("v3")  # highest accuracy first
    assert page.locator("#versions th[aria-sort=descending]").count() == 1

    page.get_by_label("Compare version 1").check()
    page.get_by_label("Compare version 3").check()
    page.get_by_label("Compare version 3").press("Enter")  # Enter on a ticked box compares
    page.wait_for_url("**/compare/?versions=churn:1,churn:3")

    page.goto(f"{live_server.url}/models/churn/")
    page.get_by_label("Stage").select_option("Production")
    page.locator("#versions .empty").wait_for()
    assert "No version matches" in page.locator("#versions").inner_text()


def test_delete_a_version_after_a_confirmation_that_names_what_goes(page, live_server, world):
    governance.alias_set(model=world["model"], alias="old", version=ModelVersion.objects.get(version=1), by=admin())
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/models/churn/versions/1/")
    page.get_by_role("link", name="Delete v1…").click()
    text = page.locator(".danger-zone").inner_text()
    assert "2 files" in text and "@old" in text and "churn@old will stop finding it" in text
    page.get_by_role("button", name="Delete v1").click()  # the box is required: nothing happens
    assert ModelVersion.objects.filter(model__name="churn", version=1).exists()
    page.get_by_label("Yes, delete v1 and its files").check()
    page.get_by_role("button", name="Delete v1").click()
    page.wait_for_url(f"{live_server.url}/models/churn/")
    assert "Deleted churn v1" in page.locator(".message.success").inner_text()
    assert not ModelVersion.objects.filter(model__name="churn", version=1).exists()


def test_rename_a_model_from_its_page_and_find_it_and_its_aliases_under_the_new_name(page, live_server, world):
    model = world["model"]
    governance.alias_set(model=model, alias="champion", version=model.versions.get(version=2), by=admin())
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/models/churn/")
    page.get_by_role("link", name="Rename churn…").click()
    assert "churn@champion" in page.locator(".danger-zone").inner_text()
    page.get_by_label("New name").fill("churn-gbm")
    page.get_by_role("button", name="Rename churn").click()
    page.wait_for_url(f"{live_server.url}/models/churn-gbm/")
    assert "Renamed churn to churn-gbm" in page.locator(".message.success").inner_text()
    assert "@champion" in page.locator("main").inner_text()
    page.goto(f"{live_server.url}/audit/?model=churn")  # the old name still finds the model's events
    assert "Model renamed" in page.locator("main").inner_text()


def test_version_page_leads_with_references_snippets_and_file_previews(page, live_server, world):
    sign_in(page, live_server, "rhea")
    page.goto(f"{live_server.url}/models/churn/versions/2/")
    use = page.locator("#use")
    assert "models:/churn/2" in use.inner_text()
    assert 'registry.pull("churn/2")' in page.locator("#code-client").inner_text()
    page.get_by_role("tab", name="CLI", exact=True).click()
    assert page.locator("#code-cli").is_visible() and not page.locator("#code-client").is_visible()
    assert "registry pull churn/2" in page.locator("#code-cli").inner_text()
    page.get_by_role("tab", name="MLflow").click()
    assert 'load_model("models:/churn/2")' in page.locator("#code-mlflow").inner_text()

    page.locator("#files summary", has_text="MLmodel").click()
    preview = page.locator("#files .file-preview")
    preview.wait_for()
    assert "loader_module: mlflow.sklearn" in preview.inner_text()
    # rhea may read, not edit: no edit buttons, no delete
    assert page.get_by_role("link", name="Edit the description").count() == 0
    assert page.get_by_role("link", name="Delete v2…").count() == 0
    assert check_page(page) == []


def test_a_misspelled_model_gets_the_styled_404_with_the_search_filled_in(page, live_server, world):
    sign_in(page, live_server)
    response = page.goto(f"{live_server.url}/models/chrun/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    assert "No model named 'chrun'." in page.locator(".error-page").inner_text()
    assert page.get_by_label("Search models").input_value() == "chrun"
    assert page.locator(".topbar").is_visible()  # the site's layout, with its menu
    assert check_page(page, allow_missing=True) == []


def test_the_menu_collapses_on_a_phone(page, live_server, world):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server)
    nav = page.get_by_role("navigation", name="Main")
    assert not nav.is_visible()
    page.get_by_role("button", name="Menu").click()
    assert nav.is_visible()
    nav.get_by_role("link", name="Experiments").click()
    page.wait_for_url(f"{live_server.url}/experiments/")
    assert check_page(page) == []


PAGES = [
    "/models/",
    "/models/churn/",
    "/models/churn/versions/2/",
    "/models/churn/audit/",
    "/models/churn/description/",
    "/models/churn/rename/",
    "/models/churn/delete/",
    "/models/churn/versions/2/delete/",
    "/new-model/",
    "/register/",
    "/register/?run={run}",
    "/experiments/",
    "/experiments/{experiment}/",
    "/experiments/{experiment}/rename/",
    "/runs/{run}/",
    "/runs/{run}/metrics/val_loss/",
    "/compare/?runs={run},{run2}",
    "/compare/?versions=churn:1,churn:2,churn:3",
    "/compare/",
    "/datasets/",
    "/approvals/",
    "/audit/",
    "/profile/",
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_fits_a_desktop_and_a_phone_and_passes_axe(browser, live_server, world, scheme):
    """Each page at 1400 px and 390 px, in the light or dark colour scheme: no horizontal overflow, no critical or
    serious axe violation, no console error (CSP refusals included)."""
    runs = world["runs"]
    values = {"run": runs[0].pk, "run2": runs[1].pk, "experiment": world["experiment"].pk}
    problems = []
    for width in (1400, 390):
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
        context.add_init_script(path=str(AXE))
        page = context.new_page()
        page.console_errors = []
        page.on("console", lambda msg, page=page: page.console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc, page=page: page.console_errors.append(str(exc)))
        sign_in(page, live_server)
        for path in PAGES:
            page.console_errors.clear()
            response = page.goto(live_server.url + path.format(**values))
            page.wait_for_load_state("networkidle")
            assert response.status == 200, path
            problems += [f"{width}px {path}: {p}" for p in check_page(page)]
        context.close()
    assert problems == [], "\n".join(problems)
