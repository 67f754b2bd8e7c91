"""What a stage move is judged on, read and never written: the evidence a request freezes (metrics, datasets,
environment, code, the model card, deltas against the version that holds the stage) and the policy's gates evaluated
against a version. registry.governance.services applies them when it opens, decides or makes a move."""

from __future__ import annotations

import math
from dataclasses import dataclass

from registry.catalog.models import ModelCard, ModelVersion
from registry.governance.models import GateKind, PolicyGate, StagePolicy
from registry.lib import model_card as cards
from registry.lib import signature as signatures
from registry.scanning import services as scanning
from registry.scanning.models import Verdict
from registry.tracking.models import MetricSeries, RunInput


def _metrics_of(version: ModelVersion) -> dict[str, float]:
    if not version.run_id:
        return {}
    return {m.key: m.last_value for m in MetricSeries.objects.filter(run_id=version.run_id).only("key", "last_value")}


def _json_float(value: float | None):
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def current_holders(model_id: int, stage: str, *, exclude: int | None = None) -> list[ModelVersion]:
    holders = ModelVersion.objects.filter(model_id=model_id, stage=stage).order_by("-version")
    if exclude is not None:
        holders = holders.exclude(pk=exclude)
    return list(holders)


def freeze_evidence(version: ModelVersion, stage: str) -> dict:
    """What the version is, at request time: key metrics, datasets, environment, code, and deltas against the
    version that holds the target stage now."""
    run = version.run
    metrics = _metrics_of(version)
    holders = current_holders(version.model_id, stage, exclude=version.pk)
    holder = holders[0] if holders else None
    holder_metrics = _metrics_of(holder) if holder else {}
    deltas = {
        key: _json_float(value - holder_metrics[key])
        for key, value in metrics.items()
        if key in holder_metrics and not math.isnan(value) and not math.isnan(holder_metrics[key])
    }
    inputs = (
        RunInput.objects.filter(run_id=version.run_id).select_related("dataset").order_by("context", "dataset__name")
        if run
        else []
    )
    return {
        "version": version.version,
        "metrics": {k: _json_float(v) for k, v in sorted(metrics.items())},
        "datasets": [
            {"name": i.dataset.name, "digest": i.dataset.digest, "context": i.context, "dataset_id": i.dataset_id}
            for i in inputs
        ],
        "environment": {
            "python_version": run.python_version if run else "",
            "platform": run.platform if run else "",
            "packages": run.packages if run else {},
            "image": run.image if run else "",
        },
        "code": {
            "git_remote": run.git_remote if run else "",
            "git_commit": run.git_commit if run else "",
            "git_branch": run.git_branch if run else "",
            "git_dirty": run.git_dirty if run else None,
        },
        "compared_with": {"version": holder.version, "stage": stage} if holder else None,
        "metric_deltas": deltas,
        "signature": version.signature,
        "model_card": _card_evidence(version),
    }


def card_sections(version: ModelVersion) -> list[cards.Section]:
    """The version's card as it reads now: its own sections over its model's (one query)."""
    model_card, version_card = ModelCard.objects.for_version(version)
    return cards.effective(model_card.sections if model_card else {}, version_card.sections if version_card else None)


def _card_evidence(version: ModelVersion) -> dict:
    """The card frozen into a request: every section's text as reviewers read it, and where each came from."""
    model_card, version_card = ModelCard.objects.for_version(version)
    sections = cards.effective(model_card.sections if model_card else {}, version_card.sections if version_card else {})
    return {
        "model_revision": model_card.revision if model_card else 0,
        "version_revision": version_card.revision if version_card else 0,
        "sections": [
            {"key": s.key, "title": s.title, "text": s.text, "from": "model" if s.inherited else "version"}
            for s in sections
            if s.text
        ],
    }


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    detail: str


_COMPARE = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


