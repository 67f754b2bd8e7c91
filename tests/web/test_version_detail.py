"""The version page: one build whole, its charts, its files (and their downloads), lineage and stage history."""

from __future__ import annotations

import io
import json
import math

import pytest

from registry.catalog.models import ArtifactFile
from registry.tracking.services import Point
from tests.builders import (
    alias_set,
    artifact_store,
    dataset_register,
    metrics_log,
    model_create,
    params_log,
    run_create,
    run_input_add,
    run_steps_set,
    version_create,
    version_stage_set,
)
from tests.factories import (
    ArtifactFileFactory,
    ModelVersionFactory,
    ParamFactory,
    RunFactory,
    RunInputFactory,
    RunStepFactory,
    StageChangeFactory,
)

pytestmark = pytest.mark.django_db

URL = "/models/fraud/versions/1/"


def chart_figures(body: str) -> dict[str, dict]:
    figures = {}
    marker = '<script id="metric-chart-'
    start = body.find(marker)
    while start != -1:
        id_end = body.index('"', start + len('<script id="'))
        element_id = body[start + len('<script id="') : id_end]
        content_start = body.index(">", id_end) + 1
        figures[element_id] = json.loads(body[content_start : body.index("</script>", content_start)])
        start = body.find(marker, content_start)
    return figures


@pytest.fixture
def build(owner):
    """A run with everything a build page shows, registered as fraud v1 from its model/ folder."""
    run = run_create(
        name="gbt-7",
        user=owner,
        code={
            "git_remote": "https://git.example.com/risk/fraud.git",
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
            "git_branch": "main",
            "git_dirty": True,
            "entry_point": "train.py --fast",
        },
        environment={"python_version": "3.11.9", "platform": "Linux-x86_64", "packages": {"scikit-learn": "1.5.2"}},
        image="registry.example.com/train@sha256:abc",
    )
    params_log(run=run, params={"learning_rate": 0.05, "max_depth": 6})
    metrics_log(
        run=run,
        points=[Point("loss", 1.0 / (s + 1) + (5.0 if s == 2500 else 0.0), s) for s in range(5000)]
        + [Point("accuracy", 0.93)],
    )
    dataset = dataset_register(name="payments", digest="f" * 64, profile={"num_rows": 1284211})
    run_input_add(run=run, dataset=dataset, context="training")
    run_steps_set(run=run, steps=[{"name": "train", "status": "succeeded", "log_excerpt": "epoch 1 done"}])
    artifact_store(owner=run, path="model/model.pkl", stream=io.BytesIO(b"weights" * 300))
    artifact_store(owner=run, path="model/conf/params.yaml", stream=io.BytesIO(b"lr: 0.05\n"))
    model = model_create(name="fraud", owner=owner)
    version = version_create(
        model=model, run=run, artifact_path="model", created_by=owner, description="Retrained on **May** data."
    )
    alias_set(model=model, alias="champion", version=version)
    version_stage_set(version=version, stage="Staging", by=owner, comment="Smoke tests passed.")
    return version


def test_anonymous_users_are_sent_to_login(client, build):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    "path",
    ["/models/nope/versions/1/", "/models/fraud/versions/2/", "/models/fraud/versions/99999999999999999999/"],
)
def test_unknown_model_or_version_is_404(signed_in, build, path):
    assert signed_in.get(path).status_code == 404


def test_page_shows_the_whole_build(signed_in, build):
    response = signed_in.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    # status, stage, aliases, description
    assert 'class="badge stage-Staging large"' in body
    assert "models:/fraud/" in body
    assert "@champion" in body
    assert "Retrained on <strong>May</strong> data." in body
    # params and final metrics
    assert "learning_rate" in body and "0.05" in body
    accuracy = next(m for m in response.context["metrics"] if m.key == "accuracy")
    loss = next(m for m in response.context["metrics"] if m.key == "loss")
    assert (loss.count, loss.last_step) == (5000, 4999)
    assert loss.max_value == pytest.approx(5.0 + 1 / 2501)
    assert accuracy.last_value == 0.93
    assert f'href="/runs/{build.run_id}/metrics/loss/"' in body
    # datasets, environment, code, image, steps
    assert "payments" in body and "ffffffffffff" in body and "1,284,211" in body
    assert f'href="/datasets/{build.run.inputs.get().dataset_id}/"' in body
    assert "3.11.9" in body and "scikit-learn" in body and "1.5.2" in body
    assert "git.example.com/risk/fraud.git" in body and "0123456789ab" in body and "dirty" in body
    assert "train.py --fast" in body
    assert "registry.example.com/train@sha256:abc" in body
    assert "epoch 1 done" in body
    # lineage, stage history
    assert "Lineage" in body and "Default" in body and "gbt-7" in body
    assert "Smoke tests passed." in body
    assert response.context["breadcrumbs"] == [
        ("Models", "/models/"),
        ("fraud", "/models/fraud/"),
        ("Version 1", None),
    ]


