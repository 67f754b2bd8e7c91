"""The comparison page: two to four model versions (or runs) side by side."""

from __future__ import annotations

import json
import math
import re

import pytest
from django.db import connection

from registry.tracking.models import MetricPoint, MetricSeries
from registry.tracking.services import Point
from registry.web.views import compare as compare_view
from tests.builders import (
    alias_set,
    dataset_register,
    metrics_log,
    model_create,
    params_log,
    run_create,
    run_input_add,
    version_create,
    version_stage_set,
)
from tests.factories import ExperimentFactory

pytestmark = pytest.mark.django_db

SCHEMA = [{"name": "age", "type": "float64"}, {"name": "plan", "type": "string"}]
PACKAGES = {"numpy": "2.1.0", "scikit-learn": "1.5.2", "joblib": "1.4.2"}


def build(model, n: int, *, params=None, metrics=None, history=(), packages=None, inputs=(), experiment=None):
    """A run with params, final metrics, metric histories and datasets, registered as the next version of `model`."""
    run = run_create(
        experiment=experiment,
        name=f"train-{n}",
        code={"git_commit": f"{n:040x}", "git_branch": "main", "git_dirty": False, "entry_point": "train.py"},
        environment={"python_version": "3.11.7", "platform": "Linux-x86_64", "packages": packages or PACKAGES},
        tags={"team": "growth"},
    )
    if params:
        params_log(run=run, params=params)
    points = [Point(key, value, 0) for key, value in (metrics or {}).items()]
    for key in history:
        points += [Point(key, 1.0 / (step + n), step) for step in range(50)]
    if points:
        metrics_log(run=run, points=points)
    for context, dataset in inputs:
        run_input_add(run=run, dataset=dataset, context=context)
    return version_create(model=model, run=run)


def dataset(name: str, digest: str, rows: int = 100, schema=SCHEMA):
    return dataset_register(name=name, digest=digest, schema=schema, profile={"num_rows": rows, "columns": {}})


def url(*refs: str, **params: str) -> str:
    query = "&".join([f"versions={','.join(refs)}"] + [f"{k}={v}" for k, v in params.items()])
    return f"/compare/?{query}"


def figure(body: str, element_id: str) -> dict:
    match = re.search(rf'<script id="{re.escape(element_id)}" type="application/json">(.*?)</script>', body, re.S)
    assert match, f"no figure {element_id}"
    return json.loads(match.group(1))


@pytest.fixture
def churn(owner):
    model = model_create(name="churn", owner=owner)
    train = dataset("train", "a" * 64, 1000)
    test_a = dataset("holdout", "b" * 64, 200)
    test_b = dataset("holdout", "c" * 64, 250, schema=[*SCHEMA, {"name": "calls", "type": "int64"}])
    build(
        model,
        1,
        params={"learning_rate": 0.1, "max_depth": 4, "optimizer": "adam"},
        metrics={"val_loss": 0.30, "accuracy": 0.90, "f1": 0.8},
        history=["train_loss"],
        inputs=[("training", train), ("test", test_a)],
    )
    v2 = build(
        model,
        2,
        params={"learning_rate": 0.05, "max_depth": 4, "optimizer": "adam"},
        metrics={"val_loss": 0.25, "accuracy": 0.92, "f1": math.nan},
        history=["train_loss"],
        packages={**PACKAGES, "numpy": "2.2.0", "lightgbm": "4.5.0"},
        inputs=[("training", train), ("test", test_b)],
    )
    alias_set(model=model, alias="champion", version=v2)
    version_stage_set(version=v2, stage="Production")
    return model


