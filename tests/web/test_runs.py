"""The run page, its artifact downloads, and one metric's full history (chart and CSV)."""

from __future__ import annotations

import io
import json
import math

import pytest
from django.utils import timezone

from registry.tracking.services import Point
from registry.web.views import browse
from tests.builders import (
    artifact_store,
    metrics_log,
    model_create,
    params_log,
    run_steps_set,
    version_create,
    version_stage_set,
)
from tests.factories import (
    ArtifactFileFactory,
    ExperimentFactory,
    ModelVersionFactory,
    ParamFactory,
    RunFactory,
    RunInputFactory,
    RunStepFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(owner):
    run = RunFactory(experiment=ExperimentFactory(name="fraud"), name="gbt-7", user=owner, image="img@sha256:1")
    params_log(run=run, params={"learning_rate": 0.05})
    metrics_log(run=run, points=[Point("loss", 1 / (s + 1), s) for s in range(100)] + [Point("auc", 0.9)])
    run_steps_set(run=run, steps=[{"name": "evaluate", "status": "failed"}])
    artifact_store(owner=run, path="model/model.pkl", stream=io.BytesIO(b"weights"))
    artifact_store(owner=run, path="report.html", stream=io.BytesIO(b"<script>alert(1)</script>"))
    return run


def test_run_page_needs_a_signed_in_user(client, run):
    assert client.get(f"/runs/{run.pk}/").status_code == 302


def test_unknown_or_deleted_run_is_404(signed_in, run):
    assert signed_in.get("/runs/" + "0" * 32 + "/").status_code == 404
    assert signed_in.get("/runs/not-a-run-id/").status_code == 404
    deleted = RunFactory(deleted_at=timezone.now())
    assert signed_in.get(f"/runs/{deleted.pk}/").status_code == 404


def test_run_page_shows_the_build_and_its_registered_versions(signed_in, run, owner):
    model = model_create(name="fraud-model", owner=owner)
    version = version_create(model=model, run=run, artifact_path="model")
    version_stage_set(version=version, stage="Production")

    response = signed_in.get(f"/runs/{run.pk}/")

    body = response.content.decode()
    assert "gbt-7" in body and "Finished" in body
    assert "learning_rate" in body
    assert 'href="/models/fraud-model/versions/1/"' in body
    assert '<span class="badge stage-Production">Production</span>' in body
    assert "img@sha256:1" in body
    assert "evaluate" in body and "status-failed" in body
    assert f'href="/runs/{run.pk}/artifacts/model/model.pkl"' in body
    assert [c["series"].key for c in response.context["charts"]] == ["loss"]
    assert response.context["breadcrumbs"] == [
        ("Experiments", "/experiments/"),
        ("fraud", f"/experiments/{run.experiment_id}/"),
        ("gbt-7", None),
    ]
    assert response.context["nav"] == "experiments"


def test_run_artifact_download(signed_in, run):
    response = signed_in.get(f"/runs/{run.pk}/artifacts/report.html")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="report.html"'
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"
    assert signed_in.get(f"/runs/{run.pk}/artifacts/nope").status_code == 404
    assert signed_in.get("/runs/" + "0" * 32 + "/artifacts/report.html").status_code == 404


def _run_rows(count: int):
    run = RunFactory()
    for n in range(count):
        ParamFactory(run=run, key=f"p{n}")
        metrics_log(run=run, points=[Point(f"m{n}", n)])
        RunInputFactory(run=run)
        RunStepFactory(run=run, position=n + 1)
        ArtifactFileFactory(run=run, path=f"d{n % 4}/f{n}")
        ModelVersionFactory(run=run)
    return run


@pytest.mark.parametrize("rows", [1, 50])
def test_run_page_query_count_does_not_grow_with_rows(signed_in, django_assert_num_queries, rows):
    run = _run_rows(rows)
    # session, user, run (experiment and user joined), the user's grants on the experiment, params, metric summaries,
    # inputs (with datasets), steps, artifacts, the artifacts' scan verdicts, registered versions (with their
    # models). Single-point metrics draw no chart.
    with django_assert_num_queries(11):
        response = signed_in.get(f"/runs/{run.pk}/")
    assert len(response.context["run"].model_versions.all()) == rows


# --- Metric history -------------------------------------------------------------------------------------------------


def history_figure(response) -> dict:
    body = response.content.decode()
    start = body.index('<script id="history-figure" type="application/json">')
    start = body.index(">", start) + 1
    return json.loads(body[start : body.index("</script>", start)])


def test_history_needs_a_signed_in_user(client, run):
    assert client.get(f"/runs/{run.pk}/metrics/loss/").status_code == 302


def test_unknown_metric_or_run_is_404(signed_in, run):
    assert signed_in.get(f"/runs/{run.pk}/metrics/nope/").status_code == 404
    assert signed_in.get("/runs/" + "0" * 32 + "/metrics/loss/").status_code == 404


def test_history_draws_every_point_when_it_fits(signed_in, run, django_assert_num_queries):
    # session, user, the series (run and experiment joined), the user's grants on the experiment, the experiment's
    # other runs with this metric (the overlay picker), its points
    with django_assert_num_queries(6):
        response = signed_in.get(f"/runs/{run.pk}/metrics/loss/")
    trace = history_figure(response)["data"][0]
    assert trace["x"] == list(range(100))
    assert "Every point is drawn." in response.content.decode()
    assert 'href="?format=csv"' in response.content.decode()


def test_other_runs_overlay_the_history_in_a_constant_number_of_queries(
    signed_in, run, owner, django_assert_num_queries
):
    others = [RunFactory(experiment=run.experiment, name=f"gbt-{n}", user=owner) for n in range(8, 13)]
    for n, other in enumerate(others):
        metrics_log(run=other, points=[Point("loss", 1 / (s + 2 + n), s) for s in range(10)])
    elsewhere = RunFactory(experiment=ExperimentFactory(name="elsewhere"), name="stranger", user=owner)
    metrics_log(run=elsewhere, points=[Point("loss", 0.1, 0), Point("loss", 0.2, 1)])

    plain = signed_in.get(f"/runs/{run.pk}/metrics/loss/")
    body = plain.content.decode()
    assert "Overlay another run of this experiment" in body
    assert "gbt-12" in body and "stranger" not in body  # only runs of the same experiment are offered
    picked = "&".join(f"overlay={other.pk}" for other in others[:4])  # four asked, three drawn
    with django_assert_num_queries(6):
        response = signed_in.get(f"/runs/{run.pk}/metrics/loss/?overlay={elsewhere.pk}&{picked}")
    figure = history_figure(response)
    assert [trace["name"] for trace in figure["data"]] == ["gbt-7", "gbt-8", "gbt-9", "gbt-10"]
    assert figure["data"][1]["y"][:2] == [0.5, 1 / 3]
    assert figure["layout"]["showlegend"] and figure["controls"] == ["log", "smooth"]
    assert "(three at most)" in response.content.decode()
    assert f'href="?overlay={others[1].pk}&amp;overlay={others[2].pk}"' in response.content.decode()


def test_history_over_budget_is_downsampled_with_a_note(signed_in, run, monkeypatch):
    monkeypatch.setattr(browse, "FULL_HISTORY_POINTS", 20)
    response = signed_in.get(f"/runs/{run.pk}/metrics/loss/")
    trace = history_figure(response)["data"][0]
    assert len(trace["x"]) <= 20
    assert trace["x"][0] == 0 and trace["x"][-1] == 99
    assert "Drawn from 20 of 100 points" in response.content.decode()


def test_metric_keys_with_slashes_have_their_history_page(signed_in, run):
    metrics_log(run=run, points=[Point("val/loss", 0.5, 1), Point("val/loss", 0.4, 2)])
    response = signed_in.get(f"/runs/{run.pk}/metrics/val/loss/")
    assert response.status_code == 200
    assert history_figure(response)["data"][0]["y"] == [0.5, 0.4]


def test_csv_streams_every_point_in_step_order(signed_in, run):
    metrics_log(
        run=run, points=[Point("odd", math.nan, 2, 30), Point("odd", math.inf, 1, 20), Point("odd", 0.1, 0, 10)]
    )
    response = signed_in.get(f"/runs/{run.pk}/metrics/odd/", {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{run.pk}-odd.csv"'
    content = b"".join(response.streaming_content).decode()
    assert content.splitlines() == ["step,timestamp,value", "0,10,0.1", "1,20,Infinity", "2,30,NaN"]


def test_csv_has_all_points_beyond_the_chart_budget(signed_in, run):
    content = b"".join(signed_in.get(f"/runs/{run.pk}/metrics/loss/", {"format": "csv"}).streaming_content)
    assert len(content.decode().splitlines()) == 101
