"""Governance pages: the approvals queue, deciding requests, asking for and making stage changes, rolling Production
back, and a model's audit log; plus the governance parts of the model and version pages (built here, rendered there).

The rules live in registry.governance.services: these views load, call, and say what happened with Django messages.
A refused action (a GovernanceError) becomes a message on the page, never an error page. On the approvals page an
htmx decision swaps just that request's card, which then carries the message; without JavaScript every form posts
and redirects back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from registry.accounts.access import level_of, preload_access
from registry.audit.models import AuditAction, AuditEvent
from registry.catalog.access import model_for, version_for
from registry.catalog.models import ModelVersion, RegisteredModel, Stage
from registry.governance import access as governance_access
from registry.governance import gates, services
from registry.governance.audit_log import events_visible_to, filtered, is_auditor
from registry.governance.errors import GatesFailed
from registry.governance.history import rollback_plan
from registry.governance.models import RequestStatus, StageInterval, StagePolicy, StageTransitionRequest
from registry.lib import diff
from registry.lib.access import Level
from registry.lib.errors import DomainError
from registry.scanning import services as scanning
from registry.scanning.models import VersionScan
from registry.web.query import back_path

PAGE_SIZE = 25
RECENTLY_DECIDED = 20
AUDIT_ROWS = 50
# Metrics listed on a request card before the rest fold away.
KEY_METRICS = 8
COMMENT_MAX = 5000
# Larger numbers cannot be a version or a primary key; SQLite would refuse them as query parameters.
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
# The order stages are offered in forms: where versions usually go first, None (back to no stage) last.
FORM_STAGES = [Stage.STAGING.value, Stage.PRODUCTION.value, Stage.ARCHIVED.value, Stage.NONE.value]


# --- Request cards --------------------------------------------------------------------------------------------------


@dataclass
class RequestCard:
    """A transition request as a card shows it: its frozen evidence and what the viewing user may do with it."""

    request: StageTransitionRequest
    can_decide: bool
    awaiting_other: bool
    can_cancel: bool
    show_override: bool
    metrics: list[MetricRow]
    more_metrics: list[MetricRow]
    compared_with: dict | None
    datasets: list[dict]
    code: dict
    gates: list[dict]
    direction_rule: str = diff.DIRECTION_RULE
    scan: VersionScan | None = None  # the version's file safety scan now (the gates show it as it was)


def _policy_lookup(model_ids: Iterable[int]) -> Callable[[int], StagePolicy]:
    """The policy of each model (its own, else the global default, else the built-in one), with their gates: two
    queries."""
    wanted = StagePolicy.objects.filter(Q(model_id__in=set(model_ids)) | Q(model=None)).prefetch_related("gates")
    policies = {p.model_id: p for p in wanted}
    fallback = policies.get(None) or StagePolicy.builtin_default()
    return lambda model_id: policies.get(model_id, fallback)


def _card(
    transition: StageTransitionRequest, user, policy: StagePolicy, *, gates_just_failed: bool = False
) -> RequestCard:
    evidence = transition.evidence or {}
    pending = transition.status == RequestStatus.PENDING
    own = transition.requested_by_id is not None and transition.requested_by_id == user.pk
    model = transition.version.model
    approver = governance_access.can_approve(user, model, transition.to_stage)
    awaiting_other = own and not policy.allow_self_approval
    deltas = evidence.get("metric_deltas") or {}
    metrics = [_metric_row(key, value, deltas.get(key)) for key, value in (evidence.get("metrics") or {}).items()]
    # Metrics compared with the current holder first: they are what an approver weighs.
    metrics.sort(key=lambda row: (row.key not in deltas, row.key))
    frozen_gates = list(evidence.get("gates") or [])
    return RequestCard(
        request=transition,
        can_decide=pending and approver and not awaiting_other,
        awaiting_other=pending and awaiting_other,
        can_cancel=pending and (own or level_of(model, user) >= Level.MANAGE),
        # Gates are evaluated again at approval: offer the override wherever the policy has gates for the stage, so
        # that a superuser without JavaScript (no card swap after a refusal) can use it too.
        show_override=pending
        and user.is_superuser
        and (
            gates_just_failed
            or any(not gate.get("passed") for gate in frozen_gates)
            or bool(policy.gates_for(transition.to_stage))
        ),
        metrics=metrics[:KEY_METRICS],
        more_metrics=metrics[KEY_METRICS:],
        compared_with=evidence.get("compared_with"),
        datasets=list(evidence.get("datasets") or []),
        code=evidence.get("code") or {},
        gates=frozen_gates,
    )


@dataclass(frozen=True, slots=True)
class MetricRow:
    """A metric on a request card: its value, the change from the current holder, and that change judged by the
    metric's direction as guessed from its name (diff.DIRECTION_RULE): "better", "worse", "same" or "unknown"."""

    key: str
    value: float | None
    delta: str
    verdict: str
    direction: str  # "lower is better", "higher is better" or "direction unknown"