def test_anonymous_users_are_sent_to_login(client, churn):
    response = client.get(url("churn:1", "churn:2"))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_two_versions_side_by_side(signed_in, churn):
    response = signed_in.get(url("churn:1", "churn:2"))

    assert response.status_code == 200
    body = response.content.decode()
    # Header: model and version, stage, alias, run link.
    assert 'href="/models/churn/versions/2/"' in body
    assert '<span class="badge stage-Production">Production</span>' in body
    assert "@champion" in body
    assert f'href="/runs/{churn.versions.get(version=1).run_id}/"' in body
    # Params: the changed learning rate is highlighted, the equal depth is marked same.
    assert re.search(r'<tr data-same="0"><td class="key">learning_rate</td>.*?class="value changed">0.05<', body, re.S)
    assert re.search(r'<tr data-same="1"><td class="key">max_depth</td>', body)
    # Environment and packages.
    assert "Code and environment" in body and "train.py" in body
    assert "1 added" in body and "1 changed" in body and "lightgbm" in body


def test_best_metric_follows_the_guessed_direction_and_never_marks_nan(signed_in, churn):
    body = signed_in.get(url("churn:1", "churn:2")).content.decode()

    rows = {m.group(1): m.group(0) for m in re.finditer(r'<td class="key">(\w+)\s.*?</tr>', body, re.S)}
    # val_loss: lower is better, v2 (0.25) wins; accuracy: higher is better, v2 (0.92) wins.
    assert re.search(r'class="num best"[^>]*>0.25', rows["val_loss"])
    assert re.search(r'class="num best"[^>]*>0.92', rows["accuracy"])
    assert "▼ lower is better" in rows["val_loss"] and "▲ higher is better" in rows["accuracy"]
    # f1 is NaN in v2: v1's 0.8 is the best, NaN is not.
    assert re.search(r'class="num best"[^>]*>0.8', rows["f1"])
    assert not re.search(r'class="num best"[^>]*>NaN', rows["f1"])


def test_metric_direction_can_be_overridden_in_the_query(signed_in, churn):
    body = signed_in.get(url("churn:1", "churn:2", higher="val_loss", lower="accuracy")).content.decode()

    rows = {m.group(1): m.group(0) for m in re.finditer(r'<td class="key">(\w+)\s.*?</tr>', body, re.S)}
    assert re.search(r'class="num best"[^>]*>0.3', rows["val_loss"])
    assert re.search(r'class="num best"[^>]*>0.9\s', rows["accuracy"])
    assert "▲ higher is better" in rows["val_loss"]
    # The toggle link sets the opposite direction and keeps the rest of the query.
    link = re.search(r'<a class="direction chosen" href="([^"]+)"', rows["val_loss"]).group(1)
    assert "lower=accuracy,val_loss" in link.replace("&amp;", "&") and "versions=churn:1,churn:2" in link


def test_equal_metrics_are_all_best(signed_in, owner):
    model = model_create(name="tie", owner=owner)
    build(model, 1, metrics={"auc": 0.9})
    build(model, 2, metrics={"auc": 0.9})
    build(model, 3, metrics={"auc": 0.8})

    body = signed_in.get(url("tie:1", "tie:2", "tie:3")).content.decode()

    assert len(re.findall(r'class="num best"', body)) == 2


def test_metric_histories_are_overlaid_one_trace_per_build(signed_in, churn):
    body = signed_in.get(url("churn:1", "churn:2")).content.decode()

    chart = figure(body, compare_view._chart_id("train_loss"))
    assert [trace["name"] for trace in chart["data"]] == ["v1", "v2"]
    assert len(chart["data"][0]["x"]) == 50
    assert chart["layout"]["hovermode"] == "x unified"
    bars = figure(body, "bars-figure")
    assert {trace["name"] for trace in bars["data"]} == {"v1", "v2"}
    assert 'src="/static/vendor/plotly-basic.min.js"' in body and "registry/charts.js" in body


def test_parallel_coordinates_colour_by_a_chosen_metric(signed_in, churn):
    body = signed_in.get(url("churn:1", "churn:2", color="accuracy")).content.decode()

    parallel = figure(body, "parallel-figure")
    axes = parallel["layout"]["xaxis"]["ticktext"]
    assert axes[-1] == "accuracy" and "learning_rate" in axes
    assert "optimizer" not in axes  # both builds used adam: an axis where every line meets says nothing
    lines = {trace["name"]: trace for trace in parallel["data"] if trace.get("name")}
    assert set(lines) == {"v1", "v2"}
    assert lines["v1"]["line"]["color"] == "#2f5bea"  # the build's own colour
    scale = parallel["data"][-1]["marker"]
    assert (
        scale["color"] == [0.9, 0.92]
        and scale["showscale"]
        and not scale["reversescale"]
        and scale["colorbar"]["title"]["text"] == "accuracy"
    )


