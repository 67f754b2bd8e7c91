"""Keyset paging of the versions and runs tables: every row once, in order, forwards and backwards, at any depth."""

from __future__ import annotations

import math

import pytest
from django.utils import timezone

from registry.keyset import Key, decode_token, encode_token
from registry.tracking.models import MetricSeries
from registry.tracking.services import Point
from tests.builders import metrics_log
from tests.factories import ExperimentFactory, ModelVersionFactory, RegisteredModelFactory, RunFactory

pytestmark = pytest.mark.django_db

PAGE = 25


def walk(client, url: str, params: dict, rows_key: str, page_key: str) -> tuple[list, list]:
    """Every page from the first by Next, then every page from the last by Previous: the rows in table order."""
    forwards, seen = [], 0
    response = client.get(url, params)
    while True:
        page = response.context[page_key]
        forwards += [row[0] for row in response.context[rows_key]]
        seen += 1
        assert seen < 20
        if not page.has_next:
            break
        assert f"after={page.next_token}" in response.content.decode()
        response = client.get(url, {**params, "after": page.next_token})
    backwards = []
    response = client.get(url, {**params, "last": "1"})
    while True:
        page = response.context[page_key]
        backwards = [row[0] for row in response.context[rows_key]] + backwards
        if not page.has_previous:
            break
        response = client.get(url, {**params, "before": page.previous_token})
    return forwards, backwards


@pytest.fixture
def big_model():
    """60 versions; `accuracy` with ties (v % 7) and a third of the versions without it."""
    model = RegisteredModelFactory(name="big")
    for n in range(1, 61):
        version = ModelVersionFactory(model=model)
        if n % 3:
            metrics_log(run=version.run, points=[Point("accuracy", (n % 7) / 10)])
    return model


def expected_versions(descending: bool) -> list[int]:
    with_value = [n for n in range(1, 61) if n % 3]
    without = [n for n in range(60, 0, -1) if not n % 3]
    ordered = sorted(with_value, key=lambda n: (-(n % 7) if descending else n % 7, -n))
    return ordered + without


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, list(range(60, 0, -1))),
        ({"sort": "version"}, list(range(1, 61))),
        ({"sort": "-accuracy"}, expected_versions(True)),
        ({"sort": "accuracy"}, expected_versions(False)),
    ],
)
def test_versions_page_by_keyset_in_every_order(signed_in, big_model, params, expected):
    forwards, backwards = walk(signed_in, "/models/big/", params, "version_rows", "versions_page")
    assert [v.version for v in forwards] == expected
    assert [v.version for v in backwards] == expected


def test_versions_filtered_by_stage_page_too(signed_in, big_model):
    big_model.versions.filter(version__gt=10).update(stage="Archived")
    forwards, backwards = walk(signed_in, "/models/big/", {"stage": "Archived"}, "version_rows", "versions_page")
    assert [v.version for v in forwards] == [v.version for v in backwards] == list(range(60, 10, -1))


def test_a_version_registered_meanwhile_does_not_shift_the_next_page(signed_in, big_model):
    first = signed_in.get("/models/big/")
    ModelVersionFactory(model=big_model)  # v61, on top: OFFSET paging would repeat v36 on page two
    second = signed_in.get("/models/big/", {"after": first.context["versions_page"].next_token})
    assert [v.version for v, _, _ in second.context["version_rows"]] == list(range(35, 10, -1))


def test_a_token_for_another_order_shows_page_one(signed_in, big_model):
    token = signed_in.get("/models/big/", {"sort": "-accuracy"}).context["versions_page"].next_token
    response = signed_in.get("/models/big/", {"after": token})
    assert [v.version for v, _, _ in response.context["version_rows"]][0] == 60


@pytest.fixture
def busy_experiment():
    """60 runs; a third share one start time (ties broken by run id); `f1` on every other run."""
    experiment = ExperimentFactory(name="busy")
    now = timezone.now()
    for n in range(60):
        run = RunFactory(experiment=experiment, name=f"r{n}", start_time=now if n % 3 == 0 else now.replace(year=2020))
        if n % 2:
            metrics_log(run=run, points=[Point("f1", (n % 5) / 10)])
    return experiment


@pytest.mark.parametrize("order", ["", "-f1", "f1"])
def test_runs_page_by_keyset(signed_in, busy_experiment, order):
    url = f"/experiments/{busy_experiment.pk}/"
    forwards, backwards = walk(signed_in, url, {"order": order} if order else {}, "rows", "page")
    runs = list(busy_experiment.runs.all())
    by_time = sorted(runs, key=lambda r: (r.start_time, r.pk), reverse=True)
    if order:
        values = dict(MetricSeries.objects.filter(key="f1").values_list("run_id", "last_value"))
        with_value = [r for r in by_time if r.pk in values]
        ordered = sorted(with_value, key=lambda r: -values[r.pk] if order.startswith("-") else values[r.pk])
        expected = ordered + [r for r in by_time if r.pk not in values]
    else:
        expected = by_time
    assert [r.pk for r in forwards] == [r.pk for r in expected]
    assert [r.pk for r in backwards] == [r.pk for r in expected]


def test_tokens_round_trip_infinities_and_missing_values():
    keys = [Key("value", True, float, nullable=True), Key("version", True)]

    class Row:
        def __init__(self, value, version):
            self.value, self.version = value, version

    for value in (math.inf, -math.inf, 0.25, None):
        assert decode_token(keys, encode_token(keys, Row(value, 3))) == [value, 3]
    assert decode_token(keys, encode_token(keys, Row(math.nan, 3))) == [None, 3]  # NaN is stored as NULL
    assert decode_token(keys, "not base64 !") is None
    assert decode_token([Key("version", True)], encode_token(keys, Row(1.0, 3))) is None