def _metric_row(key: str, value: float | None, delta: float | None) -> MetricRow:
    direction = diff.metric_direction(key)
    words = {True: "lower is better", False: "higher is better", None: "direction unknown"}
    return MetricRow(key, value, diff.signed(delta), diff.verdict(delta, direction), words[direction.lower_is_better])


def request_cards(
    user, transitions: list[StageTransitionRequest], *, gates_failed: Iterable[int] = ()
) -> list[RequestCard]:
    """Cards for `transitions` (their versions and models loaded): the policies of their models and their gates (2),
    the user's grants on those models (1) and registry-wide permissions (2, cached on the user; none for a
    superuser), the versions' files and their scan verdicts (2)."""
    if not transitions:
        return []
    preload_access(user, [t.version.model for t in transitions])
    policy_for = _policy_lookup(t.version.model_id for t in transitions)
    failed = set(gates_failed)
    scans = scanning.scans_for_versions({t.version_id for t in transitions})
    cards = [_card(t, user, policy_for(t.version.model_id), gates_just_failed=t.pk in failed) for t in transitions]
    for card in cards:
        card.scan = scans[card.request.version_id]
    return cards


def _pending_requests(user):
    return (
        StageTransitionRequest.objects.pending()
        .readable_by(user)
        .select_related("version__model", "requested_by")
        .order_by("-created_at", "-id")
    )


def _get_request_or_404(user, pk: int) -> StageTransitionRequest:
    if pk > BIGINT_MAX:
        raise Http404("No such request.")
    requests = StageTransitionRequest.objects.readable_by(user).select_related(
        "version__model", "requested_by", "decided_by"
    )
    return get_object_or_404(requests, pk=pk)


def _approvable_stages(user) -> list[str]:
    """Stages the user approves registry-wide (per-model rights show on each card)."""
    return [
        stage.value
        for stage in Stage
        if user.is_superuser or user.has_perm(governance_access.approve_permission(stage))
    ]


# --- Approvals ------------------------------------------------------------------------------------------------------