def test_artifacts_are_a_tree_with_sizes_hashes_and_download_links(signed_in, build):
    response = signed_in.get(URL)
    tree = [(folder, [f.filename for f in files]) for folder, files in response.context["artifact_tree"]]
    assert tree == [("", ["model.pkl"]), ("conf", ["params.yaml"])]
    body = response.content.decode()
    assert 'href="/models/fraud/versions/1/artifacts/conf/params.yaml"' in body
    assert "2.1\xa0KB" in body  # 2,100 bytes, humanised
    pkl = ArtifactFile.objects.get(version=build, path="model.pkl")
    assert pkl.sha256[:16] in body


def test_artifact_download_streams_the_file_as_an_attachment(signed_in, build):
    response = signed_in.get("/models/fraud/versions/1/artifacts/conf/params.yaml")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"lr: 0.05\n"
    assert response["Content-Disposition"] == 'attachment; filename="params.yaml"'


def test_a_browser_resumes_a_download_with_range(signed_in, build):
    url = "/models/fraud/versions/1/artifacts/model.pkl"
    whole = b"weights" * 300
    assert b"".join(signed_in.get(url).streaming_content) == whole
    rest = signed_in.get(url, HTTP_RANGE="bytes=2000-")
    assert rest.status_code == 206 and b"".join(rest.streaming_content) == whole[2000:]
    assert rest["Content-Range"] == f"bytes 2000-{len(whole) - 1}/{len(whole)}"
    refused = signed_in.get(url, HTTP_RANGE=f"bytes={len(whole)}-")
    assert refused.status_code == 416 and refused["Content-Range"] == f"bytes */{len(whole)}"


@pytest.mark.parametrize(
    "path",
    [
        "/models/fraud/versions/1/artifacts/nope.bin",
        "/models/fraud/versions/1/artifacts/../../secret",
        "/models/fraud/versions/9/artifacts/model.pkl",
        "/models/fraud/versions/99999999999/artifacts/model.pkl",
    ],
)
def test_artifact_download_of_unknown_files_is_404(signed_in, build, path):
    assert signed_in.get(path).status_code == 404


