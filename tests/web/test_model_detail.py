"""The model page: description, versions with chosen metric columns, trend chart, stage timeline, requests."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from registry.catalog.models import Stage
from registry.governance.models import StageChange, stage_intervals
from registry.tracking.services import Point
from tests.builders import alias_set, grant, metrics_log, model_create, run_create, version_create, version_stage_set
from tests.factories import (
    ModelVersionFactory,
    RegisteredModelFactory,
    RunFactory,
    StageChangeFactory,
    StageTransitionRequestFactory,
)

pytestmark = pytest.mark.django_db


def url(name: str = "fraud") -> str:
    return f"/models/{name}/"


def register(model, metrics: dict[str, float] | None = None, **kwargs):
    run = run_create(name=f"run-for-{model.name}")
    if metrics:
        metrics_log(run=run, points=[Point(key, value) for key, value in metrics.items()])
    return version_create(model=model, run=run, **kwargs)


def figure(response, element_id: str) -> dict:
    body = response.content.decode()
    start = body.index(f'<script id="{element_id}" type="application/json">') + len(
        f'<script id="{element_id}" type="application/json">'
    )
    return json.loads(body[start : body.index("</script>", start)])


@pytest.fixture
def fraud(owner):
    return model_create(
        name="fraud",
        owner=owner,
        description="# Fraud\n\nScores **payments**. [Runbook](https://example.com/rb)\n\n<script>alert(1)</script>",
        tags={"team": "risk"},
    )


def test_anonymous_users_are_sent_to_login(client, fraud):
    response = client.get(url())
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_unknown_model_is_404(signed_in):
    assert signed_in.get(url("nope")).status_code == 404


def test_description_is_rendered_as_safe_markdown_with_tags_and_aliases(signed_in, fraud):
    version = register(fraud)
    alias_set(model=fraud, alias="champion", version=version)
    response = signed_in.get(url())
    body = response.content.decode()
    assert "<h1>Fraud</h1>" in body
    assert "<strong>payments</strong>" in body
    assert '<a href="https://example.com/rb" rel="noopener noreferrer nofollow">Runbook</a>' in body
    assert "<script>alert(1)</script>" not in body
    assert "team: risk" in body
    assert "@champion → v1" in body
    assert response.context["breadcrumbs"] == [("Models", "/models/"), ("fraud", None)]
    assert response.context["nav"] == "models"


def test_versions_table_shows_stage_aliases_creator_run_and_default_metric_columns(signed_in, fraud, member):
    grant(fraud, member, "EDIT")
    v1 = register(fraud, {"accuracy": 0.8, "f1": 0.7, "auc": 0.9, "rare": 1.0}, created_by=member)
    v2 = register(fraud, {"accuracy": 0.85, "f1": 0.75, "auc": 0.91}, created_by=member)
    register(fraud, {"accuracy": 0.9, "f1": 0.8, "auc": 0.92, "loss": 0.1})
    version_stage_set(version=v2, stage="Production")
    alias_set(model=fraud, alias="champion", version=v2)

    response = signed_in.get(url())

    assert response.context["chosen_keys"] == ["accuracy", "auc", "f1"]  # the three most common keys
    rows = response.context["version_rows"]
    assert [v.version for v, _, _ in rows] == [3, 2, 1]
    assert rows[1][1] == ["champion"]
    assert rows[1][2] == [0.85, 0.91, 0.75]
    body = response.content.decode()
    assert '<span class="badge stage-Production">Production</span>' in body
    assert f'href="/runs/{v1.run_id}/"' in body
    assert "member" in body
    assert 'value="fraud:2" data-compare' in body
    assert 'action="/compare/"' in body and "data-compare-form" in body


def test_metric_columns_are_chosen_from_the_query_string(signed_in, fraud):
    register(fraud, {"accuracy": 0.8, "f1": 0.7})
    response = signed_in.get(url(), {"metrics": "f1,unknown"})
    assert response.context["chosen_keys"] == ["f1", "unknown"]
    assert response.context["version_rows"][0][2] == [0.7, None]
    assert "—" in response.content.decode()

    assert signed_in.get(url(), {"metrics": ""}).context["chosen_keys"] == []
    assert signed_in.get(url(), [("metrics", ""), ("metrics", "accuracy")]).context["chosen_keys"] == ["accuracy"]


def test_trend_chart_marks_production_versions(signed_in, fraud):
    versions = [register(fraud, {"accuracy": 0.7 + n / 100}) for n in range(4)]
    version_stage_set(version=versions[2], stage="Production")

    response = signed_in.get(url(), {"trend": "accuracy"})

    trend = figure(response, "trend-figure")
    line, production = trend["data"]
    assert line["x"] == [1, 2, 3, 4]
    assert line["y"] == pytest.approx([0.7, 0.71, 0.72, 0.73])
    assert production["x"] == [3]
    assert production["marker"]["symbol"] == "star"
    assert trend["layout"]["annotations"][0]["text"] == "v3 in Production"
    assert 'data-figure="trend-figure"' in response.content.decode()


def test_trend_for_an_unknown_metric_explains_instead_of_failing(signed_in, fraud):
    register(fraud, {"accuracy": 0.7})
    response = signed_in.get(url(), {"trend": "nope"})
    assert response.status_code == 200
    assert "No recent version logged &#x27;nope&#x27;." in response.content.decode()
    assert response.context["trend_figure"] is None


def test_stage_timeline_lists_who_held_production_when(signed_in, fraud):
    v1, v2 = register(fraud), register(fraud)
    version_stage_set(version=v1, stage="Production")
    version_stage_set(version=v2, stage="Production", archive_existing=True)

    response = signed_in.get(url())

    intervals = [(i.version, i.stage, i.end is None) for i, _ in response.context["intervals"]]
    assert intervals == [(2, "Production", True), (1, "Production", False)]
    timeline = figure(response, "timeline-figure")
    assert timeline["data"][0]["name"] == "Production"
    assert timeline["data"][0]["text"] == ["v1", "v2"]
    assert "+" not in timeline["data"][0]["base"][0]  # Plotly cannot read UTC offsets


def test_stage_intervals_from_ordered_changes():
    now = timezone.now()
    v1 = ModelVersionFactory()
    v2 = ModelVersionFactory(model=v1.model)
    t = [now + timedelta(hours=h) for h in range(5)]
    rows = [
        StageChangeFactory(version=v1, from_stage="Production", to_stage="Archived", changed_at=t[0]),
        StageChangeFactory(version=v2, from_stage="None", to_stage="Staging", changed_at=t[1]),
        StageChangeFactory(version=v2, from_stage="Staging", to_stage="Production", changed_at=t[2]),
        StageChangeFactory(version=v2, from_stage="Production", to_stage="Archived", changed_at=t[4]),
    ]
    changes = StageChange.objects.filter(pk__in=[r.pk for r in rows]).timeline_rows(10)

    intervals = stage_intervals(changes, stages=(Stage.PRODUCTION, Stage.STAGING))

    # v1 held Production from before the rows read; v2 went through Staging then Production.
    assert [(i.version, i.stage, i.start, i.end) for i in intervals] == [
        (v1.version, "Production", None, t[0]),
        (v2.version, "Staging", t[1], t[2]),
        (v2.version, "Production", t[2], t[4]),
    ]
    assert intervals[2].duration(now) == timedelta(hours=2)
    everything = stage_intervals(changes)
    assert (v1.version, "Archived") in [(i.version, i.stage) for i in everything if i.end is None]


def test_pending_requests_are_listed_without_action_buttons_for_a_member(signed_in, fraud, member):
    version = register(fraud)
    StageTransitionRequestFactory(version=version, to_stage="Staging", requested_by=member, comment="Looks good.")
    body = signed_in.get(url()).content.decode()
    assert "Looks good." in body
    assert "Awaiting another approver" in body  # the member asked; approving is someone else's (test_governance_views)
    assert "Approve</button>" not in body


@pytest.mark.parametrize(
    "params",
    [
        {"page": "abc"},
        {"after": "abc"},
        {"before": "%%%"},
        {"after": "WyJ4Il0"},
        {"last": "x"},
        {"metrics": ",,,"},
        {"trend": ""},
        {"metrics": "a" * 400},
    ],
)
def test_bad_query_parameters_never_fail(signed_in, fraud, params):
    register(fraud, {"accuracy": 0.9})
    assert signed_in.get(url(), params).status_code == 200


def test_versions_are_paginated(signed_in):
    model = RegisteredModelFactory(name="big")
    for _ in range(30):
        ModelVersionFactory(model=model)
    first = signed_in.get(url("big"))
    second = signed_in.get(url("big"), {"after": first.context["versions_page"].next_token})
    assert [v.version for v, _, _ in second.context["version_rows"]] == [5, 4, 3, 2, 1]
    last = signed_in.get(url("big"), {"last": "1"})
    assert [v.version for v, _, _ in last.context["version_rows"]] == list(range(25, 0, -1))


def test_htmx_paging_renders_only_the_versions_partial(signed_in, fraud, django_assert_num_queries):
    register(fraud, {"accuracy": 0.9})
    # session, user, model (owner joined), the user's grants on it, aliases, recent metric keys, versions COUNT,
    # versions page, metric values, the page's files (and their scan verdicts when there are files)
    with django_assert_num_queries(10):
        response = signed_in.get(url(), {"last": "1"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="versions")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="versions"')
    assert "<html" not in body
    assert "trend-figure" not in body


def test_htmx_trend_change_renders_only_the_trend_partial(signed_in, fraud):
    register(fraud, {"accuracy": 0.9, "f1": 0.5})
    response = signed_in.get(url(), {"trend": "f1"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="trend")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="trend"')
    assert 'id="trend-figure"' in body
    assert "<table" not in body


def _versions(model, count: int) -> None:
    for n in range(count):
        run = RunFactory()
        metrics_log(run=run, points=[Point("accuracy", 0.5 + n / 1000), Point("f1", 0.4)])
        version = ModelVersionFactory(model=model, run=run)
        version_stage_set(version=version, stage=Stage.STAGING)
        StageTransitionRequestFactory(version=version, from_stage="Staging", to_stage="Production")
        alias_set(model=model, alias=f"a{n}", version=version)


@pytest.mark.parametrize("rows", [1, 50])
def test_query_count_does_not_grow_with_rows(signed_in, django_assert_num_queries, rows):
    model = RegisteredModelFactory(name="fraud")
    _versions(model, rows)
    # session, user, model (owner joined), the user's grants on it, aliases with version numbers, recent metric keys,
    # versions COUNT, versions page (creator and run joined), metric values for the page's runs, trend points, stage
    # changes, pending requests (version, model, requester joined), the model's policy and its gates, the user's
    # permissions (user, groups), their stage rights on the model (grants), the newest audit events, and for the
    # access panel the model's grants with their users and groups, and for the aliases section the aliases its policy
    # protects, the model's card, and the page's files for the scan badges (their verdicts too when there are files)
    with django_assert_num_queries(22):
        response = signed_in.get(url())
    assert len(response.context["version_rows"]) == min(rows, 25)
    assert len(response.context["intervals"]) == min(rows, 25)