@require_GET
def approval_list(request: HttpRequest) -> HttpResponse:
    """Queries: COUNT, the page of pending requests (version, model and requester joined), their models' policies and
    gates (2), the user's permissions (2; none for a superuser), the recently decided requests (7). With ?request=ID,
    that request too. An htmx request for the pending list (paging) reads only what it shows."""
    page = Paginator(_pending_requests(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "nav": "approvals",
        "breadcrumbs": [("Approvals", None)],
        "page": page,
        "cards": request_cards(request.user, list(page)),
        "htmx_cards": True,
        "next_url": request.get_full_path(),
    }
    if request.htmx and not request.htmx.history_restore_request and request.htmx.target == "requests":
        return _render(request, "web/approval_list.html#requests", context)
    context["approvable_stages"] = _approvable_stages(request.user)
    context["can_request"] = request.user.is_superuser or request.user.has_perm(governance_access.REQUEST_PERMISSION)
    context["decided"] = _recently_decided(request.user)
    focus = _int(request.GET.get("request"), BIGINT_MAX)
    if focus is not None:
        found = StageTransitionRequest.objects.readable_by(request.user).select_related(
            "version__model", "requested_by", "decided_by"
        )
        found = found.filter(pk=focus).first()
        context["focus_cards"] = request_cards(request.user, [found] if found else [])
        context["focus_missing"] = found is None
    return _render(request, "web/approval_list.html", context)


def _recently_decided(user):
    return (
        StageTransitionRequest.objects.readable_by(user)
        .exclude(status=RequestStatus.PENDING)
        .select_related("version__model", "requested_by", "decided_by")
        .order_by("-decided_at", "-id")[:RECENTLY_DECIDED]
    )


class DecisionForm(forms.Form):
    comment = forms.CharField(required=False, max_length=COMMENT_MAX)
    override_reason = forms.CharField(required=False, max_length=COMMENT_MAX)


def _label(transition: StageTransitionRequest) -> str:
    return f"{transition.version.model.name} v{transition.version.version}"


def _what(transition: StageTransitionRequest) -> str:
    """What the request asks for, as the messages say it."""
    if transition.is_alias:
        if transition.action == transition.Action.ALIAS_DELETE:
            return f"delete @{transition.alias} of {transition.version.model.name}"
        return f"point {transition.version.model.name}@{transition.alias} at v{transition.version.version}"
    return f"move {_label(transition)} to {transition.to_stage}"


@require_POST
def request_approve(request: HttpRequest, pk: int) -> HttpResponse:
    transition = _get_request_or_404(request.user, pk)

    def approve(data: dict) -> str:
        services.transition_approve(
            request_id=pk, by=request.user, comment=data["comment"], override_reason=data["override_reason"]
        )
        if transition.is_alias:
            return f"Approved: {_what(transition)}."
        note = f" The version that held {transition.to_stage} was archived." if transition.archive_existing else ""
        return f"Approved: {_label(transition)} is now in {transition.to_stage}.{note}"

    return _decide(request, transition, approve)


@require_POST
def request_reject(request: HttpRequest, pk: int) -> HttpResponse:
    transition = _get_request_or_404(request.user, pk)

    def reject(data: dict) -> str:
        services.transition_reject(request_id=pk, by=request.user, comment=data["comment"])
        return f"Rejected the request to {_what(transition)}."

    return _decide(request, transition, reject)


@require_POST
def request_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    transition = _get_request_or_404(request.user, pk)

    def cancel(data: dict) -> str:
        services.transition_cancel(request_id=pk, by=request.user, comment=data["comment"])
        return f"Cancelled the request to {_what(transition)}."

    return _decide(request, transition, cancel)


def _decide(request: HttpRequest, transition: StageTransitionRequest, act: Callable[[dict], str]) -> HttpResponse:
    """Run a decision, report it as a message, then swap the card (htmx) or go back to the page it came from."""
    form = DecisionForm(request.POST)
    gates_failed = succeeded = False
    if not form.is_valid():
        messages.error(request, _form_problem(form))
    else:
        try:
            messages.success(request, act(form.cleaned_data))
            succeeded = True
        except DomainError as exc:
            gates_failed = isinstance(exc, GatesFailed)
            messages.error(request, refusal_text(exc))
    if not request.htmx:
        return redirect(_next_url(request))
    if succeeded and _from_approvals_page(request):
        # The card leaves the pending list: in its place a status line that takes focus, and the "Recently decided"
        # table (swapped out of band) now starts with this request.
        context = {"transition": transition, "decided": _recently_decided(request.user), "oob": True}
        return _render(request, "web/governance_sections.html#decided_notice", context)
    fresh = _get_request_or_404(request.user, transition.pk)
    context = {
        "card": request_cards(request.user, [fresh], gates_failed=[fresh.pk] if gates_failed else [])[0],
        "inline_messages": True,
        "htmx_cards": True,
        "next_url": _next_url(request),
        # A refused decision keeps what was typed, to send again (with an override reason, say).
        "typed_comment": "" if succeeded else request.POST.get("comment", ""),
    }
    # 200 even when refused: htmx swaps only successful answers, and the card is what says why.
    return _render(request, "web/governance_sections.html#request_card", context)


def _from_approvals_page(request: HttpRequest) -> bool:
    current = request.htmx.current_url_abs_path or ""
    return current.startswith(reverse("approval_list"))


def refusal_text(exc: DomainError) -> str:
    """The service's message, with each failing gate spelled out."""
    failures = "; ".join(f"{d.get('gate')}: {d.get('message')}" for d in exc.details if isinstance(d, dict))
    return f"{exc.message} Failing: {failures}." if failures else exc.message


# --- Stage changes from the version page ----------------------------------------------------------------------------


class StageChangeForm(forms.Form):
    to_stage = forms.ChoiceField(choices=Stage.choices)
    comment = forms.CharField(required=False, max_length=COMMENT_MAX)
    archive_existing = forms.BooleanField(required=False)
    override_reason = forms.CharField(required=False, max_length=COMMENT_MAX)


def _get_version_or_404(user, name: str, number: int) -> ModelVersion:
    return version_for(user, name, number, queryset=ModelVersion.objects.select_related("model", "run"))


@require_POST
def version_request_transition(request: HttpRequest, name: str, version: int) -> HttpResponse:
    mv = _get_version_or_404(request.user, name, version)
    form = StageChangeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_problem(form))
    else:
        data = form.cleaned_data
        try:
            created = services.transition_request(
                version=mv,
                to_stage=data["to_stage"],
                by=request.user,
                comment=data["comment"],
                archive_existing=data["archive_existing"],
            )
        except DomainError as exc:
            messages.error(request, refusal_text(exc))
        else:
            messages.success(
                request,
                f"Transition request #{created.pk} created: {mv.model.name} v{mv.version} → {created.to_stage}. "
                f"An approver for {created.to_stage} decides it on the Approvals page.",
            )
    return redirect(reverse("version_detail", args=[name, version]) + "#stage")


