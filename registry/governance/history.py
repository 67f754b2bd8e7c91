"""Reading a model's stage history: which versions held a stage at a moment, and what a Production rollback would
put back (production_rollback in registry.governance.services makes it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from registry.catalog.models import ModelAlias, ModelVersion, RegisteredModel, Stage
from registry.governance.models import StageChange, StagePolicy


def holders_at(model: RegisteredModel, stage: str, at: datetime) -> list[int]:
    """Version numbers that held `stage` at time `at`, replayed from the stage history."""
    holding: set[int] = set()
    changes = (
        StageChange.objects.filter(model=model, changed_at__lte=at)
        .filter(Q(to_stage=stage) | Q(from_stage=stage))
        .select_related("version")
        .order_by("changed_at", "id")
        .only("from_stage", "to_stage", "version__version")
    )
    for change in changes:
        if change.to_stage == stage:
            holding.add(change.version.version)
        elif change.from_stage == stage:
            holding.discard(change.version.version)
    return sorted(holding, reverse=True)


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback does: `current` (the version that entered Production last) leaves Production and `previous`
    (the one that held it before `current` entered) holds it; `aliases` are the protected aliases on `current`,
    which move back to `previous`."""

    current: ModelVersion
    previous: ModelVersion
    aliases: list[str]


def rollback_plan(model: RegisteredModel) -> RollbackPlan | None:
    """The rollback available now, or None: read from the stage history, whatever the number of holders.

    "Previous" is the version whose latest entry into Production came before `current`'s and that still exists,
    whether it still holds Production (two holders) or was archived since.
    """
    entries = list(
        StageChange.objects.filter(model=model, to_stage=Stage.PRODUCTION)
        .select_related("version__model")
        .order_by("-changed_at", "-id")
    )
    current = next((e.version for e in entries if e.version.stage == Stage.PRODUCTION), None)
    if current is None:
        return None
    seen = {current.pk}
    previous = None
    past_current = False
    for entry in entries:
        if entry.version_id == current.pk:
            past_current = True
            continue
        if past_current and entry.version_id not in seen:
            previous = entry.version
            break
        seen.add(entry.version_id)
    if previous is None:
        return None
    policy = StagePolicy.objects.for_model(model)
    aliases = [
        name
        for name in ModelAlias.objects.filter(model=model, version=current).values_list("alias", flat=True)
        if policy.protects(name)
    ]
    return RollbackPlan(current=current, previous=previous, aliases=sorted(aliases))
