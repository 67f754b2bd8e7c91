"""The governance pages: the approvals queue and its decisions, the version page's stage panel, the model page's
Production panel, rollback and audit log. Personas: a requester, a Production approver, a superuser and a member
without governance rights (the outsider here: every signed-in user may read, not decide)."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from registry.audit.models import AuditEvent
from registry.catalog.models import ModelVersion, Stage
from registry.governance import services
from registry.governance.errors import GatesFailed, NotAllowed
from registry.governance.models import GateKind, PolicyGate, RequestStatus, StagePolicy, StageTransitionRequest
from registry.web.views import governance as views
from tests.builders import alias_set, model_create
from tests.governance.helpers import PRODUCTION_APPROVERS, REQUESTERS, build, person
from tests.web.conftest import SESSION_QUERIES

pytestmark = pytest.mark.django_db

APPROVALS = "/approvals/"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def requester(db):
    return person("rita", REQUESTERS)


@pytest.fixture
def approver(db):
    return person("paula", PRODUCTION_APPROVERS)


@pytest.fixture
def root(db):
    return person("root", superuser=True)


def signed(client, user):
    """A client signed in as `user`; a fresh one when `client` already belongs to someone else (signed_in)."""
    if client.session.get("_auth_user_id") not in (None, str(user.pk)):
        client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def fraud(requester):
    """Owned by rita, who registers its versions and asks for their promotion."""
    return model_create(name="fraud", owner=requester)


@pytest.fixture
def versions(fraud, requester, approver):
    """v1 in Production; v2 (better f1) with a pending request by rita to replace it."""
    v1 = build(fraud, {"f1": 0.80, "auc": 0.91}, by=requester, datasets={"evaluation": "holdout"})
    services.stage_change_direct(version=v1, to_stage=Stage.PRODUCTION, by=approver)
    v2 = build(fraud, {"f1": 0.85, "auc": 0.90}, by=requester, datasets={"evaluation": "holdout"})
    return v1, v2


@pytest.fixture
def pending(versions, requester):
    return services.transition_request(
        version=versions[1], to_stage=Stage.PRODUCTION, by=requester, comment="f1 up 5 points.", archive_existing=True
    )


def body_of(response) -> str:
    return response.content.decode()


def main_of(response) -> str:
    return body_of(response).split("<main", 1)[1]


def messages_of(response) -> list[tuple[str, str]]:
    """The messages this response added (a redirect leaves earlier, unread ones in the cookie as well)."""
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)._queued_messages]


def stage_of(version) -> str:
    return ModelVersion.objects.values_list("stage", flat=True).get(pk=version.pk)


def fail_gate(model, threshold: float = 0.9) -> None:
    policy, _ = StagePolicy.objects.get_or_create(model=model, defaults={"approval_required_for": ["Production"]})
    PolicyGate.objects.create(policy=policy, kind=GateKind.METRIC, metric="f1", operator=">=", threshold=threshold)


# --- The approvals page ---------------------------------------------------------------------------------------------


def test_needs_a_signed_in_user(client):
    assert client.get(APPROVALS)["Location"] == "/login/?next=/approvals/"


def test_empty_state(signed_in):
    response = signed_in.get(APPROVALS)
    assert "Nothing waiting" in body_of(response)
    assert "No request has been decided yet." in body_of(response)
    assert response.context["nav"] == "approvals"
    assert response.context["breadcrumbs"] == [("Approvals", None)]


def test_a_pending_request_shows_its_frozen_evidence(client, approver, pending):
    body = body_of(signed(client, approver).get(APPROVALS))
    assert 'href="/models/fraud/"' in body and 'href="/models/fraud/versions/2/">v2</a>' in body
    assert '<span class="badge stage-None">None</span> → <span class="badge stage-Production">Production</span>' in body
    assert "rita" in body and "f1 up 5 points." in body
    assert "Archives the current Production version" in body
    assert "vs v1 in Production" in body
    # Deltas are judged by the metric's direction: f1 and auc are better higher
    assert '<td class="num">0.85</td><td class="num delta better" title="Higher is better">+0.05' in body
    assert '<td class="num">0.9</td><td class="num delta worse" title="Higher is better">−0.01' in body
    assert "▲ better" in body and "▼ worse" in body
    assert "holdout" in body and ("686f6c646f7574"[:12]) in body  # dataset and its digest
    assert "0123456789ab" in body and "clean" in body  # code commit
    assert "Files scanned: none unsafe, none pending" in body and "no files to scan" in body  # the default gate
    # The built-in default policy's only gate: external references stay out of Production.
    assert "files stored in the registry" in body and "The policy set no gates for Production." not in body


def test_an_approver_gets_the_forms_and_an_outsider_does_not(client, signed_in, approver, pending):
    body = main_of(signed(client, approver).get(APPROVALS))
    assert f'action="/approvals/{pending.pk}/approve/"' in body
    assert f'formaction="/approvals/{pending.pk}/reject/"' in body
    assert f'hx-post="/approvals/{pending.pk}/approve/"' in body
    assert 'name="csrfmiddlewaretoken"' in body and 'name="comment"' in body
    assert "override_reason" not in body  # not a superuser, and no gate fails
    assert "You can approve moves to None, Staging, Production, Archived." in body

    outsider = main_of(signed_in.get(APPROVALS))
    assert "Approve</button>" not in outsider and "Reject</button>" not in outsider
    assert "Waiting for an approver for Production." in outsider
    assert "You cannot approve stage changes" in outsider
    assert "Cancel request" not in outsider


def test_the_requester_sees_awaiting_another_approver_and_a_cancel_button(client, versions, approver):
    own = services.transition_request(version=versions[1], to_stage=Stage.PRODUCTION, by=approver)
    body = main_of(signed(client, approver).get(APPROVALS))
    assert "Awaiting another approver: you cannot approve your own request." in body
    assert "Approve</button>" not in body
    assert f'action="/approvals/{own.pk}/cancel/"' in body


def test_self_approval_shows_the_buttons_when_the_policy_allows_it(client, fraud, versions, approver):
    StagePolicy.objects.create(model=fraud, approval_required_for=["Production"], allow_self_approval=True)
    services.transition_request(version=versions[1], to_stage=Stage.PRODUCTION, by=approver)
    body = main_of(signed(client, approver).get(APPROVALS))
    assert "Approve</button>" in body and "Awaiting another approver" not in body
    assert "Cancel request" in body


def test_superusers_see_the_override_field_when_gates_fail(client, fraud, versions, requester, approver, root):
    fail_gate(fraud)
    services.transition_request(version=versions[1], to_stage=Stage.PRODUCTION, by=requester)
    as_root = main_of(signed(client, root).get(APPROVALS))
    assert 'name="override_reason"' in as_root
    assert "f1 &gt;= 0.9" in as_root and "f1 = 0.85 misses 0.9" in as_root
    assert 'name="override_reason"' not in main_of(signed(client, approver).get(APPROVALS))


def test_approving_without_javascript_redirects_back_with_a_message(client, approver, versions, pending):
    response = signed(client, approver).post(
        f"/approvals/{pending.pk}/approve/", {"comment": "Evidence checked.", "next": "/approvals/?page=1"}
    )
    assert response.status_code == 302 and response["Location"] == "/approvals/?page=1"
    assert messages_of(response) == [
        ("success", "Approved: fraud v2 is now in Production. The version that held Production was archived.")
    ]
    assert (stage_of(versions[0]), stage_of(versions[1])) == ("Archived", "Production")
    stored = StageTransitionRequest.objects.get(pk=pending.pk)
    assert (stored.status, stored.decision_comment) == (RequestStatus.APPROVED, "Evidence checked.")

    page = client.get(APPROVALS)
    assert "Nothing waiting" in body_of(page)
    assert f'href="?request={pending.pk}#request-{pending.pk}">#{pending.pk}</a>' in body_of(page)  # recently decided


def test_approving_with_htmx_swaps_the_card_with_the_message(client, approver, pending):
    response = signed(client, approver).post(f"/approvals/{pending.pk}/approve/", {"next": APPROVALS}, **HTMX)
    body = body_of(response)
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<article class="request-card decided" id="request-{pending.pk}"')
    assert "<html" not in body
    assert "Approved: fraud v2 is now in Production." in body
    assert '<span class="badge status-approved">Approved</span>' in body
    assert "Approve</button>" not in body


def test_refusals_become_messages_never_errors(client, signed_in, requester, approver, pending):
    response = signed_in.post(f"/approvals/{pending.pk}/approve/")
    assert response.status_code == 302
    refusal = "You do not have permission to approve moves to Production for 'fraud'."
    assert messages_of(response) == [("error", refusal)]
    own = signed(client, requester).post(f"/approvals/{pending.pk}/reject/", **HTMX)
    assert own.status_code == 200
    assert "You do not have permission to decide moves to Production for &#x27;fraud&#x27;." in body_of(own)
    assert StageTransitionRequest.objects.get(pk=pending.pk).status == RequestStatus.PENDING


def test_a_second_decision_says_who_decided_first(client, approver, pending):
    services.transition_reject(request_id=pending.pk, by=person("pete", PRODUCTION_APPROVERS), comment="No.")
    response = signed(client, approver).post(f"/approvals/{pending.pk}/approve/", **HTMX)
    body = body_of(response)
    assert response.status_code == 200
    assert "This request was already rejected by pete at" in body
    assert '<span class="badge status-rejected">Rejected</span>' in body


def test_failing_gates_are_spelled_out_and_a_superuser_can_then_override(client, fraud, pending, approver, root):
    fail_gate(fraud)
    refused = signed(client, approver).post(f"/approvals/{pending.pk}/approve/", {"comment": "Ship it."}, **HTMX)
    assert "1 gate(s) fail for version 2 → Production" in body_of(refused)
    assert '<textarea name="comment" rows="2" maxlength="5000">Ship it.</textarea>' in body_of(refused)
    assert "Failing: f1 &gt;= 0.9: f1 = 0.85 misses 0.9." in body_of(refused)
    assert 'name="override_reason"' not in body_of(refused)

    as_root = signed(Client(), root)
    retried = as_root.post(f"/approvals/{pending.pk}/approve/", **HTMX)
    assert 'name="override_reason"' in body_of(retried)  # offered once the gates failed
    done = as_root.post(f"/approvals/{pending.pk}/approve/", {"override_reason": "Incident 7."})
    assert messages_of(done)[0][0] == "success"
    assert AuditEvent.objects.get(action="gate_overridden").comment == "Incident 7."


def test_reject_and_cancel(client, approver, requester, versions, pending):
    rejected = signed(client, approver).post(f"/approvals/{pending.pk}/reject/", {"comment": "Too early."})
    assert messages_of(rejected) == [("success", "Rejected the request to move fraud v2 to Production.")]
    again = services.transition_request(version=versions[1], to_stage=Stage.PRODUCTION, by=requester)
    cancelled = signed(client, requester).post(f"/approvals/{again.pk}/cancel/", **HTMX)
    assert "Cancelled the request to move fraud v2 to Production." in body_of(cancelled)
    assert StageTransitionRequest.objects.get(pk=again.pk).status == RequestStatus.CANCELLED
    assert stage_of(versions[1]) == "None"


def test_decisions_are_post_only_and_unknown_requests_are_404(client, approver, pending):
    signed(client, approver)
    assert client.get(f"/approvals/{pending.pk}/approve/").status_code == 405
    assert client.post("/approvals/999999/approve/").status_code == 404
    assert client.post(f"/approvals/{2**64}/reject/").status_code == 404


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "Production", "approval_list"])
def test_next_is_a_path_on_this_site_or_nothing(client, approver, pending, target):
    """A bare word is not a path: Django's redirect() would look it up as a view name (a 500 when there is none)."""
    response = signed(client, approver).post(f"/approvals/{pending.pk}/reject/", {"next": target})
    assert response.status_code == 302 and response["Location"] == APPROVALS