def test_dataset_differences_and_the_evaluation_warning(signed_in, churn):
    body = signed_in.get(url("churn:1", "churn:2")).content.decode()

    assert 'class="callout warn"' in body
    assert "Not a like-for-like comparison (test data): v1 was evaluated on holdout (digest bbbbbbbbbbbb…)" in body
    assert "v2 on holdout (digest cccccccccccc…)" in body
    assert "+50 rows (+25.0%)" in body
    assert "<code>calls</code> (int64)" in body
    assert "/datasets/compare/?ids=" in body


def test_no_warning_when_evaluation_data_is_the_same(signed_in, owner):
    model = model_create(name="same-data", owner=owner)
    test = dataset("holdout", "d" * 64)
    build(model, 1, metrics={"auc": 0.8}, inputs=[("evaluation", test), ("training", dataset("t", "e" * 64))])
    build(model, 2, metrics={"auc": 0.9}, inputs=[("evaluation", test), ("training", dataset("t", "f" * 64))])

    body = signed_in.get(url("same-data:1", "same-data:2")).content.decode()

    assert "like-for-like" not in body
    assert "different data" in body  # training data differs, and the page says so


def test_only_differences_is_on_past_twenty_rows_and_switchable(signed_in, owner):
    model = model_create(name="wide", owner=owner)
    many = {f"p{i:02d}": i for i in range(25)}
    build(model, 1, params=many)
    build(model, 2, params={**many, "p00": 99})

    body = signed_in.get(url("wide:1", "wide:2")).content.decode()
    assert '<section class="card value-table only-diff" id="params">' in body
    assert '<input type="checkbox" data-only-diff="params" checked>' in body
    assert body.count('data-same="1"') >= 24  # equal rows are in the page, hidden by CSS, shown by the switch
    assert "registry/compare.js" in body
    # A short table shows every row unless asked.
    assert '<section class="card value-table" id="environment">' in body

    body = signed_in.get(url("wide:1", "wide:2", diff="0")).content.decode()
    assert '<section class="card value-table" id="params">' in body
    body = signed_in.get(url("wide:1", "wide:2", diff="1")).content.decode()
    assert '<section class="card value-table only-diff" id="environment">' in body


def test_more_than_four_builds_are_refused(signed_in, owner):
    model = model_create(name="many", owner=owner)
    for n in range(5):
        build(model, n)

    response = signed_in.get(url(*(f"many:{n}" for n in range(1, 6))))

    assert response.status_code == 400
    assert "At most 4 builds can be compared at once; you picked 5." in response.content.decode()
    assert "<h1>Compare builds</h1>" in response.content.decode()


def test_duplicates_collapse_before_counting(signed_in, churn):
    response = signed_in.get(url("churn:1", "churn:2", "churn:1", "churn:2", "churn:1"))
    assert response.status_code == 200
    assert response.content.decode().count('<span class="swatch b') >= 2


def test_fewer_than_two_builds_explains_how_to_pick(signed_in, churn):
    response = signed_in.get("/compare/")
    assert response.status_code == 200
    assert "How to pick builds" in response.content.decode()

    response = signed_in.get(url("churn:1"))
    assert response.status_code == 400
    assert "Pick at least two builds to compare." in response.content.decode()


def test_unknown_builds_are_listed(signed_in, churn):
    response = signed_in.get(url("churn:1", "churn:9", "nope:3"))

    assert response.status_code == 404
    body = response.content.decode()
    assert "<li>churn version 9</li>" in body and "<li>nope version 3</li>" in body


