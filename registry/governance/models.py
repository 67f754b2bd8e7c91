"""Governance: who may move a version to which stage, under which gates, and the append-only record of it all.

Also the webhook subscriptions, the outbox their events are written to in the same transaction as the change, and
the record of every delivery attempt.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry.catalog.models import STAGE_VALUES, ModelVersion, RegisteredModel, Stage, StageTransitionRequest

# --- Policies and gates ---------------------------------------------------------------------------------------------


class StagePolicyQuerySet(models.QuerySet):
    def for_model(self, model: RegisteredModel) -> StagePolicy:
        """The model's own policy, else the global default, else the built-in default (unsaved)."""
        policies = {
            p.model_id: p for p in self.filter(Q(model=model) | Q(model__isnull=True)).prefetch_related("gates")
        }
        return policies.get(model.pk) or policies.get(None) or StagePolicy.builtin_default()


class StagePolicy(models.Model):
    """Per model (or, with no model, the global default): which stages need approval and what gates apply."""

    model = models.OneToOneField(
        RegisteredModel,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="policy",
        help_text="Leave empty for the global default policy.",
    )
    approval_required_for = models.JSONField(
        default=list,
        blank=True,
        help_text='Target stages that need an approved request, e.g. ["Staging", "Production"].',
    )
    allow_self_approval = models.BooleanField(default=False, help_text="Let the requester approve their own request.")
    allow_direct_changes = models.BooleanField(
        default=True,
        help_text="Let users holding the approve permission for a stage move versions there without a request "
        "(recorded as a direct change).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = StagePolicyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "stage policies"
        # Per-stage rights, assignable to groups; superusers hold them all.
        permissions = [
            ("request_transition", "Can request stage transitions"),
            ("approve_none", "Can approve moves to None"),
            ("approve_staging", "Can approve moves to Staging"),
            ("approve_production", "Can approve moves to Production"),
            ("approve_archived", "Can approve moves to Archived"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=Q(model__isnull=True), name="stage_policy_one_global_default"
            ),
        ]

    def __str__(self) -> str:
        return f"Policy for {self.model}" if self.model_id else "Global default policy"

    @classmethod
    def builtin_default(cls) -> StagePolicy:
        """What applies before anyone writes a policy: Production needs approval, nobody approves their own."""
        policy = cls(approval_required_for=[Stage.PRODUCTION], allow_self_approval=False, allow_direct_changes=True)
        policy._builtin = True
        return policy

    def needs_approval(self, stage: str) -> bool:
        return stage in (self.approval_required_for or [])

    def gates_for(self, stage: str) -> list[PolicyGate]:
        if self.pk is None:
            return []
        return [gate for gate in self.gates.all() if gate.stage == stage]


class GateKind(models.TextChoices):
    METRIC = "metric", "Metric threshold (f1 >= 0.7)"
    METRIC_VS_CURRENT = "metric_vs_current", "Metric against the current holder (accuracy >= production + 0.01)"
    DATASET = "dataset", "Has a dataset in a context (evaluation)"
    GIT_COMMIT = "git_commit", "Has a git commit"
    CLEAN_GIT = "clean_git", "Built from a clean git tree"
    IMAGE = "image", "Has a container image"


class PolicyGate(models.Model):
    OPERATORS = [(">=", ">="), (">", ">"), ("<=", "<="), ("<", "<"), ("==", "==")]

    policy = models.ForeignKey(StagePolicy, on_delete=models.CASCADE, related_name="gates")
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.PRODUCTION)
    kind = models.CharField(max_length=24, choices=GateKind.choices)
    metric = models.CharField(max_length=250, blank=True, help_text="For metric gates: the metric key.")
    operator = models.CharField(max_length=2, choices=OPERATORS, blank=True)
    threshold = models.FloatField(
        null=True, blank=True, help_text="Metric gates: the bound; against the current holder: the margin."
    )
    context = models.CharField(max_length=64, blank=True, help_text="Dataset gates: the run input context.")

    class Meta:
        ordering = ["policy", "stage", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(stage__in=STAGE_VALUES), name="policy_gate_stage_valid"),
            models.CheckConstraint(condition=Q(kind__in=GateKind.values), name="policy_gate_kind_valid"),
            models.CheckConstraint(
                condition=~Q(kind__in=[GateKind.METRIC, GateKind.METRIC_VS_CURRENT])
                | (~Q(metric="") & Q(operator__in=[">=", ">", "<=", "<", "=="]) & Q(threshold__isnull=False)),
                name="policy_gate_metric_complete",
            ),
            models.CheckConstraint(
                condition=~Q(kind=GateKind.DATASET) | ~Q(context=""), name="policy_gate_dataset_has_context"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage}: {self.describe()}"

    def describe(self) -> str:
        if self.kind == GateKind.METRIC:
            return f"{self.metric} {self.operator} {self.threshold:g}"
        if self.kind == GateKind.METRIC_VS_CURRENT:
            sign = "+" if (self.threshold or 0) >= 0 else "-"
            return f"{self.metric} {self.operator} {self.stage.lower()} {sign} {abs(self.threshold or 0):g}"
        if self.kind == GateKind.DATASET:
            return f"has a dataset with context '{self.context}'"
        return self.get_kind_display()