@require_POST
def version_move(request: HttpRequest, name: str, version: int) -> HttpResponse:
    mv = _get_version_or_404(request.user, name, version)
    form = StageChangeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_problem(form))
    else:
        data = form.cleaned_data
        try:
            moved = services.stage_change_direct(
                version=mv,
                to_stage=data["to_stage"],
                by=request.user,
                comment=data["comment"],
                archive_existing=data["archive_existing"],
                override_reason=data["override_reason"],
            )
        except DomainError as exc:
            messages.error(request, refusal_text(exc))
        else:
            messages.success(request, f"Moved {mv.model.name} v{mv.version} to {moved.stage}.")
    return redirect(reverse("version_detail", args=[name, version]) + "#stage")


@dataclass
class StageRule:
    stage: str
    needs_approval: bool
    gates: list[gates.GateResult]
    may_move: bool
    may_approve: bool


def version_context(request: HttpRequest, version: ModelVersion) -> dict:
    """The version page's stage panel. Queries: the model's policy and its gates (2), the user's permissions (2; none
    for a superuser), this version's pending requests (model and requester joined), then what
    the policy's gates read: none for a metric gate, one for a dataset gate, two for a gate against the holder."""
    user = request.user
    model = version.model
    policy = StagePolicy.objects.for_model(model)
    metrics = {m.key: m.last_value for m in version.run.metrics.all()} if version.run_id else {}
    rules = []
    for stage in Stage:
        results = [gates.evaluate_gate(gate, version, metrics) for gate in policy.gates_for(stage)]
        rules.append(
            StageRule(
                stage=stage.value,
                needs_approval=policy.needs_approval(stage),
                gates=results,
                may_move=stage != version.stage and governance_access.may_move_directly(user, model, policy, stage),
                may_approve=governance_access.can_approve(user, model, stage),
            )
        )
    pending = list(_pending_requests(user).filter(version=version))
    for transition in pending:
        transition.version = version  # with its model and the user's access already read
    request_stages = [s for s in FORM_STAGES if s != version.stage and governance_access.can_request(user, model, s)]
    can_request = bool(request_stages)
    return {
        "policy": policy,
        "policy_is_builtin": policy.pk is None,
        "stage_rules": rules,
        "can_request": can_request,
        "request_stages": request_stages,
        "move_stages": [s for s in FORM_STAGES if s in {rule.stage for rule in rules if rule.may_move}],
        "show_move_override": user.is_superuser and any(rule.gates for rule in rules if rule.may_move),
        "version_cards": [_card(t, user, policy) for t in pending],
        "next_url": request.get_full_path(),
    }


# --- Model page: Production, pending requests, rollback, audit ------------------------------------------------------


def model_context(request: HttpRequest, model: RegisteredModel, production: list[StageInterval]) -> dict:
    """The model page's governance parts. Queries: pending requests (version, model and requester joined), the
    model's policy and its gates (2), the user's permissions (2; none for a superuser), the newest audit events (6).

    `production` holds the model's Production intervals, oldest first, read with its stage timeline.
    """
    user = request.user
    policy_for = _policy_lookup([model.pk])
    pending = list(_pending_requests(user).filter(model=model))
    for transition in pending:
        transition.version.model = model  # with the user's access already read
    current = sorted({i.version for i in production if i.end is None}, reverse=True)
    plan = rollback_plan(model) if current else None
    events, more = audit_rows(model)
    now = timezone.now()
    return {
        "pending_cards": [_card(t, user, policy_for(model.pk)) for t in pending],
        "next_url": request.get_full_path(),
        "production_current": current,
        "production_since": max((i.start for i in production if i.end is None and i.start), default=None),
        "production_intervals": [(i, i.duration(now)) for i in reversed(production)],
        "rollback_from": plan.current.version if plan else None,
        "rollback_to": plan.previous.version if plan else None,
        "rollback_aliases": plan.aliases if plan else [],
        "can_rollback": plan is not None and governance_access.can_approve(user, model, Stage.PRODUCTION),
        "audit_events": events,
        "audit_more": more,
    }