def test_unreadable_builds_are_a_bad_request(signed_in, churn):
    response = signed_in.get("/compare/?versions=churn:1,churn:99999999999999&versions=churn")
    assert response.status_code == 400
    body = response.content.decode()
    assert "<code>churn</code>" in body and "<code>churn:99999999999999</code>" in body


@pytest.mark.parametrize(
    "query",
    [
        "versions=churn:1,churn:2&color=nope&diff=banana&lower=,,&higher=%00",
        "versions=churn:1,churn:2&runs=" + "a" * 32,
        "runs=xyz,123",
        "versions=" + "x" * 5000 + ":1,churn:2",
        "versions=churn:1,churn:2&history=nope",
        "versions=:1,churn:2",
    ],
)
def test_bad_query_parameters_never_fail(signed_in, churn, query):
    assert signed_in.get(f"/compare/?{query}").status_code in (200, 400, 404)


def test_model_names_with_colons(signed_in, owner):
    model = model_create(name="team:churn", owner=owner)
    build(model, 1)
    build(model, 2)
    response = signed_in.get(url("team:churn:1", "team:churn:2"))
    assert response.status_code == 200
    assert "team:churn" in response.content.decode()


def test_runs_mode_shows_runs_without_version_fields(signed_in, churn):
    runs = [v.run for v in churn.versions.order_by("version")]

    response = signed_in.get(f"/compare/?runs={runs[0].pk},{runs[1].pk}")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Compare 2 runs" in body and "train-1" in body and "train-2" in body
    assert "Stage</td>" not in body and "Aliases</td>" not in body
    assert re.search(r'class="value changed">0.05<', body)


# Each signed-in request starts with two queries: the session and the user.
SESSION_QUERIES = 2


def _compare_queries(django_assert_num_queries, signed_in, address: str):
    # versions (with model, run, experiment) · aliases · the versions' files (and, when there are some, their scan
    # verdicts) · params · metric summaries · run inputs with datasets · metric points of the charted histories
    with django_assert_num_queries(SESSION_QUERIES + 7):
        response = signed_in.get(address)
    assert response.status_code == 200
    return response


def test_query_count_is_the_same_for_two_small_and_four_large_builds(signed_in, owner, django_assert_num_queries):
    small = model_create(name="small", owner=owner)
    for n in (1, 2):
        build(small, n, metrics={"auc": 0.5 + n / 10}, history=["loss"])
    _compare_queries(django_assert_num_queries, signed_in, url("small:1", "small:2"))

    large = model_create(name="large", owner=owner)
    experiment = ExperimentFactory()
    for n in (1, 2, 3, 4):
        version = build(
            large,
            n,
            params={f"param_{i}": i * n for i in range(40)},
            metrics={f"metric_{i}": i / n for i in range(30)},
            history=["loss", "accuracy", "lr"],
            inputs=[("training", dataset("train", f"{n:064x}")), ("test", dataset("test", "f" * 64))],
            experiment=experiment,
        )
        alias_set(model=large, alias=f"a{n}", version=version)
    response = _compare_queries(django_assert_num_queries, signed_in, url(*(f"large:{n}" for n in range(1, 5))))
    assert response.content.decode().count("data-figure=") >= 5


def test_runs_mode_query_count(signed_in, churn, django_assert_num_queries):
    ids = ",".join(v.run_id for v in churn.versions.all())
    # runs with experiment · params · metric summaries · run inputs with datasets · metric points
    with django_assert_num_queries(SESSION_QUERIES + 5):
        assert signed_in.get(f"/compare/?runs={ids}").status_code == 200


def _long_history(version, key: str, steps: int) -> None:
    """A long history written in one statement: the services would take far longer to log 100,000 points a build."""
    series = MetricSeries.objects.create(run=version.run, key=key, last_value=0.1, min_value=0.0, max_value=1.0)
    table = MetricPoint._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < %s) "
            f"INSERT INTO {table} (series_id, step, timestamp, value) SELECT %s, n, n, (n %% 997) / 997.0 FROM s",
            [steps - 1, series.pk],
        )
    MetricSeries.objects.filter(pk=series.pk).update(count=steps, last_step=steps - 1)


