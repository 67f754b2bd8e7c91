"""The dataset pages: the list, one dataset's schema and profile, and two datasets compared with drift scores."""

from __future__ import annotations

import json
import re
import statistics

import pytest
from django.utils import timezone
from registry_client.profiling import profile_table

from registry.lib import diff
from registry.tracking.models import Dataset
from tests.builders import dataset_register, run_create, run_input_add
from tests.factories import DatasetFactory, RunFactory, RunInputFactory

pytestmark = pytest.mark.django_db

# Each signed-in request starts with two queries: the session and the user.
SESSION_QUERIES = 2


def register(name: str, columns: dict, **kwargs) -> Dataset:
    """A dataset described the way the client does it, through the service the API uses."""
    described = profile_table(columns)
    return dataset_register(
        name=name,
        digest=described.digest,
        schema=described.schema,
        profile=described.profile,
        source_uri=f"s3://data/{name}.parquet",
        source_type="parquet",
        **kwargs,
    )


def figure(body: str, element_id: str) -> dict:
    match = re.search(rf'<script id="{re.escape(element_id)}" type="application/json">(.*?)</script>', body, re.S)
    assert match, f"no figure {element_id}"
    return json.loads(match.group(1))


@pytest.fixture
def churn_v1():
    return register(
        "churn-train",
        {
            "age": [20 + i % 50 for i in range(400)],
            "income": [1000.0 * (i % 37) for i in range(400)],
            "plan": ["basic", "pro", "basic", "team"] * 100,
            "churned": [i % 5 == 0 for i in range(400)],
        },
    )


@pytest.fixture
def churn_v2():
    return register(
        "churn-train",
        {
            "age": [45 + i % 50 for i in range(500)],  # older customers: the distribution moved
            "income": [1000.0 * (i % 37) for i in range(500)],
            "plan": ["basic", "pro", "enterprise", "enterprise"] * 125,
            "churned": [i % 5 == 0 for i in range(500)],
            "calls": [i % 7 for i in range(500)],
        },
    )


LINK = re.compile(r'<a href="/datasets/\d+/">')


# --- The list -------------------------------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_login(client, churn_v1, churn_v2):
    for address in ("/datasets/", f"/datasets/{churn_v1.pk}/", f"/datasets/compare/?ids={churn_v1.pk},{churn_v2.pk}"):
        response = client.get(address)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_list_shows_each_dataset_with_its_size_source_and_uses(signed_in, churn_v1):
    run = RunFactory()
    run_input_add(run=run, dataset=churn_v1, context="training")
    run_input_add(run=run, dataset=churn_v1, context="validation")  # the same run twice counts once
    run_input_add(run=RunFactory(), dataset=churn_v1, context="training")

    response = signed_in.get("/datasets/")

    assert response.status_code == 200
    body = response.content.decode()
    row = re.search(rf'<a href="/datasets/{churn_v1.pk}/">churn-train</a>.*?</tr>', body, re.S).group(0)
    assert churn_v1.digest[:12] in row
    cells = re.findall(r'<td class="num">(.*?)</td>', row)
    assert cells == ["400", "4", "2"]  # rows, columns, runs
    assert "s3://data/churn-train.parquet" in row and "parquet" in row


def test_list_search_by_name_and_empty_states(signed_in, churn_v1):
    DatasetFactory(name="fraud-events")

    body = signed_in.get("/datasets/?q=CHURN").content.decode()
    assert "churn-train" in body and "fraud-events" not in body

    body = signed_in.get("/datasets/?q=nothing-like-this").content.decode()
    assert "No dataset name contains “nothing-like-this”." in body

    Dataset.objects.all().delete()
    body = signed_in.get("/datasets/").content.decode()
    assert "No datasets yet." in body and "log_dataset" in body