def evaluate_gate(gate: PolicyGate, version: ModelVersion, metrics: dict[str, float]) -> GateResult:
    name = gate.describe()
    run = version.run
    if gate.kind in (GateKind.METRIC, GateKind.METRIC_VS_CURRENT):
        value = metrics.get(gate.metric)
        if value is None or math.isnan(value):
            return GateResult(name, False, f"version {version.version} has no value for {gate.metric!r}")
        bound = gate.threshold
        if gate.kind == GateKind.METRIC_VS_CURRENT:
            holders = current_holders(version.model_id, gate.stage, exclude=version.pk)
            if not holders:
                return GateResult(name, True, f"no version is in {gate.stage} yet; nothing to beat")
            current = _metrics_of(holders[0]).get(gate.metric)
            if current is None or math.isnan(current):
                return GateResult(name, True, f"version {holders[0].version} has no {gate.metric!r}; nothing to beat")
            bound = current + gate.threshold
        passed = _COMPARE[gate.operator](value, bound)
        return GateResult(name, passed, f"{gate.metric} = {value:.6g} {'meets' if passed else 'misses'} {bound:.6g}")
    if gate.kind == GateKind.DATASET:
        found = bool(run) and RunInput.objects.filter(run=run, context=gate.context).exists()
        return GateResult(name, found, "found" if found else f"no dataset logged with context '{gate.context}'")
    if gate.kind == GateKind.GIT_COMMIT:
        commit = run.git_commit if run else ""
        return GateResult(name, bool(commit), commit[:12] if commit else "no git commit recorded")
    if gate.kind == GateKind.CLEAN_GIT:
        clean = bool(run) and bool(run.git_commit) and run.git_dirty is False
        return GateResult(name, clean, "clean" if clean else "the tree was dirty or unknown")
    if gate.kind == GateKind.FILE_SCAN:
        return _file_scan_gate(name, version)
    if gate.kind == GateKind.STORED_FILES:
        # Fails for external references only: a version whose files, if any, are all stored here passes.
        if version.external_location:
            where = version.external_location
            return GateResult(name, False, f"no files stored here; the source {where!r} is an external reference")
        return GateResult(name, True, "the version's files are stored here")
    if gate.kind == GateKind.IMAGE:
        image = run.image if run else ""
        return GateResult(name, bool(image), image or "no container image recorded")
    if gate.kind == GateKind.SIGNATURE:
        return _signature_gate(name, gate.stage, version)
    if gate.kind == GateKind.MODEL_CARD:
        missing = cards.missing_for_gate(card_sections(version))
        if missing:
            return GateResult(name, False, f"the model card has no {' and no '.join(s.lower() for s in missing)}")
        return GateResult(name, True, "intended use and limitations written")
    return GateResult(name, False, f"unknown gate kind {gate.kind!r}")


def _file_scan_gate(name: str, version: ModelVersion) -> GateResult:
    """Refuses a version with a file found unsafe or still being scanned; unknown formats pass (with the reason)."""
    scan = scanning.version_scan(version)
    passed = scan.verdict not in (Verdict.UNSAFE, Verdict.PENDING)
    return GateResult(name, passed, f"{scan.label}: {scan.summary()}" if scan.files else "no files to scan")


def _signature_gate(name: str, stage: str, version: ModelVersion) -> GateResult:
    """Callers of the version now in `stage` keep working: no input removed or retyped, no new required input, the
    same outputs (registry.lib.signature.SignatureDiff.problems)."""
    holders = current_holders(version.model_id, stage, exclude=version.pk)
    if not holders:
        return GateResult(name, True, f"no version is in {stage} yet; nothing to stay compatible with")
    holder = holders[0]
    if not holder.signature:
        return GateResult(name, True, f"version {holder.version} declares no signature; nothing to check against")
    if not version.signature:
        return GateResult(
            name, False, f"version {version.version} declares no signature; version {holder.version} does"
        )
    problems = signatures.diff(holder.signature, version.signature).problems()
    if problems:
        return GateResult(name, False, f"against version {holder.version}: " + "; ".join(problems))
    return GateResult(name, True, f"compatible with version {holder.version}")


def evaluate_gates(version: ModelVersion, stage: str, policy: StagePolicy | None = None) -> list[GateResult]:
    policy = policy or StagePolicy.objects.for_model(version.model)
    stage_gates = policy.gates_for(stage)
    if not stage_gates:
        return []
    metrics = _metrics_of(version)
    return [evaluate_gate(gate, version, metrics) for gate in stage_gates]


def failures(results: list[GateResult]) -> list[dict]:
    return [{"gate": r.gate, "message": r.detail} for r in results if not r.passed]
