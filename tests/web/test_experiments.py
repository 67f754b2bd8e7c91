"""Experiments: the list, and one experiment's runs with chosen columns, metric filters and metric ordering."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from registry.audit.models import AuditAction, AuditEvent
from registry.tracking import services as tracking
from registry.tracking.models import Experiment
from registry.tracking.services import Point
from registry.web.query import MetricFilter, key_list, metric_filters, metric_order, parse_metric_filter
from tests.builders import metrics_log, params_log
from tests.factories import ExperimentFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db


def run_with(experiment, name: str, metrics: dict[str, float], params: dict | None = None, **kwargs):
    run = RunFactory(experiment=experiment, name=name, **kwargs)
    metrics_log(run=run, points=[Point(key, value) for key, value in metrics.items()])
    if params:
        params_log(run=run, params=params)
    return run


def run_names(response) -> list[str]:
    return [run.name for run, _, _ in response.context["rows"]]


# --- List -----------------------------------------------------------------------------------------------------------


def test_list_needs_a_signed_in_user(client):
    assert client.get("/experiments/")["Location"] == "/login/?next=/experiments/"


def test_list_shows_run_counts_and_last_run(signed_in):
    now = timezone.now()
    fraud = ExperimentFactory(name="fraud", description="Card payments.")
    RunFactory(experiment=fraud, start_time=now - timedelta(days=2))
    RunFactory(experiment=fraud, start_time=now - timedelta(hours=1))
    RunFactory(experiment=fraud, deleted_at=now)  # deleted runs are not counted
    ExperimentFactory(name="gone", deleted_at=now)

    response = signed_in.get("/experiments/")

    rows = {e.name: (e.run_count, e.last_run_at) for e in response.context["page"]}
    assert rows["fraud"][0] == 2
    assert rows["fraud"][1] == now - timedelta(hours=1)
    assert rows["Default"] == (0, None)
    assert "gone" not in rows
    body = response.content.decode()
    assert "Card payments." in body and 'href="/experiments/' in body
    assert response.context["nav"] == "experiments"


def test_list_search_and_sort(signed_in):
    now = timezone.now()
    RunFactory(experiment=ExperimentFactory(name="churn"), start_time=now)
    RunFactory(experiment=ExperimentFactory(name="fraud", description="payments"), start_time=now - timedelta(days=1))
    assert [e.name for e in signed_in.get("/experiments/", {"q": "PAYM"}).context["page"]] == ["fraud"]
    recent = [e.name for e in signed_in.get("/experiments/", {"sort": "-last_run"}).context["page"]]
    assert recent == ["churn", "fraud", "Default"]
    assert signed_in.get("/experiments/", {"sort": "bogus", "page": "x"}).status_code == 200


def test_list_htmx_gets_only_the_table(signed_in):
    response = signed_in.get("/experiments/", {"q": "def"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="experiments")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="experiments"')
    assert "Default" in body and "<html" not in body


@pytest.mark.parametrize("rows", [1, 50])
def test_list_query_count_does_not_grow_with_rows(signed_in, django_assert_num_queries, rows):
    for n in range(rows):
        experiment = ExperimentFactory(name=f"exp-{n:02d}")
        RunFactory.create_batch(2, experiment=experiment)
    # session, user, COUNT for the paginator, the page of experiments with run count and last run as subqueries
    with django_assert_num_queries(4):
        response = signed_in.get("/experiments/")
    assert len(response.context["page"]) == min(rows + 1, 25)


# --- Detail ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def fraud():
    experiment = ExperimentFactory(name="fraud")
    now = timezone.now()
    run_with(experiment, "a", {"accuracy": 0.95, "f1": 0.9, "loss": 0.1}, {"lr": 0.1, "depth": 3}, start_time=now)
    run_with(experiment, "b", {"accuracy": 0.85, "f1": 0.8}, {"lr": 0.2, "depth": 4}, start_time=now - timedelta(1))
    run_with(experiment, "c", {"accuracy": 0.91, "auc": 0.7}, {"lr": 0.3}, start_time=now - timedelta(2))
    run_with(experiment, "d", {"f1": 0.5}, {"seed": 1}, start_time=now - timedelta(3))
    return experiment


def url(experiment) -> str:
    return f"/experiments/{experiment.pk}/"


def test_detail_needs_a_signed_in_user(client, fraud):
    assert client.get(url(fraud)).status_code == 302


@pytest.mark.parametrize("path", ["/experiments/999999/", "/experiments/99999999999999999999999/"])
def test_unknown_experiment_is_404(signed_in, path):
    assert signed_in.get(path).status_code == 404


def test_deleted_experiment_is_404(signed_in):
    experiment = ExperimentFactory(deleted_at=timezone.now())
    assert signed_in.get(url(experiment)).status_code == 404


def test_default_columns_are_the_most_common_keys(signed_in, fraud):
    response = signed_in.get(url(fraud))
    assert response.context["params"] == ["lr", "depth", "seed"]
    # accuracy and f1 tie at three runs each, the tie broken by name; auc and loss tie at one.
    assert [c["key"] for c in response.context["metric_columns"]] == ["accuracy", "f1", "auc"]
    assert run_names(response) == ["a", "b", "c", "d"]
    first = response.context["rows"][0]
    assert first[1] == ["0.1", "3", None]
    assert first[2] == [0.95, 0.9, None]
    assert response.context["breadcrumbs"] == [("Experiments", "/experiments/"), ("fraud", None)]


def test_columns_are_chosen_from_the_query_string(signed_in, fraud):
    response = signed_in.get(url(fraud), {"params": "depth", "metrics": "loss,accuracy"})
    assert response.context["params"] == ["depth"]
    assert response.context["rows"][0][2] == [0.1, 0.95]
    body = response.content.decode()
    assert ">loss<" in body and ">depth<" in body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accuracy>0.9", ["a", "c"]),
        ("accuracy >= 0.91", ["a", "c"]),
        ("accuracy<0.9", ["b"]),
        ("accuracy<=0.85", ["b"]),
        ("accuracy=0.85", ["b"]),
        ("accuracy==0.85", ["b"]),
        ("accuracy!=0.85", ["a", "c"]),
        ("accuracy>0.8, f1>0.85", ["a"]),
        ("f1>-1e3", ["a", "b", "d"]),
    ],
)
def test_metric_filters(signed_in, fraud, text, expected):
    response = signed_in.get(url(fraud), {"filter": text})
    assert run_names(response) == expected
    assert response.context["problems"] == []


@pytest.mark.parametrize("text", ["accuracy", "accuracy>", "accuracy>high", ">0.9", "accuracy~0.9", "a>1;drop"])
def test_malformed_filters_are_ignored_with_a_message(signed_in, fraud, text):
    response = signed_in.get(url(fraud), {"filter": text})
    assert response.status_code == 200
    assert run_names(response) == ["a", "b", "c", "d"]
    assert "Ignored filter" in response.content.decode()


def test_filter_on_an_unknown_metric_matches_nothing_and_says_why(signed_in, fraud):
    response = signed_in.get(url(fraud), {"filter": "nope>1"})
    assert run_names(response) == []
    assert "No recent run logged a metric named &#x27;nope&#x27;" in response.content.decode()


def test_order_by_a_metric_puts_runs_without_it_last(signed_in, fraud):
    assert run_names(signed_in.get(url(fraud), {"order": "-accuracy"})) == ["a", "c", "b", "d"]
    assert run_names(signed_in.get(url(fraud), {"order": "accuracy"})) == ["b", "c", "a", "d"]
    response = signed_in.get(url(fraud), {"order": "-unknown"})
    assert run_names(response) == ["a", "b", "c", "d"]
    assert "runs are shown newest first" in response.content.decode()


def test_metric_headers_link_to_ordering(signed_in, fraud):
    body = signed_in.get(url(fraud), {"metrics": "accuracy", "order": "-accuracy"}).content.decode()
    assert "?metrics=accuracy&amp;order=accuracy" in body  # clicking again flips the order
    assert "accuracy ↓" in body


def test_runs_are_paginated_and_partial_for_htmx(signed_in, fraud):
    for n in range(30):
        RunFactory(experiment=fraud, name=f"extra-{n}")
    after = signed_in.get(url(fraud)).context["page"].next_token
    assert len(signed_in.get(url(fraud), {"after": after}).context["rows"]) == 9
    response = signed_in.get(url(fraud), {"after": after}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="runs")
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="runs"')
    assert "<html" not in body


def test_deleted_runs_are_hidden(signed_in, fraud):
    RunFactory(experiment=fraud, name="deleted", deleted_at=timezone.now())
    assert "deleted" not in run_names(signed_in.get(url(fraud)))


@pytest.mark.parametrize("rows", [1, 50])
def test_detail_query_count_does_not_grow_with_rows(signed_in, django_assert_num_queries, rows):
    experiment = ExperimentFactory(name="big")
    for n in range(rows):
        run_with(experiment, f"r{n}", {"accuracy": n / 100, "f1": 0.5}, {"lr": n, "depth": 3})
    # session, user, experiment (owner joined), the user's grants on it, param key counts, metric key counts, runs
    # COUNT, runs page (user joined), param values for the page, metric values for the page, and for the access
    # panel the experiment's grants with their users and groups
    with django_assert_num_queries(11):
        response = signed_in.get(url(experiment), {"filter": "accuracy>=0", "order": "-accuracy"})
    assert len(response.context["rows"]) == min(rows, 25)


# --- Query-string parsing -------------------------------------------------------------------------------------------


def test_parse_metric_filter():
    assert parse_metric_filter(" val/loss <= 1e-3 ") == MetricFilter("val/loss", "<=", 0.001)
    assert parse_metric_filter("a<b>1") == MetricFilter("a<b", ">", 1.0)
    assert str(parse_metric_filter("acc!=.5")) == "acc != 0.5"
    with pytest.raises(ValueError, match="Ignored filter"):
        parse_metric_filter("acc>nan")


def test_query_helpers_read_lists_filters_and_order():
    request = RequestFactory().get("/", {"metrics": ["a,b", "a", " c "], "filter": ["x>1,bad", ""], "order": "-x"})
    assert key_list(request, "metrics") == ["a", "b", "c"]
    assert key_list(request, "params") is None
    filters, problems = metric_filters(request)
    assert filters == [MetricFilter("x", ">", 1.0)]
    assert len(problems) == 1
    assert metric_order(request) == ("x", True)
    assert metric_order(RequestFactory().get("/", {"order": "-"})) is None


# --- Renaming -------------------------------------------------------------------------------------------------------


def test_its_manager_renames_an_experiment_and_the_page_keeps_its_address(client):
    owner, reader = UserFactory(username="olga"), UserFactory(username="rhea")
    experiment = tracking.experiment_create(name="churn-training", by=owner)
    tracking.experiment_grant_set(experiment=experiment, by=owner, user=reader, level="READ")
    client.force_login(owner)
    page = client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert f'href="/experiments/{experiment.pk}/rename/"' in page
    body = client.get(f"/experiments/{experiment.pk}/rename/").content.decode()
    assert 'mlflow.set_experiment("churn-training")' in body and 'value="churn-training"' in body

    taken = tracking.experiment_create(name="taken", by=owner)
    for new_name, words in (("taken", "already exists"), ("churn-training", "is its name already"), ("", "required")):
        response = client.post(f"/experiments/{experiment.pk}/rename/", {"new_name": new_name})
        assert response.status_code == 422 and words in response.content.decode()
    response = client.post(f"/experiments/{experiment.pk}/rename/", {"new_name": "churn-gbm"})
    assert response["Location"] == f"/experiments/{experiment.pk}/"
    experiment.refresh_from_db()
    assert experiment.name == "churn-gbm" and taken.name == "taken"
    event = AuditEvent.objects.get(action=AuditAction.EXPERIMENT_RENAMED)
    assert (event.actor_name, event.from_value, event.to_value) == ("olga", "churn-training", "churn-gbm")

    client.force_login(reader)  # may read, not rename: no link, and the page and the write are refused
    assert "/rename/" not in client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert client.post(f"/experiments/{experiment.pk}/rename/", {"new_name": "mine"}).status_code == 403
    experiment.refresh_from_db()
    assert experiment.name == "churn-gbm"


def test_the_default_experiment_keeps_its_name(client):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    default = Experiment.objects.filter(name=Experiment.DEFAULT_NAME).first() or ExperimentFactory(
        name=Experiment.DEFAULT_NAME
    )
    client.force_login(root)
    assert "/rename/" not in client.get(f"/experiments/{default.pk}/").content.decode()
    response = client.post(f"/experiments/{default.pk}/rename/", {"new_name": "mine"})
    assert response.status_code == 422 and "keeps its name" in response.content.decode()
    assert Experiment.objects.filter(pk=default.pk, name=Experiment.DEFAULT_NAME).exists()
