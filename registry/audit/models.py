"""The record of what happened and the news of it: the append-only audit log, the webhook subscriptions, the outbox
their events are written to in the same transaction as the change, and every delivery attempt.

This app sits below the catalog, tracking and governance apps: it imports none of them. An audit event names what it
speaks of by id *and* by name or number (a snapshot), with no foreign keys, so it reads the same after the model,
version, run, request or user it names is deleted, and deleting them never touches it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# --- Audit ----------------------------------------------------------------------------------------------------------


class AuditAction(models.TextChoices):
    # Registered models
    MODEL_CREATED = "model_created", "Model created"
    MODEL_RENAMED = "model_renamed", "Model renamed"
    MODEL_UPDATED = "model_updated", "Model description changed"
    MODEL_TAGS_CHANGED = "model_tags_changed", "Model tags changed"
    MODEL_DELETED = "model_deleted", "Model deleted"
    # Versions
    VERSION_CREATED = "version_created", "Version created"
    VERSION_UPDATED = "version_updated", "Version description changed"
    VERSION_TAGS_CHANGED = "version_tags_changed", "Version tags changed"
    VERSION_DELETED = "version_deleted", "Version deleted"
    VERSION_SIGNATURE_SET = "version_signature_set", "Version signature set"
    MODEL_CARD_CHANGED = "model_card_changed", "Model card changed"
    # Stages, aliases and their governance
    STAGE_CHANGED = "stage_changed", "Stage changed"
    ALIAS_SET = "alias_set", "Alias set"
    ALIAS_DELETED = "alias_deleted", "Alias deleted"
    REQUEST_CREATED = "request_created", "Transition requested"
    REQUEST_APPROVED = "request_approved", "Request approved"
    REQUEST_REJECTED = "request_rejected", "Request rejected"
    REQUEST_CANCELLED = "request_cancelled", "Request cancelled"
    GATE_OVERRIDDEN = "gate_overridden", "Failing gate overridden"
    ROLLBACK = "rollback", "Production rolled back"
    POLICY_CHANGED = "policy_changed", "Stage policy changed"
    # Experiments and runs
    EXPERIMENT_CREATED = "experiment_created", "Experiment created"
    EXPERIMENT_RENAMED = "experiment_renamed", "Experiment renamed"
    EXPERIMENT_UPDATED = "experiment_updated", "Experiment description or tags changed"
    EXPERIMENT_DELETED = "experiment_deleted", "Experiment deleted"
    EXPERIMENT_RESTORED = "experiment_restored", "Experiment restored"
    RUN_RENAMED = "run_renamed", "Run renamed"
    RUN_DELETED = "run_deleted", "Run deleted"
    RUN_RESTORED = "run_restored", "Run restored"
    ARTIFACT_STORED = "artifact_stored", "Artifact stored"
    ARTIFACT_DELETED = "artifact_deleted", "Artifact deleted"
    # File safety scan
    FILE_SCANNED = "file_scanned", "File scanned"
    VERSION_UNSAFE = "version_unsafe", "Version found unsafe"
    SCAN_REQUESTED = "scan_requested", "Rescan requested"
    # Who may do what
    ACCESS_GRANTED = "access_granted", "Access granted"
    ACCESS_REVOKED = "access_revoked", "Access revoked"
    OWNER_CHANGED = "owner_changed", "Owner changed"
    DEFAULT_LEVEL_CHANGED = "default_level_changed", "Access for everyone changed"
    USER_CREATED = "user_created", "User created"
    USER_CHANGED = "user_changed", "User changed"
    USER_DELETED = "user_deleted", "User deleted"
    GROUP_CREATED = "group_created", "Group created"
    GROUP_CHANGED = "group_changed", "Group changed"
    GROUP_DELETED = "group_deleted", "Group deleted"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    # Webhooks (through MLflow's webhook API; the admin keeps its own change history)
    WEBHOOK_CREATED = "webhook_created", "Webhook created"
    WEBHOOK_CHANGED = "webhook_changed", "Webhook changed"
    WEBHOOK_DELETED = "webhook_deleted", "Webhook deleted"


class AppendOnly(models.QuerySet):
    """Audit events are never changed or removed, whatever the code path."""

    def update(self, **kwargs):
        raise TypeError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise TypeError("Audit events are append-only: they cannot be deleted.")

    def for_model(self, model_id: int) -> AppendOnly:
        return self.filter(model_id=model_id)


class AuditEvent(models.Model):
    """Who did what to which object, when, from what to what, and why. Append-only (the database refuses UPDATE, and
    DELETE on PostgreSQL; see the migrations)."""

    action = models.CharField(max_length=40, choices=AuditAction.choices)
    at = models.DateTimeField(default=timezone.now)
    actor_id = models.BigIntegerField(null=True, blank=True, help_text="The user's id when it was recorded.")
    actor_name = models.CharField(
        max_length=150, help_text="The username (or a system actor such as 'system:migration'), kept for ever."
    )
    # What the event names, as ids and as the names and numbers they had then.
    model_id = models.BigIntegerField(null=True, blank=True)
    model_name = models.CharField(max_length=256, blank=True)
    version_number = models.PositiveIntegerField(null=True, blank=True)
    alias = models.CharField(max_length=256, blank=True)
    experiment_id = models.BigIntegerField(null=True, blank=True)
    experiment_name = models.CharField(max_length=256, blank=True)
    run_id = models.CharField(max_length=32, blank=True)
    request_id = models.BigIntegerField(null=True, blank=True)
    subject = models.CharField(
        max_length=200, blank=True, help_text="Whom an access change is about: 'user:alice' or 'group:ml-team'."
    )
    from_value = models.CharField(max_length=256, blank=True)
    to_value = models.CharField(max_length=256, blank=True)
    comment = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = AppendOnly.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["model_id", "-at"], name="audit_model_at"),
            models.Index(fields=["experiment_id", "-at"], name="audit_experiment_at"),
            models.Index(fields=["actor_name", "-at"], name="audit_actor_at"),
            models.Index(fields=["action", "-at"], name="audit_action_at"),
            models.Index(fields=["-at", "-id"], name="audit_at"),
            # Events about an account ("user:ana"), a group or the global policy, which name no model or experiment: a
            # profile page lists its account's. Only those rows are in it (none of a registration's or a run's).
            models.Index(
                fields=["subject", "-at"],
                name="audit_subject_at",
                condition=Q(model_id__isnull=True, experiment_id__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=AuditAction.values), name="audit_action_valid"),
            models.CheckConstraint(condition=~Q(actor_name=""), name="audit_has_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name}: {self.get_action_display()}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Audit events are append-only: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only: they cannot be deleted.")

    @property
    def target(self) -> str:
        """What the event is about, in words: "fraud v3", "fraud@champion", "experiment churn"."""
        if self.model_name:
            text = self.model_name
            if self.alias:
                return f"{text}@{self.alias}"
            return f"{text} v{self.version_number}" if self.version_number else text
        if self.experiment_name:
            run = f" run {self.run_id[:8]}" if self.run_id else ""
            return f"experiment {self.experiment_name}{run}"
        if self.run_id:
            return f"run {self.run_id[:8]}"
        return self.subject


# --- Webhooks -------------------------------------------------------------------------------------------------------


class WebhookEventType(models.TextChoices):
    VERSION_CREATED = "version.created", "Version created"
    TRANSITION_REQUESTED = "transition.requested", "Transition requested"
    TRANSITION_APPROVED = "transition.approved", "Transition approved"
    TRANSITION_REJECTED = "transition.rejected", "Transition rejected"
    STAGE_CHANGED = "stage.changed", "Stage changed"
    ALIAS_CHANGED = "alias.changed", "Alias changed"
    VERSION_UNSAFE = "version.unsafe", "Version found unsafe"


class Webhook(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=2048, help_text="http(s) only; private and loopback addresses are refused.")
    events = models.JSONField(default=list, help_text=f"Any of: {', '.join(WebhookEventType.values)}.")
    # By reference, not by import: this app stays below the catalog.
    model = models.ForeignKey(
        "catalog.RegisteredModel",
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
    model_id = models.BigIntegerField(null=True, blank=True)
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

    def queue_figures(self) -> tuple[int, dict[str, int]]:
        """For the operators' metrics: deliveries due now (the queue the workers have yet to take), and how many
        deliveries are in each status (failed ones gave up after WEBHOOK_MAX_ATTEMPTS or were refused). Two queries
        on the (status, next_attempt_at) index."""
        by_status = dict.fromkeys(DeliveryStatus.values, 0)
        for status, count in self.order_by().values_list("status").annotate(n=models.Count("id")):
            by_status[status] = count
        return self.due().count(), by_status


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
