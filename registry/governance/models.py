"""Governance: who may move a version to which stage or alias, under which policy and gates; the requests that ask
for a move and their decisions; and the stage history the Production timeline is read from.

Stages and aliases are catalog data (a version's `stage` column, ModelAlias rows) that only this app's services move.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry.catalog.models import STAGE_VALUES, ModelVersion, RegisteredModel, Stage

# Aliases that deployments pull (`name@champion`): moving one takes the path of a Production move unless a model's
# policy names other aliases.
DEFAULT_PROTECTED_ALIASES = ["champion", "production"]


# --- Policies and gates ---------------------------------------------------------------------------------------------


class StagePolicyQuerySet(models.QuerySet):
    def for_model(self, model: RegisteredModel) -> StagePolicy:
        """The model's own policy, else the global default, else the built-in default (unsaved)."""
        policies = {
            p.model_id: p for p in self.filter(Q(model=model) | Q(model__isnull=True)).prefetch_related("gates")
        }
        return policies.get(model.pk) or policies.get(None) or StagePolicy.builtin_default()

    def protected_aliases_for(self, model: RegisteredModel) -> list[str]:
        """The aliases the model's policy protects (for_model's answer, without the gates): one query."""
        rows = dict(self.filter(Q(model=model) | Q(model__isnull=True)).values_list("model_id", "protected_aliases"))
        chosen = rows.get(model.pk, rows.get(None, list(DEFAULT_PROTECTED_ALIASES)))
        return sorted(chosen or [])


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
    protected_aliases = models.JSONField(
        default=list,
        blank=True,
        help_text="Aliases moved or deleted only as a Production move is (a request, its gates, an approver), e.g. "
        '["champion", "production"].',
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
        policy = cls(
            approval_required_for=[Stage.PRODUCTION],
            allow_self_approval=False,
            allow_direct_changes=True,
            protected_aliases=list(DEFAULT_PROTECTED_ALIASES),
        )
        policy._builtin = True
        return policy

    def needs_approval(self, stage: str) -> bool:
        return stage in (self.approval_required_for or [])

    def protects(self, alias: str) -> bool:
        return alias in (self.protected_aliases or [])

    def gates_for(self, stage: str) -> list[PolicyGate]:
        if self.pk is None:
            # The built-in default, before anyone saved a policy: what the migrations give the global default (no
            # unsafe or unscanned files, no external references in Production).
            builtin = [
                PolicyGate(stage=Stage.PRODUCTION, kind=GateKind.FILE_SCAN),
                PolicyGate(stage=Stage.PRODUCTION, kind=GateKind.STORED_FILES),
            ]
            return [gate for gate in builtin if gate.stage == stage] if getattr(self, "_builtin", False) else []
        return [gate for gate in self.gates.all() if gate.stage == stage]


class GateKind(models.TextChoices):
    METRIC = "metric", "Metric threshold (f1 >= 0.7)"
    METRIC_VS_CURRENT = "metric_vs_current", "Metric against the current holder (accuracy >= production + 0.01)"
    DATASET = "dataset", "Has a dataset in a context (evaluation)"
    GIT_COMMIT = "git_commit", "Has a git commit"
    CLEAN_GIT = "clean_git", "Built from a clean git tree"
    IMAGE = "image", "Has a container image"
    FILE_SCAN = "file_scan", "Files scanned: none unsafe, none pending"
    STORED_FILES = "stored_files", "Files stored in the registry (not an external reference)"
    SIGNATURE = "signature_compatible", "Signature compatible with the version now in the stage"
    MODEL_CARD = "model_card", "Model card has intended use and limitations"


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
        if self.kind == GateKind.STORED_FILES:
            return "files stored in the registry"
        return self.get_kind_display()


# --- Requests -------------------------------------------------------------------------------------------------------


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class RequestAction(models.TextChoices):
    STAGE = "stage", "Move to a stage"
    ALIAS_SET = "alias_set", "Point a protected alias"
    ALIAS_DELETE = "alias_delete", "Delete a protected alias"


# Protected aliases are governed as Production is: its gates and its approvers.
ALIAS_RULES_STAGE = Stage.PRODUCTION


class StageTransitionRequestQuerySet(models.QuerySet):
    def pending(self) -> StageTransitionRequestQuerySet:
        return self.filter(status=RequestStatus.PENDING)

    def readable_by(self, user) -> StageTransitionRequestQuerySet:
        """Requests on the models `user` may read."""
        if user is not None and user.is_authenticated and user.is_superuser:
            return self
        return self.filter(model__in=RegisteredModel.objects.readable_by(user).values("pk"))


class StageTransitionRequest(models.Model):
    """A request to move a version to a stage, or a protected alias to (or off) a version; decided by an approver.

    For an alias request `to_stage` names the stage whose rules apply (Production).
    """

    Status = RequestStatus
    Action = RequestAction

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="transition_requests")
    action = models.CharField(max_length=16, choices=RequestAction.choices, default=RequestAction.STAGE)
    alias = models.CharField(max_length=256, blank=True)
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    archive_existing = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="transition_requests"
    )
    comment = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True, help_text="Frozen when the request is made.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = StageTransitionRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(from_stage__in=STAGE_VALUES), name="transition_from_valid"),
            models.CheckConstraint(condition=Q(to_stage__in=STAGE_VALUES), name="transition_to_valid"),
            models.CheckConstraint(condition=Q(action__in=RequestAction.values), name="transition_action_valid"),
            models.CheckConstraint(
                condition=~Q(action="stage") | ~Q(from_stage=models.F("to_stage")), name="transition_moves"
            ),
            # Alias requests name their alias; stage requests none.
            models.CheckConstraint(
                condition=(Q(action="stage") & Q(alias="")) | (~Q(action="stage") & ~Q(alias="")),
                name="transition_alias_iff_alias_action",
            ),
            models.CheckConstraint(condition=Q(status__in=RequestStatus.values), name="transition_status_valid"),
            # A decision carries its date; a pending request has none.
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(decided_at__isnull=True))
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="transition_decided_when_not_pending",
            ),
            # At most one open request per version and target stage, and per model and alias.
            models.UniqueConstraint(
                fields=["version", "to_stage"],
                condition=Q(status="pending") & Q(action="stage"),
                name="transition_one_pending_per_target",
            ),
            models.UniqueConstraint(
                fields=["model", "alias"],
                condition=Q(status="pending") & ~Q(action="stage"),
                name="transition_one_pending_per_alias",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="transition_status_created"),
            models.Index(fields=["model", "status"], name="transition_model_status"),
        ]

    def __str__(self) -> str:
        return f"{self.version}: {self.describe()} ({self.status})"

    def describe(self) -> str:
        """What the request asks for, in words."""
        if self.action == RequestAction.ALIAS_SET:
            return f"@{self.alias} → v{self.version.version}"
        if self.action == RequestAction.ALIAS_DELETE:
            return f"delete @{self.alias} (now v{self.version.version})"
        return f"{self.from_stage} → {self.to_stage}"

    @property
    def is_alias(self) -> bool:
        return self.action != RequestAction.STAGE


