"""The model list: search, tag and stage filters, sorting, pagination, htmx partials and a fixed query count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.builders import alias_set, model_create, version_create, version_stage_set
from tests.factories import ModelAliasFactory, ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

URL = "/models/"


def names_on(response) -> list[str]:
    return [m.name for m in response.context["page"]]


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/models/"


def test_empty_registry_shows_the_client_code_for_a_first_run(signed_in):
    response = signed_in.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "No models yet" in body
    assert "from registry_client import Registry" in body
    assert 'start_run(experiment="demo") as run:' in body
    assert "run.log_metric(&quot;loss&quot;, 0.1)" in body or 'run.log_metric("loss", 0.1)' in body
    assert response.context["nav"] == "models"
    assert response.context["breadcrumbs"] == [("Models", None)]


def test_a_row_shows_latest_production_aliases_owner_and_count(signed_in, owner):
    model = model_create(name="fraud", owner=owner, description="Scores *card* payments.")
    versions = [version_create(model=model) for _ in range(3)]
    version_stage_set(version=versions[0], stage="Production")
    version_stage_set(version=versions[1], stage="Production")
    alias_set(model=model, alias="champion", version=versions[1])

    response = signed_in.get(URL)

    row = response.context["page"][0]
    assert (row.latest_version, row.version_count, row.production_versions) == (3, 3, [1, 2])
    body = response.content.decode()
    assert 'href="/models/fraud/"' in body
    assert 'href="/models/fraud/versions/3/">v3</a>' in body
    assert 'class="badge stage-Production" href="/models/fraud/versions/1/">v1</a>' in body
    assert "@champion → v2" in body
    assert "owner" in body
    assert "Scores card payments." in body  # the description's markdown, flattened to text


def test_search_matches_name_and_description(signed_in):
    RegisteredModelFactory(name="churn", description="Monthly churn.")
    RegisteredModelFactory(name="fraud", description="Card fraud scoring.")
    RegisteredModelFactory(name="ranker", description="Search ranking.")

    assert names_on(signed_in.get(URL, {"q": "FRAUD"})) == ["fraud"]
    assert names_on(signed_in.get(URL, {"q": "monthly"})) == ["churn"]
    assert names_on(signed_in.get(URL, {"q": "nothing-like-it"})) == []


def test_tag_filter_by_key_or_key_and_value(signed_in):
    RegisteredModelFactory(name="a", tags={"team": "risk", "tier": "1"})
    RegisteredModelFactory(name="b", tags={"team": "growth"})
    RegisteredModelFactory(name="c", tags={})

    assert names_on(signed_in.get(URL, {"tag": "team"})) == ["a", "b"]
    assert names_on(signed_in.get(URL, {"tag": "team:growth"})) == ["b"]
    assert names_on(signed_in.get(URL, {"tag": "tier:1"})) == ["a"]
    assert names_on(signed_in.get(URL, {"tag": "team:nobody"})) == []


def test_stage_filter_keeps_models_with_a_version_in_that_stage(signed_in):
    live = ModelVersionFactory(model__name="live", stage="Production").model
    ModelVersionFactory(model=live)
    ModelVersionFactory(model__name="staged", stage="Staging")
    RegisteredModelFactory(name="bare")

    assert names_on(signed_in.get(URL, {"stage": "Production"})) == ["live"]
    assert names_on(signed_in.get(URL, {"stage": "Staging"})) == ["staged"]


def test_sort_by_last_update(signed_in):
    now = timezone.now()
    RegisteredModelFactory(name="old", updated_at=now - timedelta(days=3))
    RegisteredModelFactory(name="new", updated_at=now)
    RegisteredModelFactory(name="mid", updated_at=now - timedelta(days=1))

    assert names_on(signed_in.get(URL, {"sort": "-updated"})) == ["new", "mid", "old"]
    assert names_on(signed_in.get(URL, {"sort": "name"})) == ["mid", "new", "old"]
    assert names_on(signed_in.get(URL, {"sort": "-name"})) == ["old", "new", "mid"]


def test_filtered_to_nothing_says_so_instead_of_the_first_run_help(signed_in):
    RegisteredModelFactory(name="fraud")
    body = signed_in.get(URL, {"q": "zzz"}).content.decode()
    assert "No model matches these filters." in body
    assert "from registry_client import Registry" not in body


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "drop table"},
        {"page": "abc"},
        {"page": "-3"},
        {"page": "999"},
        {"stage": "Nonsense"},
        {"tag": ":"},
        {"tag": ":value"},
        {"tag": 'a"b:c'},
        {"tag": "$.x[0]:1"},
        {"q": "%_\\'\""},
    ],
)
def test_bad_query_parameters_never_fail(signed_in, params):
    RegisteredModelFactory(name="fraud")
    response = signed_in.get(URL, params)
    assert response.status_code == 200


def test_pagination_has_25_rows_a_page(signed_in):
    for n in range(30):
        RegisteredModelFactory(name=f"m{n:02d}")
    first = signed_in.get(URL)
    second = signed_in.get(URL, {"page": 2})
    assert len(names_on(first)) == 25
    assert names_on(second) == [f"m{n}" for n in range(25, 30)]
    assert 'href="?page=2"' in first.content.decode()


def test_htmx_request_gets_only_the_table_partial(signed_in):
    RegisteredModelFactory(name="fraud")
    response = signed_in.get(URL, {"q": "fr"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="models")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="models"')
    assert "<html" not in body
    assert "fraud" in body
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_whole_page(signed_in):
    response = signed_in.get(
        URL, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="models", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_filter_form_and_links_use_htmx(signed_in):
    body = signed_in.get(URL).content.decode()
    assert 'hx-get="/models/" hx-target="#models"' in body
    assert 'hx-push-url="true"' in body


def _models_with_versions(count: int) -> None:
    for n in range(count):
        model = RegisteredModelFactory(name=f"model-{n:02d}")
        first = ModelVersionFactory(model=model, stage="Production")
        ModelVersionFactory(model=model, stage="Staging")
        ModelAliasFactory(model=model, version=first, alias="champion")
        ModelAliasFactory(model=model, version=first, alias="stable")


@pytest.mark.parametrize("rows", [1, 50])
def test_query_count_does_not_grow_with_rows(signed_in, django_assert_num_queries, rows):
    _models_with_versions(rows)
    # session, user, COUNT for the paginator, the page of models (owner joined; latest version, version count and
    # Production list as subqueries), the aliases of the page's models with their version numbers.
    with django_assert_num_queries(5):
        response = signed_in.get(URL, {"q": "model", "stage": "Production", "sort": "-updated"})
    assert len(response.context["page"]) == min(rows, 25)
    assert response.content.decode().count("@champion → v1") == min(rows, 25)
