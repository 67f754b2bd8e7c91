"""The gate "signature compatible with the version now in the target stage", and the signature frozen into a
request's evidence."""

from __future__ import annotations

import pytest

from registry.catalog import services as catalog
from registry.catalog.models import Stage
from registry.governance import gates, services
from registry.governance.errors import GatesFailed
from registry.governance.models import GateKind, PolicyGate, StagePolicy
from tests.builders import model_create, version_stage_set
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, build, person

pytestmark = pytest.mark.django_db

OLD = {"inputs": [{"name": "age", "type": "long"}, {"name": "city", "type": "string"}], "outputs": [{"type": "double"}]}


@pytest.fixture
def requester(db):
    return person("rita", REQUESTERS)


@pytest.fixture
def approver(db):
    return person("paula", PRODUCTION_APPROVERS)


@pytest.fixture
def fraud(requester):
    model = model_create(name="fraud", owner=requester)
    policy = StagePolicy.objects.create(model=model, approval_required_for=["Production"])
    PolicyGate.objects.create(policy=policy, stage=Stage.PRODUCTION, kind=GateKind.SIGNATURE)
    return model


def signed(model, by, signature):
    version = build(model, {"f1": 0.8}, by=by)
    if signature is not None:
        catalog.version_update(version=version, by=by, signature=signature)
    return version


def gate_result(version):
    [result] = gates.evaluate_gates(version, Stage.PRODUCTION)
    return result


def test_passes_when_nothing_is_in_the_stage(fraud, requester):
    result = gate_result(signed(fraud, requester, OLD))
    assert result.passed and "nothing to stay compatible with" in result.detail


def test_passes_for_the_same_columns_and_optional_additions(fraud, requester):
    version_stage_set(version=signed(fraud, requester, OLD), stage=Stage.PRODUCTION)
    wider = {**OLD, "inputs": [*OLD["inputs"], {"name": "extra", "type": "double", "required": False}]}
    result = gate_result(signed(fraud, requester, wider))
    assert result.passed and result.detail == "compatible with version 1"


def test_blocks_a_removed_or_retyped_input_and_says_which(fraud, requester, approver):
    version_stage_set(version=signed(fraud, requester, OLD), stage=Stage.PRODUCTION)
    changed = {"inputs": [{"name": "age", "type": "double"}], "outputs": [{"type": "double"}]}
    v2 = signed(fraud, requester, changed)
    result = gate_result(v2)
    assert not result.passed
    assert result.detail == "against version 1: input 'age' changed from long to double; input 'city' was removed"

    request = services.transition_request(version=v2, to_stage=Stage.PRODUCTION, by=requester)
    assert request.evidence["gates"][0]["passed"] is False
    assert request.evidence["signature"]["inputs"][0]["type"] == "double"
    with pytest.raises(GatesFailed):
        services.transition_approve(request_id=request.pk, by=approver)


def test_a_version_without_signature_fails_when_the_holder_has_one(fraud, requester):
    version_stage_set(version=signed(fraud, requester, OLD), stage=Stage.PRODUCTION)
    result = gate_result(signed(fraud, requester, None))
    assert not result.passed and result.detail == "version 2 declares no signature; version 1 does"


def test_passes_when_the_holder_declares_none(fraud, requester):
    version_stage_set(version=signed(fraud, requester, None), stage=Stage.PRODUCTION)
    assert gate_result(signed(fraud, requester, OLD)).passed
