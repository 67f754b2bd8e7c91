"""Pending stage transition requests across all models, read-only until governance lands."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import ModelVersionFactory, StageTransitionRequestFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/approvals/"


def test_needs_a_signed_in_user(client):
    assert client.get(URL)["Location"] == "/login/?next=/approvals/"


def test_empty_state(signed_in):
    response = signed_in.get(URL)
    body = response.content.decode()
    assert "Nothing waiting" in body
    assert response.context["nav"] == "approvals"
    assert response.context["breadcrumbs"] == [("Approvals", None)]


def test_lists_pending_requests_only_with_a_note_instead_of_buttons(signed_in):
    version = ModelVersionFactory(model__name="fraud", stage="Staging")
    StageTransitionRequestFactory(
        version=version,
        from_stage="Staging",
        to_stage="Production",
        requested_by=UserFactory(username="alice"),
        comment="AUC up 2 points.",
        archive_existing=True,
    )
    StageTransitionRequestFactory(
        version=ModelVersionFactory(model__name="decided"),
        status="approved",
        decided_at=timezone.now(),
    )

    body = signed_in.get(URL).content.decode()

    assert 'href="/models/fraud/"' in body
    assert 'href="/models/fraud/versions/1/">v1</a>' in body
    assert '<span class="badge stage-Staging">Staging</span> → <span class="badge stage-Production">' in body
    assert "alice" in body and "AUC up 2 points." in body
    assert "archives the current Production version" in body
    assert "decided" not in body
    assert "Approval actions arrive with governance" in body
    assert "<button" not in body.split("<main", 1)[1]


def test_bad_page_numbers_never_fail(signed_in):
    for page in ("x", "0", "-1", "1000"):
        assert signed_in.get(URL, {"page": page}).status_code == 200


def test_htmx_paging_renders_only_the_table(signed_in):
    StageTransitionRequestFactory()
    response = signed_in.get(URL, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="requests")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="requests"')
    assert "<html" not in body


@pytest.mark.parametrize("rows", [1, 50])
def test_query_count_does_not_grow_with_rows(signed_in, django_assert_num_queries, rows):
    StageTransitionRequestFactory.create_batch(rows)
    # session, user, COUNT for the paginator, the page of requests (version, model and requester joined)
    with django_assert_num_queries(4):
        response = signed_in.get(URL)
    assert len(response.context["page"]) == min(rows, 25)