def test_a_decided_request_can_be_shown_on_its_own(client, approver, pending):
    services.transition_reject(request_id=pending.pk, by=approver, comment="No.")
    body = body_of(signed(client, approver).get(APPROVALS, {"request": pending.pk}))
    assert f'id="request-{pending.pk}"' in body and "Rejected by <strong>paula</strong>" in body
    assert "No such request." in body_of(client.get(APPROVALS, {"request": 999999}))
    for junk in ("x", "-1", str(2**70)):
        assert client.get(APPROVALS, {"request": junk}).status_code == 200


def test_bad_page_numbers_never_fail(signed_in):
    for page in ("x", "0", "-1", "1000"):
        assert signed_in.get(APPROVALS, {"page": page}).status_code == 200


def test_htmx_paging_renders_only_the_pending_list(signed_in, pending):
    response = signed_in.get(APPROVALS, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="requests")
    body = body_of(response)
    assert body.lstrip().startswith('<div id="requests"')
    assert "<html" not in body and "Recently decided" not in body


def _requests(count: int, requester, approver) -> None:
    """`count` pending requests on as many models, and as many decided ones."""
    for n in range(count):
        model = model_create(name=f"m{n}")
        holder = build(model, {"f1": 0.5}, datasets={"training": f"d{n}"})
        services.stage_change_direct(version=holder, to_stage=Stage.PRODUCTION, by=approver)
        challenger = build(model, {"f1": 0.6, "auc": 0.7}, datasets={"training": f"d{n}"})
        services.transition_request(version=challenger, to_stage=Stage.PRODUCTION, by=requester)
        decided = services.transition_request(version=challenger, to_stage=Stage.STAGING, by=requester)
        services.transition_reject(request_id=decided.pk, by=approver)