def test_four_long_histories_stay_within_the_page_budget(signed_in, owner):
    model = model_create(name="long", owner=owner)
    for n in range(1, 5):
        _long_history(build(model, n, metrics={"auc": 0.9}), "loss", 100_000)

    response = signed_in.get(url(*(f"long:{n}" for n in range(1, 5))))

    assert response.status_code == 200
    assert len(response.content) < 500_000
    chart = figure(response.content.decode(), compare_view._chart_id("loss"))
    assert len(chart["data"]) == 4
    for trace in chart["data"]:
        assert 1_000 <= len(trace["x"]) <= 2_000
        assert trace["x"][0] == 0 and trace["x"][-1] == 99_999


def test_histories_past_the_inline_budget_load_on_their_own(signed_in, owner, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(compare_view, "MAX_INLINE_ROWS", 100)
    model = model_create(name="lazy", owner=owner)
    build(model, 1, history=["a_loss", "b_loss"])
    build(model, 2, history=["a_loss", "b_loss"])

    body = signed_in.get(url("lazy:1", "lazy:2")).content.decode()
    assert compare_view._chart_id("a_loss") in body  # 100 points: drawn with the page
    match = re.search(r'hx-get="([^"]+history=b_loss[^"]*)"', body)
    assert match, "b_loss is loaded when it scrolls into view"

    # versions · aliases · the versions' files (for the scan) · the metric's summaries · its points
    with django_assert_num_queries(SESSION_QUERIES + 5):
        fragment = signed_in.get(match.group(1).replace("&amp;", "&"), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert "<html" not in text
    assert [t["name"] for t in figure(text, compare_view._chart_id("b_loss"))["data"]] == ["v1", "v2"]


def test_charts_past_the_cap_are_listed_with_links(signed_in, owner, monkeypatch):
    monkeypatch.setattr(compare_view, "MAX_HISTORY_CHARTS", 1)
    model = model_create(name="capped", owner=owner)
    v1 = build(model, 1, history=["a_loss", "b_loss"])
    build(model, 2, history=["a_loss", "b_loss"])

    body = signed_in.get(url("capped:1", "capped:2")).content.decode()

    assert "Not drawn here" in body
    assert f'href="/runs/{v1.run_id}/metrics/b_loss/"' in body


def test_a_version_without_a_run_and_odd_json_never_fail(signed_in, churn):
    version_create(model=churn)  # version 3: registered from outside, no run behind it
    churn.versions.filter(version=1).update(tags=["not", "an", "object"])

    response = signed_in.get(url("churn:1", "churn:3"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "no run recorded" in body
    assert re.search(r'<td class="key">Python</td><td class="value">3.11.7</td><td class="value changed">', body)


def test_changes_from_the_baseline_are_judged_by_direction_and_unknown_ones_say_so(signed_in, owner):
    model = model_create(name="dir", owner=owner)
    build(model, 1, metrics={"val_loss": 0.30, "accuracy": 0.90, "n_trees": 100.0})
    build(model, 2, metrics={"val_loss": 0.25, "accuracy": 0.88, "n_trees": 120.0})

    response = signed_in.get(url("dir:1", "dir:2"))
    cells = {row["key"]: row["cells"][1] for row in response.context["metric_rows"]}
    assert (cells["val_loss"].delta, cells["val_loss"].verdict) == ("−0.05", "better")
    assert (cells["accuracy"].delta, cells["accuracy"].verdict) == ("−0.02", "worse")
    assert (cells["n_trees"].delta, cells["n_trees"].verdict) == ("+20", "unknown")
    body = response.content.decode()
    assert "▲ better" in body and "▼ worse" in body and "? unknown" in body
    assert "Which way is better: Lower is better when the name says loss" in body
    # An unknown direction marks no best value and offers both directions.
    unknown = {row["key"]: row for row in response.context["metric_rows"]}["n_trees"]
    assert not any(cell.best for cell in unknown["cells"])
    assert "higher=n_trees" in unknown["higher_url"] and "lower=n_trees" in unknown["lower_url"]
