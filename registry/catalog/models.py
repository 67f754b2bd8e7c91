"""Registered models, their versions, aliases, stages, transition requests, stage history and artifact files."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry.lib.names import ALIAS_MAX, MODEL_NAME_MAX, NameError_, check_alias, check_model_name
from registry.lib.paths import PATH_MAX, PathError, normalise_artifact_path
from registry.tracking.models import Run


def validate_model_name(value: str) -> None:
    try:
        check_model_name(value)
    except NameError_ as exc:
        raise ValidationError(str(exc)) from None


def validate_alias(value: str) -> None:
    try:
        check_alias(value)
    except NameError_ as exc:
        raise ValidationError(str(exc)) from None


def validate_artifact_path(value: str) -> None:
    try:
        if normalise_artifact_path(value) != value:
            raise ValidationError("Artifact paths are stored normalised (no empty or '.' segments).")
    except PathError as exc:
        raise ValidationError(str(exc)) from None


class Stage(models.TextChoices):
    NONE = "None", "None"
    STAGING = "Staging", "Staging"
    PRODUCTION = "Production", "Production"
    ARCHIVED = "Archived", "Archived"

    @classmethod
    def parse(cls, text: str) -> Stage:
        """Accept any capitalisation ("production", "PRODUCTION") as MLflow clients do."""
        for stage in cls:
            if stage.value.lower() == str(text).strip().lower():
                return stage
        raise ValueError(f"Unknown stage {text!r}; use one of: {', '.join(s.value for s in cls)}.")


STAGE_VALUES = [s.value for s in Stage]


class RegisteredModel(models.Model):
    name = models.CharField(max_length=MODEL_NAME_MAX, unique=True, validators=[validate_model_name])
    description = models.TextField(blank=True, help_text="Markdown.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_models",
    )
    tags = models.JSONField(default=dict, blank=True)
    # The highest version number ever handed out; versions are numbered by incrementing it under a row lock.
    last_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(name="") & ~Q(name__contains="/") & ~Q(name__contains="@"),
                name="registered_model_name_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ModelVersionQuerySet(models.QuerySet):
    def in_stage(self, stage: str) -> ModelVersionQuerySet:
        return self.filter(stage=stage)


class VersionStatus(models.TextChoices):
    PENDING = "pending", "Pending registration"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed registration"


class ModelVersion(models.Model):
    Status = VersionStatus

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions")
    source = models.CharField(
        max_length=2048, blank=True, help_text="Where the artifacts came from, e.g. runs:/<run id>/model."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    status_message = models.CharField(max_length=1024, blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE)
    description = models.TextField(blank=True, help_text="Markdown.")
    tags = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="model_version_positive"),
            models.CheckConstraint(condition=Q(stage__in=STAGE_VALUES), name="model_version_stage_valid"),
            models.CheckConstraint(condition=Q(status__in=VersionStatus.values), name="model_version_status_valid"),
        ]
        indexes = [
            models.Index(fields=["model", "stage"], name="model_version_model_stage"),
            models.Index(fields=["run"], name="model_version_run"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}/{self.version}"

    def record_stage_change(
        self, stage: str, *, by=None, at=None, kind: str = "direct", comment: str = "", request=None
    ) -> StageChange:
        """Set this (locked) version's stage and append the change to the stage history."""
        at = at or timezone.now()
        change = StageChange.objects.create(
            model_id=self.model_id,
            version=self,
            from_stage=self.stage,
            to_stage=stage,
            kind=kind,
            changed_by=by,
            changed_at=at,
            comment=comment,
            request=request,
        )
        self.stage = stage
        self.updated_at = at
        self.save(update_fields=["stage", "updated_at"])
        return change


class ModelAlias(models.Model):
    """A movable name (`champion`) for one version of a model; `name@champion` resolves through it."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=ALIAS_MAX, validators=[validate_alias])
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["model", "alias"]
        verbose_name_plural = "model aliases"
        constraints = [
            models.UniqueConstraint(fields=["model", "alias"], name="model_alias_unique"),
            models.CheckConstraint(condition=~Q(alias=""), name="model_alias_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}"

    def clean(self) -> None:
        if self.version_id and self.model_id and self.version.model_id != self.model_id:
            raise ValidationError({"version": "The version must belong to the alias's model."})


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class StageTransitionRequest(models.Model):
    """A request to move a version to a stage; decided by an approver (behaviour in the governance work)."""

    Status = RequestStatus

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="transition_requests")
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

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(from_stage__in=STAGE_VALUES), name="transition_from_valid"),
            models.CheckConstraint(condition=Q(to_stage__in=STAGE_VALUES), name="transition_to_valid"),
            models.CheckConstraint(condition=~Q(from_stage=models.F("to_stage")), name="transition_moves"),
            models.CheckConstraint(condition=Q(status__in=RequestStatus.values), name="transition_status_valid"),
            # A decision carries its date; a pending request has none.
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(decided_at__isnull=True))
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="transition_decided_when_not_pending",
            ),
            # At most one open request per version and target stage.
            models.UniqueConstraint(
                fields=["version", "to_stage"],
                condition=Q(status="pending"),
                name="transition_one_pending_per_target",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="transition_status_created")]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_stage} → {self.to_stage} ({self.status})"


class ChangeKind(models.TextChoices):
    DIRECT = "direct", "Direct change"
    APPROVAL = "approval", "Approved request"
    ARCHIVE_EXISTING = "archive_existing", "Archived by a newer version"
    ROLLBACK = "rollback", "Rollback"


class StageChange(models.Model):
    """Append-only history of every stage a version entered: the Production timeline is read from here."""

    Kind = ChangeKind

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="stage_changes")
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


class ArtifactFile(models.Model):
    """A file stored for a run or for a model version, through the `artifacts` storage alias.

    Versions registered from a run's artifacts get their own rows pointing at the same stored blobs.
    """

    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts")
    version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts")
    path = models.CharField(max_length=PATH_MAX, validators=[validate_artifact_path])
    storage_key = models.CharField(max_length=PATH_MAX + 64, help_text="Name of the blob in the artifacts storage.")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(run__isnull=False) & Q(version__isnull=True))
                | (Q(run__isnull=True) & Q(version__isnull=False)),
                name="artifact_one_owner",
            ),
            models.UniqueConstraint(fields=["run", "path"], name="artifact_run_path_unique"),
            models.UniqueConstraint(fields=["version", "path"], name="artifact_version_path_unique"),
            models.CheckConstraint(
                condition=~Q(path="")
                & ~Q(path__startswith="/")
                & ~Q(path__contains="\\")
                & ~Q(path="..")
                & ~Q(path__startswith="../")
                & ~Q(path__endswith="/..")
                & ~Q(path__contains="/../"),
                name="artifact_path_relative",
            ),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="artifact_sha256_hex"),
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def owner(self) -> Run | ModelVersion:
        return self.run if self.run_id else self.version