@pytest.mark.parametrize("rows", [1, 50])
def test_approvals_query_count_does_not_grow_with_rows(client, django_assert_num_queries, requester, approver, rows):
    _requests(rows, requester, approver)
    signed(client, approver)
    # session, user, COUNT, the page of pending requests (version, model, requester joined), their models' policies
    # and gates, the user's grants on those models, the user's permissions (user, groups), the recently decided
    # requests (version, model, requester, decider), the versions' files for the scan badge (their verdicts too when
    # they have files)
    with django_assert_num_queries(SESSION_QUERIES + 9):
        response = client.get(APPROVALS)
    assert len(response.context["cards"]) == min(rows, 25)


# --- The version page -----------------------------------------------------------------------------------------------


def version_url(number: int = 2) -> str:
    return f"/models/fraud/versions/{number}/"


def test_the_stage_panel_shows_gates_evaluated_now_and_the_pending_requests(client, fraud, approver, pending):
    fail_gate(fraud)
    PolicyGate.objects.create(policy=StagePolicy.objects.get(model=fraud), kind=GateKind.GIT_COMMIT)
    response = signed(client, approver).get(version_url())
    rules = {rule.stage: rule for rule in response.context["stage_rules"]}
    assert [(g.gate, g.passed) for g in rules["Production"].gates] == [
        ("f1 >= 0.9", False),
        ("Has a git commit", True),
    ]
    assert rules["Production"].needs_approval and not rules["Staging"].needs_approval
    body = body_of(response)
    assert "f1 = 0.85 misses 0.9" in body
    assert "Pending requests for this version" in body and f'id="request-{pending.pk}"' in body
    assert "The policy of fraud" in body


