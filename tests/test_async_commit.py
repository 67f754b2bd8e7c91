"""METRICS_ASYNC_COMMIT: metric batches on PostgreSQL commit without waiting for their WAL flush; nothing else."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from registry.tracking.models import MetricPoint
from registry.tracking.services import Point
from tests.builders import log_batch, metrics_log, model_create, run_create, version_create

RELAX = "SET LOCAL synchronous_commit TO OFF"

pytestmark = pytest.mark.django_db(transaction=True)


def _statements(work) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        work()
    return [query["sql"] for query in captured.captured_queries]


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting")
def test_metric_batches_commit_without_waiting_when_on(settings):
    settings.METRICS_ASYNC_COMMIT = True
    run = run_create()
    batch = _statements(lambda: log_batch(run=run, params={"lr": 0.1}, points=[Point("loss", 0.5, 1)], tags={}))
    points = _statements(lambda: metrics_log(run=run, points=[Point("loss", 0.4, 2)]))

    assert RELAX in batch and RELAX in points
    assert MetricPoint.objects.filter(series__run=run).count() == 2
    # SET LOCAL ends with its transaction: the connection's next commits wait again.
    assert _synchronous_commit() == "on"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL setting")
def test_only_metric_transactions_of_their_own_are_relaxed(settings):
    settings.METRICS_ASYNC_COMMIT = True
    run = run_create()

    def inside_a_callers_transaction():
        with transaction.atomic():
            metrics_log(run=run, points=[Point("loss", 0.5, 1)])

    assert RELAX not in _statements(inside_a_callers_transaction)
    assert RELAX not in _statements(lambda: run_create())


def test_off_by_default_and_never_on_sqlite(settings):
    run = run_create()
    assert RELAX not in _statements(lambda: metrics_log(run=run, points=[Point("loss", 0.5, 1)]))
    settings.METRICS_ASYNC_COMMIT = True
    statements = _statements(lambda: metrics_log(run=run, points=[Point("loss", 0.4, 2)]))
    assert (RELAX in statements) == (connection.vendor == "postgresql")


def test_registrations_always_wait_for_their_flush(settings):
    settings.METRICS_ASYNC_COMMIT = True
    model = model_create(name="durable")
    assert RELAX not in _statements(lambda: version_create(model=model))