@pytest.mark.parametrize("store", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_file_whose_blob_is_gone_is_a_404_page_that_says_so(request, signed_in, build, store):
    if store == "s3":
        request.getfixturevalue("s3_artifacts")
    ArtifactFileFactory(run=None, version=build, path="ghost.md", storage_key="nowhere/ghost.md", size=12)
    response = signed_in.get("/models/fraud/versions/1/artifacts/ghost.md")
    assert response.status_code == 404
    assert "missing from the artifact store" in response.content.decode()
    preview = signed_in.get("/models/fraud/versions/1/preview/ghost.md")
    assert preview.status_code == 200 and "The file is missing from the artifact store." in preview.content.decode()


def test_artifact_download_needs_a_signed_in_user(client, build):
    response = client.get("/models/fraud/versions/1/artifacts/model.pkl")
    assert response.status_code == 302


def test_long_histories_are_downsampled_and_single_values_are_not_charted(signed_in, build):
    response = signed_in.get(URL)
    figures = chart_figures(response.content.decode())
    assert list(figures) == ["metric-chart-0"]  # loss; accuracy has a single point
    trace = figures["metric-chart-0"]["data"][0]
    assert len(trace["x"]) <= 2000
    assert trace["x"] == sorted(trace["x"])
    assert trace["x"][0] == 0 and trace["x"][-1] == 4999
    assert 2500 in trace["x"] and max(trace["y"]) == pytest.approx(5.0 + 1 / 2501)  # the spike survives
    assert "Full resolution" in response.content.decode()
    assert "plotly-basic.min.js" in response.content.decode()


def test_version_without_a_run(signed_in, owner):
    model = model_create(name="fraud", owner=owner)
    version_create(model=model)
    response = signed_in.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "registered without a run" in body
    assert "plotly-basic.min.js" not in body


def test_nan_and_infinite_metrics_are_spelled_out(signed_in, owner):
    run = RunFactory()
    metrics_log(run=run, points=[Point("gap", math.nan), Point("blowup", math.inf)])
    ModelVersionFactory(model__name="fraud", run=run)
    body = signed_in.get(URL).content.decode()
    assert ">NaN<" in body
    assert ">∞<" in body


def _build_rows(count: int):
    run = RunFactory()
    for n in range(count):
        ParamFactory(run=run, key=f"p{n}")
        metrics_log(run=run, points=[Point(f"m{n}", n)])
        RunInputFactory(run=run)
        RunStepFactory(run=run, position=n + 1)
    version = ModelVersionFactory(model__name="fraud", run=run)
    for n in range(count):
        ArtifactFileFactory(run=None, version=version, path=f"dir{n % 3}/f{n}.bin", storage_key=f"k{n}")
        StageChangeFactory(version=version, from_stage="None", to_stage="Staging")
    alias_set(model=version.model, alias="champion", version=version)
    return run


@pytest.mark.parametrize("rows", [1, 50])
def test_query_count_does_not_grow_with_rows(signed_in, django_assert_num_queries, rows):
    _build_rows(rows)
    # session, user, version (model, creator, run, experiment and run user joined), aliases, artifacts,
    # stage changes (with who made them), params, metric summaries, dataset inputs (with datasets), steps, the user's
    # level on the model (their grants); the stage panel: the model's policy and its gates, the user's permissions
    # (user, groups), their stage rights on the model (grants), the version's pending requests; for the aliases
    # section the model's aliases (with their versions) and the aliases its policy protects; the model card (the
    # model's and the version's own, one query); the files' scan verdicts, and for the default Production gate's
    # file scan the version's files and their verdicts (a version without files skips both verdict reads: 21).
    # Single-point metrics draw no chart, so no history query.
    with django_assert_num_queries(23):
        response = signed_in.get(URL)
    assert len(response.context["params"]) == rows


def test_charted_metrics_cost_one_history_query_whatever_their_number(signed_in, django_assert_num_queries):
    run = RunFactory()
    metrics_log(run=run, points=[Point(k, s, s) for s in range(10) for k in ("loss", "accuracy", "f1")])
    ModelVersionFactory(model__name="fraud", run=run)
    # the twenty-one queries of a version without files, then one (series, step, value) read for every charted metric
    # at once.
    with django_assert_num_queries(22):
        response = signed_in.get(URL)
    assert len(response.context["charts"]) == 3


def test_long_histories_are_read_once_then_served_from_their_cached_preview(signed_in, django_assert_num_queries):
    run = RunFactory()
    points = [Point("loss", 1.0 / (s + 1), s) for s in range(3000)] + [
        Point("accuracy", s / 3000, s) for s in range(3000)
    ]
    points[1234] = Point("loss", 50.0, 1234)  # a spike that downsampling must keep
    metrics_log(run=run, points=points)
    ModelVersionFactory(model__name="fraud", run=run)
    # First view: the twenty-one queries of a version without files, the previews (none yet), both full histories, the
    # preview upsert.
    with django_assert_num_queries(24):
        first = signed_in.get(URL)
    # Later views: the twenty-one queries of a version without files and the previews.
    with django_assert_num_queries(22):
        again = signed_in.get(URL)
    for response in (first, again):
        charts = {chart["series"].key: chart for chart in response.context["charts"]}
        loss = charts["loss"]["figure"]["data"][0]
        assert len(loss["x"]) <= 2000 and 50.0 in loss["y"]
        assert loss["x"] == sorted(loss["x"])
        assert charts["loss"]["downsampled"]