def test_who_gets_which_form(client, signed_in, requester, approver, versions):
    as_requester = signed(client, requester).get(version_url()).context
    assert as_requester["request_stages"] == ["Staging", "Production", "Archived"]
    assert as_requester["move_stages"] == ["Staging", "Archived"]  # Production needs approval
    as_approver = signed(client, approver).get(version_url()).context
    assert as_approver["move_stages"] == ["Staging", "Production", "Archived"]
    outsider = signed_in.get(version_url())
    assert outsider.context["request_stages"] == [] and outsider.context["move_stages"] == []
    assert "Request a stage change" not in body_of(outsider) and "Move now" not in body_of(outsider)


@pytest.mark.parametrize("who", ["requester", "approver", "member", "root"])
@pytest.mark.parametrize("allow_direct", [True, False])
def test_the_move_form_offers_exactly_what_the_service_accepts(request, client, fraud, versions, who, allow_direct):
    StagePolicy.objects.create(model=fraud, approval_required_for=["Production"], allow_direct_changes=allow_direct)
    user = request.getfixturevalue(who)
    offered = signed(client, user).get(version_url()).context["move_stages"]
    accepted = []
    for stage in ("None", "Staging", "Production", "Archived"):
        if stage == "None":
            continue  # v2 is in None already
        try:
            services.stage_change_direct(version=versions[1], to_stage=stage, by=user)
        except NotAllowed:
            continue
        accepted.append(stage)
        services.stage_change_direct(version=versions[1], to_stage="None", by=person("root2", superuser=True))
    assert offered == accepted


def test_requesting_from_the_version_page(client, requester, versions):
    response = signed(client, requester).post(
        "/models/fraud/versions/2/request-stage/",
        {"to_stage": "Production", "comment": "Ready.", "archive_existing": "on"},
    )
    assert response["Location"] == "/models/fraud/versions/2/#stage"
    created = StageTransitionRequest.objects.get(version=versions[1])
    assert (created.comment, created.archive_existing, created.requested_by) == ("Ready.", True, requester)
    assert messages_of(response)[0][0] == "success" and f"#{created.pk}" in messages_of(response)[0][1]
    duplicate = client.post("/models/fraud/versions/2/request-stage/", {"to_stage": "Production"})
    assert messages_of(duplicate) == [("error", "Version 2 already has a pending request to move to Production.")]
    bad = client.post("/models/fraud/versions/2/request-stage/", {"to_stage": "Live"})
    assert messages_of(bad)[0][0] == "error" and "to stage" in messages_of(bad)[0][1]