def test_list_is_paginated(signed_in):
    DatasetFactory.create_batch(51, name="many")
    first = signed_in.get("/datasets/").content.decode()
    assert len(LINK.findall(first)) == 50 and "1–50 of 51" in first and "page=2" in first
    second = signed_in.get("/datasets/?page=2").content.decode()
    assert len(LINK.findall(second)) == 1
    assert signed_in.get("/datasets/?page=abc").status_code == 200


@pytest.mark.parametrize("rows", [1, 50])
def test_list_query_count_does_not_grow_with_rows(signed_in, django_assert_num_queries, rows):
    for dataset in DatasetFactory.create_batch(rows):
        RunInputFactory(dataset=dataset)
    # the page count · the page of datasets with their run counts
    with django_assert_num_queries(SESSION_QUERIES + 2):
        response = signed_in.get("/datasets/")
    assert len(LINK.findall(response.content.decode())) == rows


# --- One dataset ------------------------------------------------------------------------------------------------------


def test_detail_shows_schema_statistics_charts_and_runs(signed_in, churn_v1, churn_v2):
    run = RunFactory(name="nightly-train")
    run_input_add(run=run, dataset=churn_v1, context="validation")

    response = signed_in.get(f"/datasets/{churn_v1.pk}/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "<h2>Schema</h2>" in body and "<code>income</code>" in body and "float64" in body
    age = re.search(r"<tr><td><code>age</code>.*?</tr>", body[body.index("Numeric columns") :], re.S).group(0)
    ages = [20 + i % 50 for i in range(400)]
    expected = ["0", "44.5", diff.format_number(statistics.stdev(ages))]
    assert re.findall(r'<td class="num">(.*?)</td>', age)[:3] == expected
    assert "basic" in body and "Most frequent values" in body
    histogram = figure(body, "column-0")
    assert histogram["data"][0]["type"] == "bar" and sum(histogram["data"][0]["y"]) == 400
    top = figure(body, "column-2")
    assert top["data"][0]["x"] == ["basic", "pro", "team"]
    assert f'href="/runs/{run.pk}/"' in body and "validation" in body
    # The other digest of the same name is offered for comparison.
    assert f'<option value="{churn_v1.pk},{churn_v2.pk}">' in body
    assert 'action="/datasets/compare/"' in body


def test_detail_without_profile_or_with_a_malformed_one_never_fails(signed_in):
    bare = DatasetFactory(schema=[], profile={})
    body = signed_in.get(f"/datasets/{bare.pk}/").content.decode()
    assert "No profile was recorded" in body and "No other version" in body

    odd = DatasetFactory(
        schema=[{"name": "x", "type": "float64"}, "junk", {"type": "nameless"}],
        profile={
            "num_rows": "many",
            "columns": {"x": {"mean": "high", "histogram": {"bins": [0, 1], "counts": [1, 2, 3]}}, "y": None},
        },
    )
    response = signed_in.get(f"/datasets/{odd.pk}/")
    assert response.status_code == 200
    assert "<code>x</code>" in response.content.decode()


def test_detail_of_an_unknown_dataset_is_404(signed_in):
    assert signed_in.get("/datasets/999999/").status_code == 404
    assert signed_in.get("/datasets/99999999999999999999999/").status_code == 404


def test_detail_query_count(signed_in, churn_v1, churn_v2, django_assert_num_queries):
    for _ in range(5):
        RunInputFactory(dataset=churn_v1)
    # the dataset with its number of uses · the latest runs using it with their experiments · other digests
    with django_assert_num_queries(SESSION_QUERIES + 3):
        assert signed_in.get(f"/datasets/{churn_v1.pk}/").status_code == 200


# --- Two datasets -----------------------------------------------------------------------------------------------------


def test_compare_shows_schema_changes_row_change_and_drift(signed_in, churn_v1, churn_v2, django_assert_num_queries):
    # both datasets
    with django_assert_num_queries(SESSION_QUERIES + 1):
        response = signed_in.get(f"/datasets/compare/?ids={churn_v1.pk},{churn_v2.pk}")

    assert response.status_code == 200
    body = response.content.decode()
    assert "+100 rows (+25.0%)" in body
    assert "<code>calls</code>" in body and "added" in body
    section = body[body.index('id="drift"') :]
    section = section[: section.index("</section>")]
    drift = dict(re.findall(r"<tr><td><code>(\w+)</code>.*?badge drift-(\w+)", section, re.S))
    assert drift["age"] == "significant"
    assert drift["plan"] == "significant"
    assert drift["income"] == "none" and drift["churned"] == "none"
    assert "calls" not in drift  # only in the new dataset: nothing to compare it with
    assert 'class="callout warn"' in body
    # Overlaid histograms as shares of rows, and statistics side by side with changes highlighted.
    overlay = figure(body, "overlay-0")
    assert [t["name"] for t in overlay["data"]] == [churn_v1.digest[:8], churn_v2.digest[:8]]
    assert sum(overlay["data"][0]["y"]) == pytest.approx(100, abs=0.01)
    assert re.search(r'class="num changed">69.5<', body)  # the new mean age


def test_compare_datasets_of_different_names_labels_them_by_name(signed_in, churn_v1):
    other = register("fraud", {"age": [1, 2, 3]})
    body = signed_in.get(f"/datasets/compare/?ids={churn_v1.pk},{other.pk}").content.decode()
    assert f"fraud ({other.digest[:8]})" in body


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, "Pick exactly two different datasets"),
        ("?ids=1", 400, "Pick exactly two different datasets"),
        ("?ids={a},{a}", 400, "Pick exactly two different datasets"),
        ("?ids={a},{b},{a}", 200, ""),
        ("?ids={a},x", 400, "is not a dataset id"),
        ("?ids={a},-3", 400, "is not a dataset id"),
        ("?ids={a},99999999999999999999999", 400, "is not a dataset id"),
        ("?ids={a},999999", 404, "No dataset with id 999999."),
        ("?ids={a}&ids={b}", 200, ""),
    ],
)
def test_compare_bad_ids_are_explained(signed_in, churn_v1, churn_v2, query, status, message):
    response = signed_in.get("/datasets/compare/" + query.format(a=churn_v1.pk, b=churn_v2.pk))
    assert response.status_code == status
    assert message in response.content.decode()


