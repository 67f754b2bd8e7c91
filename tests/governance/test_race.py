"""Two people deciding the same thing at the same moment, each in a thread with its own database connection.

On PostgreSQL the request row lock (SELECT ... FOR UPDATE) makes the second approver wait and then see the first
decision; on SQLite the IMMEDIATE transactions do the same by taking the write lock when the transaction begins.
Either way exactly one approval goes through and the other gets AlreadyDecided.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from registry.audit.models import AuditEvent
from registry.catalog.models import ModelVersion, Stage
from registry.governance import gates, services
from registry.governance.errors import AlreadyDecided, AlreadyPending
from registry.governance.models import RequestStatus, StageChange, StageTransitionRequest
from tests.builders import model_create
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, build, person

pytestmark = pytest.mark.django_db(transaction=True)


def race(*calls) -> list:
    """Run `calls` in threads released together; return what each returned or raised, in call order."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            outcomes[index] = exc
        finally:
            connection.close()  # each thread opened its own connection

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return outcomes


@pytest.fixture
def slow_gates(monkeypatch):
    """Stretch the time each approval spends inside its transaction so that the two really overlap."""
    real = gates.evaluate_gates

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(gates, "evaluate_gates", slow)


def test_two_approvers_racing_on_one_request_make_one_approval(slow_gates):
    requester = person("rita", REQUESTERS)
    first, second = person("paula", PRODUCTION_APPROVERS), person("pete", PRODUCTION_APPROVERS)
    version = build(model_create(name="fraud", owner=requester), {"f1": 0.9}, by=requester)
    request = services.transition_request(version=version, to_stage=Stage.PRODUCTION, by=requester)

    outcomes = race(
        lambda: services.transition_approve(request_id=request.pk, by=first, comment="first"),
        lambda: services.transition_approve(request_id=request.pk, by=second, comment="second"),
    )

    approved = [o for o in outcomes if isinstance(o, StageTransitionRequest)]
    refused = [o for o in outcomes if isinstance(o, AlreadyDecided)]
    assert (len(approved), len(refused)) == (1, 1), outcomes
    winner = approved[0].decided_by
    assert f"already approved by {winner.get_username()} at" in refused[0].message
    stored = StageTransitionRequest.objects.get(pk=request.pk)
    assert (stored.status, stored.decided_by_id) == (RequestStatus.APPROVED, winner.pk)
    assert ModelVersion.objects.get(pk=version.pk).stage == Stage.PRODUCTION
    assert StageChange.objects.filter(version=version, to_stage=Stage.PRODUCTION).count() == 1
    assert AuditEvent.objects.filter(request_id=request.pk, action="request_approved").count() == 1


def test_an_approval_racing_a_rejection_makes_one_decision(slow_gates):
    requester = person("rita", REQUESTERS)
    approver, rejecter = person("paula", PRODUCTION_APPROVERS), person("pete", PRODUCTION_APPROVERS)
    version = build(model_create(name="fraud", owner=requester), {"f1": 0.9}, by=requester)
    request = services.transition_request(version=version, to_stage=Stage.PRODUCTION, by=requester)

    outcomes = race(
        lambda: services.transition_approve(request_id=request.pk, by=approver),
        lambda: services.transition_reject(request_id=request.pk, by=rejecter),
    )

    assert sum(isinstance(o, StageTransitionRequest) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, AlreadyDecided) for o in outcomes) == 1, outcomes
    stored = StageTransitionRequest.objects.get(pk=request.pk)
    moved = ModelVersion.objects.get(pk=version.pk).stage == Stage.PRODUCTION
    assert moved == (stored.status == RequestStatus.APPROVED)


def test_two_requests_for_the_same_move_make_one_pending_request():
    alice, bob = person("alice", REQUESTERS), person("bob", REQUESTERS)
    version = build(model_create(name="fraud", owner=alice), {"f1": 0.9}, by=alice)

    outcomes = race(
        lambda: services.transition_request(version=version, to_stage=Stage.PRODUCTION, by=alice),
        lambda: services.transition_request(version=version, to_stage=Stage.PRODUCTION, by=bob),
    )

    assert sum(isinstance(o, StageTransitionRequest) for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, AlreadyPending) for o in outcomes) == 1, outcomes
    assert StageTransitionRequest.objects.pending().filter(version=version).count() == 1