def test_an_outsider_cannot_request_or_move(signed_in, versions):
    refused = signed_in.post("/models/fraud/versions/2/request-stage/", {"to_stage": "Staging"})
    assert messages_of(refused)[0][0] == "error"
    assert messages_of(refused)[0][1].startswith("You do not have permission to request moves to Staging for 'fraud'")
    moved = signed_in.post("/models/fraud/versions/2/move/", {"to_stage": "Staging"})
    assert messages_of(moved) == [("error", "You do not have permission to change the stages of 'fraud'.")]
    assert not StageTransitionRequest.objects.exists() and stage_of(versions[1]) == "None"


def test_moving_now_from_the_version_page(client, requester, approver, versions):
    refused = signed(client, requester).post("/models/fraud/versions/2/move/", {"to_stage": "Production"})
    assert messages_of(refused)[0][0] == "error" and stage_of(versions[1]) == "None"
    done = signed(client, approver).post(
        "/models/fraud/versions/2/move/", {"to_stage": "Production", "archive_existing": "on", "comment": "Hotfix."}
    )
    assert done["Location"] == "/models/fraud/versions/2/#stage"
    assert messages_of(done) == [("success", "Moved fraud v2 to Production.")]
    assert (stage_of(versions[0]), stage_of(versions[1])) == ("Archived", "Production")
    assert client.get("/models/fraud/versions/2/move/").status_code == 405
    assert client.post("/models/fraud/versions/9/move/", {"to_stage": "Staging"}).status_code == 404


@pytest.mark.parametrize("rows", [1, 50])
def test_version_page_query_count_does_not_grow_with_rows(client, django_assert_num_queries, fraud, approver, rows):
    fail_gate(fraud)
    version = build(fraud, {f"m{n}": n for n in range(rows)} | {"f1": 0.5}, datasets={"training": "t"})
    for stage in (Stage.STAGING, Stage.PRODUCTION):
        services.transition_request(version=version, to_stage=stage, by=person("rita", REQUESTERS))
    signed(client, approver)
    # session, user, version (model, creator, run, experiment, run user), aliases, artifacts, stage changes, params,
    # metrics, inputs, steps; the user's level on the model (their grants); policy and its gates, the user's
    # permissions (2: the approver's registry-wide role answers; no per-model rights read), the version's pending
    # requests; the model's aliases and the aliases its policy protects; the model card. A metric gate reads the
    # prefetched metrics: no query of its own.
    with django_assert_num_queries(SESSION_QUERIES + 8 + 1 + 5 + 2 + 1):
        response = client.get(f"/models/fraud/versions/{version.version}/")
    assert len(response.context["version_cards"]) == 2


# --- The model page -------------------------------------------------------------------------------------------------


def test_the_production_panel_shows_the_holder_and_the_timeline(client, signed_in, approver, versions):
    services.stage_change_direct(version=versions[1], to_stage=Stage.PRODUCTION, by=approver, archive_existing=True)
    response = signed_in.get("/models/fraud/")
    assert response.context["production_current"] == [2]
    spans = [(i.version, i.end is None) for i, _ in response.context["production_intervals"]]
    assert spans == [(2, True), (1, False)]
    assert response.context["rollback_to"] == 1
    assert "Roll back" not in body_of(response)  # a member may not roll back
    as_approver = body_of(signed(client, approver).get("/models/fraud/"))
    assert 'action="/models/fraud/rollback/"' in as_approver and "Roll back to v1" in as_approver


def test_no_rollback_button_without_an_earlier_production_version(client, approver, versions):
    response = signed(client, approver).get("/models/fraud/")
    assert response.context["production_current"] == [1] and not response.context["can_rollback"]
    assert 'action="/models/fraud/rollback/"' not in body_of(response)