def test_compare_datasets_without_profiles_never_fails(signed_in):
    a = DatasetFactory(profile={}, schema=[{"name": "x", "type": "int64"}])
    b = DatasetFactory(profile={"num_rows": 3, "columns": {"x": {"top": "bad"}}}, schema="not a list")
    response = signed_in.get(f"/datasets/compare/?ids={a.pk},{b.pk}")
    assert response.status_code == 200
    assert "unknown" in response.content.decode()


def test_runs_that_used_a_dataset_link_to_their_pages(signed_in, churn_v1):
    run = run_create(name="eval-run")
    run_input_add(run=run, dataset=churn_v1, context="evaluation")
    body = signed_in.get(f"/datasets/{churn_v1.pk}/").content.decode()
    assert f'<a href="/runs/{run.pk}/">eval-run</a>' in body
    assert '<span class="badge tag">evaluation</span>' in body


def test_deleted_runs_are_neither_counted_nor_listed(signed_in, churn_v1):
    gone = RunFactory(name="gone", deleted_at=timezone.now())
    run_input_add(run=gone, dataset=churn_v1, context="training")

    listing = signed_in.get("/datasets/").content.decode()
    row = re.search(rf'<a href="/datasets/{churn_v1.pk}/">.*?</tr>', listing, re.S).group(0)
    assert re.findall(r'<td class="num">(.*?)</td>', row)[-1] == "0"
    detail = signed_in.get(f"/datasets/{churn_v1.pk}/").content.decode()
    assert "gone" not in detail and "No run has used this dataset yet." in detail