def audit_rows(model: RegisteredModel, before: int | None = None) -> tuple[list[AuditEvent], AuditEvent | None]:
    """The model's audit events, newest first, AUDIT_ROWS of them older than event `before` (keyset: new events
    arriving meanwhile never shift the pages). Returns the rows and the last one if there are more after it. One
    query."""
    events = AuditEvent.objects.filter(model_id=model.pk)
    if before is not None:
        cursor = Subquery(AuditEvent.objects.filter(pk=before, model_id=model.pk).values("at")[:1])
        events = events.filter(Q(at__lt=cursor) | Q(at=cursor, pk__lt=before))
    rows = list(events.order_by("-at", "-id")[: AUDIT_ROWS + 1])
    more = rows[AUDIT_ROWS - 1] if len(rows) > AUDIT_ROWS else None
    return rows[:AUDIT_ROWS], more


@require_POST
def model_rollback(request: HttpRequest, name: str) -> HttpResponse:
    model = model_for(request.user, name)
    form = DecisionForm(request.POST)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the box to confirm the rollback; nothing was changed.")
    elif not form.is_valid():
        messages.error(request, _form_problem(form))
    else:
        try:
            restored = services.production_rollback(model=model, by=request.user, comment=form.cleaned_data["comment"])
        except DomainError as exc:
            messages.error(request, refusal_text(exc))
        else:
            messages.success(request, f"Rolled back: {model.name} v{restored.version} is in Production again.")
    return redirect(reverse("model_detail", args=[name]) + "#production")


@require_GET
def model_audit(request: HttpRequest, name: str) -> HttpResponse:
    """Queries: the model, a page of its audit events (2). The model page's "Show more" asks for the rows only."""
    model = model_for(request.user, name, queryset=RegisteredModel.objects.only("pk", "name", "owner", "default_level"))
    before = _int(request.GET.get("before"), BIGINT_MAX)
    events, more = audit_rows(model, before)
    context = {
        "nav": "models",
        "breadcrumbs": [
            ("Models", reverse("model_list")),
            (model.name, reverse("model_detail", args=[model.name])),
            ("Audit log", None),
        ],
        "model": model,
        "audit_events": events,
        "audit_more": more,
        "audit_older": before is not None,
    }
    if request.htmx and not request.htmx.history_restore_request and request.htmx.target == "audit-more":
        return _render(request, "web/governance_sections.html#audit_rows", context)
    return _render(request, "web/model_audit.html", context)


# --- The registry's audit log --------------------------------------------------------------------------------------


class AuditFilterForm(forms.Form):
    model = forms.CharField(required=False, max_length=256)
    experiment = forms.CharField(required=False, max_length=256)
    actor = forms.CharField(required=False, max_length=150)
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
    since = forms.DateTimeField(required=False, help_text="YYYY-MM-DD or YYYY-MM-DD HH:MM (UTC)")


@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """Queries: a page of the events the user may see (the visibility rule joined in SQL, see
    governance.audit_log), keyset-paged by `before` like the model page's log."""
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    events = filtered(
        events_visible_to(request.user),
        model=filters.get("model", ""),
        experiment=filters.get("experiment", ""),
        actor=filters.get("actor", ""),
        action=filters.get("action", ""),
        since=filters.get("since"),
    )
    before = _int(request.GET.get("before"), BIGINT_MAX)
    if before is not None:
        cursor = AuditEvent.objects.filter(pk=before).values_list("at", flat=True).first()
        if cursor is not None:
            events = events.filter(Q(at__lt=cursor) | Q(at=cursor, pk__lt=before))
    rows = list(events[: AUDIT_ROWS + 1])
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "nav": "audit",
        "breadcrumbs": [("Audit log", None)],
        "form": form,
        "events": rows[:AUDIT_ROWS],
        "more": rows[AUDIT_ROWS - 1] if len(rows) > AUDIT_ROWS else None,
        "older": before is not None,
        "filter_query": query.urlencode(),
        "auditor": is_auditor(request.user),
    }
    return _render(request, "web/audit_log.html", context)


# --- Helpers --------------------------------------------------------------------------------------------------------


def _render(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def _int(raw: str | None, maximum: int) -> int | None:
    try:
        value = int(raw or "")
    except ValueError:
        return None
    return value if 0 < value <= maximum else None


def _next_url(request: HttpRequest) -> str:
    return back_path(request, reverse("approval_list"))


def _form_problem(form: forms.Form) -> str:
    problems = [f"{field.replace('_', ' ')}: {' '.join(errors)}" for field, errors in form.errors.items()]
    return "Nothing was changed: " + "; ".join(problems)