def test_rolling_back_from_the_model_page(signed_in, approver, versions):
    services.stage_change_direct(version=versions[1], to_stage=Stage.PRODUCTION, by=approver, archive_existing=True)
    refused = signed_in.post("/models/fraud/rollback/", {"confirm": "yes"})
    assert messages_of(refused)[0][0] == "error" and stage_of(versions[1]) == "Production"
    client = signed(Client(), approver)
    unconfirmed = client.post("/models/fraud/rollback/", {"comment": "Oops."})
    assert messages_of(unconfirmed) == [("error", "Tick the box to confirm the rollback; nothing was changed.")]
    done = client.post("/models/fraud/rollback/", {"comment": "Latency.", "confirm": "yes"})
    assert done["Location"] == "/models/fraud/#production"
    assert messages_of(done) == [("success", "Rolled back: fraud v1 is in Production again.")]
    assert (stage_of(versions[0]), stage_of(versions[1])) == ("Production", "Archived")
    assert AuditEvent.objects.get(action="rollback").comment == "Latency."
    nothing = client.post("/models/fraud/rollback/", {"confirm": "yes"})  # v2 is earlier now: swaps back
    assert messages_of(nothing)[0][0] == "success"
    assert client.post("/models/nope/rollback/", {"confirm": "yes"}).status_code == 404


def test_pending_requests_on_the_model_page_get_actions_for_approvers_only(client, signed_in, approver, pending):
    as_member = main_of(signed_in.get("/models/fraud/"))
    assert "f1 up 5 points." in as_member and "Approve</button>" not in as_member
    as_approver = main_of(signed(client, approver).get("/models/fraud/"))
    assert f'action="/approvals/{pending.pk}/approve/"' in as_approver
    assert 'name="next" value="/models/fraud/"' in as_approver
    assert "hx-post" not in as_approver.split(f'id="request-{pending.pk}"')[1].split("</article>")[0]
    response = client.post(f"/approvals/{pending.pk}/approve/", {"next": "/models/fraud/"})
    assert response["Location"] == "/models/fraud/"


def test_the_audit_log_shows_the_newest_events_and_more_on_demand(client, signed_in, fraud, requester, pending):
    for n in range(60):
        alias_set(model=fraud, alias=f"a{n}", version=pending.version, by=requester)
    response = signed_in.get("/models/fraud/")
    events = response.context["audit_events"]
    assert len(events) == 50 and events[0].alias == "a59"
    body = body_of(response)
    more = response.context["audit_more"]
    assert more == events[-1]
    assert f'hx-get="/models/fraud/audit/?before={more.pk}"' in body

    rows = signed_in.get(f"/models/fraud/audit/?before={more.pk}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-more")
    older = body_of(rows)
    assert older.lstrip().startswith("<tr>") and "<html" not in older
    # the model and 2 versions created, 1 stage change, 1 request, 60 aliases
    total = AuditEvent.objects.filter(model_id=fraud.pk).count()
    assert older.count("<tr>") == total - 50 == 15
    assert "Version created" in older and "@a59" not in older and "@a9<" in older
    assert 'id="audit-more"' not in older

    page = signed_in.get(f"/models/fraud/audit/?before={more.pk}")
    assert "Back to the newest events" in body_of(page) and "<html" in body_of(page)
    for junk in ("x", "0", str(2**70)):
        assert signed_in.get("/models/fraud/audit/", {"before": junk}).status_code == 200
    assert signed_in.get("/models/nope/audit/").status_code == 404


def test_the_audit_log_links_requests(signed_in, pending):
    body = body_of(signed_in.get("/models/fraud/"))
    assert f'href="/approvals/?request={pending.pk}#request-{pending.pk}">#{pending.pk}</a>' in body
    assert "Transition requested" in body and "Version created" in body


@pytest.mark.parametrize("rows", [1, 50])
def test_audit_page_query_count_does_not_grow_with_rows(signed_in, django_assert_num_queries, fraud, rows):
    version = build(fraud)
    for n in range(rows):
        alias_set(model=fraud, alias=f"a{n}", version=version)
    # session, user, the model, the user's level on it (grants), a page of its events
    with django_assert_num_queries(SESSION_QUERIES + 3):
        signed_in.get("/models/fraud/audit/")


def test_refusal_text_lists_the_failing_gates():
    exc = GatesFailed("2 gate(s) fail.", [{"gate": "f1 >= 0.9", "message": "f1 = 0.8 misses 0.9"}])
    assert views.refusal_text(exc) == "2 gate(s) fail. Failing: f1 >= 0.9: f1 = 0.8 misses 0.9."
    assert views.refusal_text(NotAllowed("No.")) == "No."