# --- Audit ----------------------------------------------------------------------------------------------------------


class AuditAction(models.TextChoices):
    VERSION_CREATED = "version_created", "Version created"
    STAGE_CHANGED = "stage_changed", "Stage changed"
    ALIAS_SET = "alias_set", "Alias set"
    ALIAS_DELETED = "alias_deleted", "Alias deleted"
    REQUEST_CREATED = "request_created", "Transition requested"
    REQUEST_APPROVED = "request_approved", "Request approved"
    REQUEST_REJECTED = "request_rejected", "Request rejected"
    REQUEST_CANCELLED = "request_cancelled", "Request cancelled"
    GATE_OVERRIDDEN = "gate_overridden", "Failing gate overridden"
    ROLLBACK = "rollback", "Production rolled back"


class AuditEventQuerySet(models.QuerySet):
    def for_model(self, model: RegisteredModel) -> AuditEventQuerySet:
        return self.filter(model=model)


class AuditEvent(models.Model):
    """Append-only: who did what to which version, when, from what to what, and why."""

    action = models.CharField(max_length=32, choices=AuditAction.choices)
    # Indexed by audit_model_at.
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="audit_events", db_index=False)
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    version_number = models.PositiveIntegerField(null=True, blank=True, help_text="Kept if the version is deleted.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="Kept if the user is deleted.")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    from_value = models.CharField(max_length=256, blank=True)
    to_value = models.CharField(max_length=256, blank=True)
    comment = models.TextField(blank=True)
    request = models.ForeignKey(
        StageTransitionRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    data = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["model", "-at"], name="audit_model_at")]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=AuditAction.values), name="audit_action_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name or 'system'}: {self.get_action_display()}"


# --- Webhooks -------------------------------------------------------------------------------------------------------


class WebhookEventType(models.TextChoices):
    VERSION_CREATED = "version.created", "Version created"
    TRANSITION_REQUESTED = "transition.requested", "Transition requested"
    TRANSITION_APPROVED = "transition.approved", "Transition approved"
    TRANSITION_REJECTED = "transition.rejected", "Transition rejected"
    STAGE_CHANGED = "stage.changed", "Stage changed"
    ALIAS_CHANGED = "alias.changed", "Alias changed"


class Webhook(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=2048, help_text="http(s) only; private and loopback addresses are refused.")
    events = models.JSONField(default=list, help_text=f"Any of: {', '.join(WebhookEventType.values)}.")
    model = models.ForeignKey(
        RegisteredModel,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhooks",
        help_text="Only events of this model; empty for all models.",
    )
    secret = models.CharField(max_length=256, help_text="Signs every delivery (X-Registry-Signature).")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(url__startswith="http://") | Q(url__startswith="https://"), name="webhook_url_http"
            ),
            models.CheckConstraint(condition=~Q(secret=""), name="webhook_secret_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    def wants(self, event_type: str, model_id: int | None) -> bool:
        return (
            self.active and event_type in (self.events or []) and (self.model_id is None or self.model_id == model_id)
        )


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change it reports; deliveries fan out from it."""

    type = models.CharField(max_length=32, choices=WebhookEventType.choices)
    model = models.ForeignKey(RegisteredModel, null=True, on_delete=models.SET_NULL, related_name="+")
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (gave up)"


class WebhookDeliveryQuerySet(models.QuerySet):
    def due(self, now=None) -> WebhookDeliveryQuerySet:
        return self.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now or timezone.now())


class WebhookDelivery(models.Model):
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="webhook_delivery_status"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook} ({self.status})"


class DeliveryAttempt(models.Model):
    """One POST of a delivery: what came back (or why nothing did) and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    replay = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.status_code or self.error[:40]}"
