"""The file safety scan in the dashboard: the version page's badge, findings and "Scan again", the versions list on
the model page, compare, and the approval card."""

from __future__ import annotations

import io

import pytest

from registry.audit.models import AuditEvent
from registry.catalog.models import Stage
from registry.governance import services as governance
from tests import scan_files
from tests.builders import artifact_store, grant, run_create, version_create
from tests.factories import RegisteredModelFactory
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, person

pytestmark = pytest.mark.django_db


def body_of(response) -> str:
    return response.content.decode()


@pytest.fixture
def olive():
    return person("olive", REQUESTERS)


@pytest.fixture
def versions(olive):
    """fraud v1: the demo's pickle (safe); v2: a pickle that calls os.system (unsafe)."""
    model = RegisteredModelFactory(name="fraud", owner=olive)
    made = []
    for content in (scan_files.demo_pickle(), scan_files.malicious_pickle()):
        run = run_create(user=olive)
        artifact_store(owner=run, path="model/model.pkl", stream=io.BytesIO(content), by=olive)
        made.append(version_create(model=model, run=run, artifact_path="model", by=olive))
    return made


def test_the_version_page_shows_what_makes_it_unsafe(client, olive, versions):
    client.force_login(olive)
    body = body_of(client.get("/models/fraud/versions/2/"))
    assert '<span class="badge scan-unsafe"' in body and "unsafe files" in body
    assert "calls posix.system (os.system: runs commands or touches files)" in body
    assert "The Production gate refuses it" in body
    assert 'action="/models/fraud/versions/2/rescan/"' in body  # the owner may rescan
    safe = body_of(client.get("/models/fraud/versions/1/"))
    assert '<span class="badge scan-safe"' in safe and "files safe to load" in safe


def test_readers_see_the_verdict_but_not_the_rescan_button(client, versions):
    reader = person("reed")
    client.force_login(reader)
    body = body_of(client.get("/models/fraud/versions/2/"))
    assert "calls posix.system" in body and "/rescan/" not in body
    assert client.post("/models/fraud/versions/2/rescan/").status_code == 403


def test_scan_again_rescans_and_records_who_asked(client, olive, versions):
    client.force_login(olive)
    response = client.post("/models/fraud/versions/2/rescan/")
    assert response.status_code == 302 and response["Location"].endswith("/models/fraud/versions/2/#safety")
    assert AuditEvent.objects.filter(action="scan_requested", actor_name="olive", version_number=2).exists()


def test_the_versions_list_compare_and_the_approval_card_show_the_verdict(client, olive, versions):
    client.force_login(olive)
    listing = body_of(client.get("/models/fraud/"))
    assert listing.count('class="badge scan-unsafe"') == 1 and listing.count('class="badge scan-safe"') == 1
    compare = body_of(client.get("/compare/?versions=fraud:1,fraud:2"))
    assert "File scan" in compare and 'class="badge scan-unsafe"' in compare and "posix.system" in compare
    governance.transition_request(version=versions[1], to_stage=Stage.PRODUCTION, by=olive)
    approver = person("paula", PRODUCTION_APPROVERS)
    grant(versions[1].model, approver, "READ")
    client.force_login(approver)
    card = body_of(client.get("/approvals/"))
    assert 'class="badge scan-unsafe"' in card and "Files scanned: none unsafe, none pending" in card