# --- Stage history --------------------------------------------------------------------------------------------------


class ChangeKind(models.TextChoices):
    DIRECT = "direct", "Direct change"
    APPROVAL = "approval", "Approved request"
    ARCHIVE_EXISTING = "archive_existing", "Archived by a newer version"
    ROLLBACK = "rollback", "Rollback"


@dataclass(frozen=True, slots=True)
class StageInterval:
    """A span during which one version held one stage. `start` is None when it began before the changes read;
    `end` is None while the version still holds the stage."""

    version: int
    stage: str
    start: datetime | None
    end: datetime | None

    def duration(self, now: datetime) -> timedelta | None:
        return None if self.start is None else (self.end or now) - self.start


class StageChangeRow(NamedTuple):
    """The part of a StageChange that timelines read, without building model instances."""

    version_id: int
    version: int
    from_stage: str
    to_stage: str
    changed_at: datetime


def stage_intervals(changes: Iterable[StageChangeRow], stages: Iterable[str] | None = None) -> list[StageInterval]:
    """Turn stage changes, oldest first, into the intervals each version spent in each of `stages`.

    A change out of a stage with no earlier change into it (older than the rows read) opens the interval at None.
    """
    wanted = set(stages) if stages is not None else {s.value for s in Stage} - {Stage.NONE.value}
    held: dict[int, tuple[str, datetime | None, int]] = {}
    intervals = []
    for change in changes:
        stage, start, _ = held.pop(change.version_id, (change.from_stage, None, change.version))
        if stage in wanted and stage != Stage.NONE:
            intervals.append(StageInterval(change.version, stage, start, change.changed_at))
        held[change.version_id] = (change.to_stage, change.changed_at, change.version)
    for stage, start, number in held.values():
        if stage in wanted and stage != Stage.NONE:
            intervals.append(StageInterval(number, stage, start, None))
    oldest = datetime.min.replace(tzinfo=timezone.get_current_timezone())
    intervals.sort(key=lambda i: (i.start or oldest, i.version))
    return intervals


class StageChangeQuerySet(models.QuerySet):
    def timeline_rows(self, limit: int) -> list[StageChangeRow]:
        """The newest `limit` changes with their version numbers, returned oldest first, in one query."""
        rows = self.order_by("-changed_at", "-id").values_list(
            "version_id", "version__version", "from_stage", "to_stage", "changed_at"
        )[:limit]
        return [StageChangeRow(*row) for row in reversed(rows)]


class StageChange(models.Model):
    """Append-only history of every stage a version entered: the Production timeline is read from here."""

    Kind = ChangeKind

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="stage_changes", db_index=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DIRECT)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    comment = models.TextField(blank=True)
    request = models.ForeignKey(
        StageTransitionRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )

    objects = StageChangeQuerySet.as_manager()

    class Meta:
        ordering = ["-changed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(from_stage__in=STAGE_VALUES), name="stage_change_from_valid"),
            models.CheckConstraint(condition=Q(to_stage__in=STAGE_VALUES), name="stage_change_to_valid"),
            models.CheckConstraint(condition=~Q(from_stage=models.F("to_stage")), name="stage_change_moves"),
            models.CheckConstraint(condition=Q(kind__in=ChangeKind.values), name="stage_change_kind_valid"),
        ]
        indexes = [models.Index(fields=["model", "to_stage", "changed_at"], name="stage_change_timeline")]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_stage} → {self.to_stage}"
