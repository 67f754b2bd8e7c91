"""What MLflow 3 logs that the registry has no row for yet: logged models and their links to runs.

A logged model's files are not here: they are ordinary artifact files of its source run, under
`models/<model id>/`, so the dashboard shows them with the run and registering a version copies them like any
other run folder.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry.tracking.models import Experiment, Run


def new_logged_model_id() -> str:
    return f"m-{uuid.uuid4().hex}"


class LoggedModelStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Upload failed"


class LoggedModelQuerySet(models.QuerySet):
    def active(self) -> LoggedModelQuerySet:
        return self.filter(deleted_at__isnull=True)


class LoggedModel(models.Model):
    """An MLflow 3 logged model: a model a run produced, before (or without) registering it as a version."""

    Status = LoggedModelStatus

    id = models.CharField(primary_key=True, max_length=34, default=new_logged_model_id, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="logged_models")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="logged_models")
    # The source run as the client named it, when this registry has no such run (kept as text, as MLflow does).
    external_run_id = models.CharField(max_length=256, blank=True)
    name = models.CharField(max_length=256)
    model_type = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    status_message = models.CharField(max_length=1024, blank=True)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tags = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(
        default=list, blank=True, help_text='Metrics logged against the model: [{"key", "value", "step", ...}].'
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = LoggedModelQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["experiment", "name"], name="logged_model_experiment_name"),
            models.Index(fields=["run"], name="logged_model_run"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(id__regex=r"^m-[0-9a-f]{32}$"), name="logged_model_id_format"),
            models.CheckConstraint(condition=Q(status__in=LoggedModelStatus.values), name="logged_model_status_valid"),
            models.CheckConstraint(condition=~Q(name=""), name="logged_model_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def artifact_folder(self) -> str:
        """Where the files live among the source run's artifacts."""
        return f"models/{self.id}"


class RunModelLink(models.Model):
    """A logged model a run used (input) or produced (output, at a step)."""

    class Direction(models.TextChoices):
        INPUT = "input", "Input"
        OUTPUT = "output", "Output"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_links")
    logged_model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="run_links")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    step = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["run", "direction", "step", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "logged_model", "direction"], name="run_model_link_unique"),
            models.CheckConstraint(condition=Q(direction__in=["input", "output"]), name="run_model_link_direction"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.direction} {self.logged_model_id}"
