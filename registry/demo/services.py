"""Fill the registry with really trained demo models, through the same services the API uses.

Each model is written in one transaction: its experiment, one run per version (params, per-step metric histories,
final metrics, datasets with real profiles, environment, code, steps with real timings, the pickled estimator),
then its versions' stages, aliases and stage history. A model that already exists is left alone, so running the
demo again creates nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy
import sklearn
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from registry_client import environment as client_environment
from registry_client.profiling import DatasetProfile, profile_table

from registry.catalog.artifact_files import artifact_store
from registry.catalog.models import ModelVersion, RegisteredModel, Stage
from registry.catalog.services import card_update, model_create, version_create
from registry.demo.recipes import (
    DEFAULT_SPLIT_SEED,
    RECIPES,
    SIZES,
    SPLITS,
    Recipe,
    SplitData,
    Trained,
    Version,
    evaluate,
    load_split,
)
from registry.governance.services import alias_set, stage_change_direct, transition_approve, transition_request
from registry.tracking.models import Experiment, Run, RunStatus, RunStep
from registry.tracking.services import (
    Point,
    dataset_register,
    experiment_create,
    metrics_log,
    params_log,
    run_create,
    run_finish,
    run_input_add,
    run_steps_set,
)

DEMO_USERNAME = "demo"
# Decides the demo's promotions, as a Production approver would: the demo user asks, someone else approves.
APPROVER_USERNAME = "demo-approver"
ENTRY_POINT = "registry/demo/management/commands/demo.py"
CONTEXTS = {"train": "training", "validation": "validation", "test": "evaluation"}


@dataclass
class DemoSummary:
    created: dict[str, int] = field(default_factory=dict)  # model name -> versions
    skipped: list[str] = field(default_factory=list)
    runs: int = 0
    metric_points: int = 0
    datasets: set[int] = field(default_factory=set)
    artifacts: int = 0
    pending_requests: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        lines = [f"Created {name} with {count} versions." for name, count in self.created.items()]
        lines += [f"Skipped {name}: it already exists." for name in self.skipped]
        if self.created:
            lines.append(
                f"{self.runs} runs, {self.metric_points} metric points, {len(self.datasets)} datasets, "
                f"{self.artifacts} artifact files, {self.pending_requests} pending stage request "
                f"in {self.seconds:.1f} s."
            )
        return lines


def _system_user(username: str, group: str):
    """A non-superuser account that cannot log in, in `group`."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"email": ""})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    return get_user_model().objects.get(pk=user.pk)  # fresh, so the permission cache sees the group


def demo_user():
    """The account that demo runs, versions and requests are attributed to: it owns the demo models and asks for
    promotions like any data scientist."""
    return _system_user(DEMO_USERNAME, "Model requesters")


def demo_approver():
    """The account that approved the demo's past promotions (the pending one is left to a human approver)."""
    return _system_user(APPROVER_USERNAME, "Production approvers")


def demo_populate(*, size: str = "full", progress: Callable[[str], None] | None = None) -> DemoSummary:
    """Train and register the demo models of `size` ("small" or "full") that do not exist yet."""
    plan = SIZES[size]
    progress = progress or (lambda message: None)
    started = time.monotonic()
    summary = DemoSummary()
    context = _Context(user=demo_user(), approver=demo_approver(), steps=plan.steps)
    for index, recipe in enumerate(RECIPES[: plan.models]):
        if RegisteredModel.objects.filter(name=recipe.model_name).exists():
            summary.skipped.append(recipe.model_name)
            continue
        progress(f"Training {recipe.model_name} ({plan.versions} versions x {plan.steps} steps)...")
        with transaction.atomic():
            _populate_model(recipe, recipe.versions[: plan.versions], context, summary, with_request=index == 0)
    summary.seconds = time.monotonic() - started
    return summary


@dataclass
class _Context:
    """What every run of one demo invocation shares: its user, step count, provenance and data profiles."""

    user: object
    approver: object
    steps: int
    profiles: dict[tuple[str, int, str], DatasetProfile] = field(default_factory=dict)

    # Recorded as the Python client records them for any training script.
    @cached_property
    def environment(self) -> dict[str, object]:
        return client_environment.environment()

    @cached_property
    def code(self) -> dict[str, object]:
        return {**client_environment.code(settings.BASE_DIR), "entry_point": ENTRY_POINT}

    @cached_property
    def image(self) -> str:
        """A container reference for this environment, pinned by a digest of its package set."""
        packages = self.environment.get("packages") or {}
        digest = hashlib.sha256(json.dumps(packages, sort_keys=True).encode()).hexdigest()
        tag = f"py{self.environment.get('python_version')}-sklearn{packages.get('scikit-learn', 'unknown')}"
        return f"registry.example.com/ml/sklearn-train:{tag}@sha256:{digest}"

    def profile(self, data: SplitData, part: str) -> DatasetProfile:
        key = (data.dataset, data.seed, part)
        if key not in self.profiles:
            self.profiles[key] = profile_table(data.part(part).table())
        return self.profiles[key]


@dataclass
class _Outcome:
    version: ModelVersion
    run: Run
    trained: Trained
    test_metrics: dict[str, float]
    comparable: bool  # trained and evaluated on the model's usual split


def _populate_model(
    recipe: Recipe, versions: list[Version], context: _Context, summary: DemoSummary, *, with_request: bool
) -> None:
    experiment = Experiment.objects.filter(name=recipe.model_name).first() or experiment_create(
        name=recipe.model_name,
        by=context.user,
        description=f"Hyperparameter search for {recipe.model_name}.",
        tags=dict(recipe.tags),
    )
    model = model_create(
        name=recipe.model_name, by=context.user, description=recipe.description, tags=dict(recipe.tags)
    )
    card_update(model=model, by=context.user, sections=_card(recipe))
    outcomes = [
        _train_version(recipe, number, spec, experiment, model, context, summary)
        for number, spec in enumerate(versions, 1)
    ]
    _promote(recipe, model, outcomes, context, with_request=with_request, summary=summary)
    summary.created[model.name] = len(outcomes)


def _card(recipe: Recipe) -> dict[str, str]:
    """A model card for a demo model: what a reviewer would look for first."""
    return {
        "intended_use": f"{recipe.description}\n\nA demonstration of the registry: browse it, compare its versions, "
        "practise promotions.",
        "out_of_scope": "Any real decision. These models learn from a small public teaching dataset.",
        "limitations": f"Trained on scikit-learn's `{recipe.dataset}` toy dataset only: small, clean and old. Scores "
        "on its test split say nothing about data from elsewhere.",
        "owners": "The registry's demo account.",
    }


def _train_version(
    recipe: Recipe,
    number: int,
    spec: Version,
    experiment: Experiment,
    model: RegisteredModel,
    context: _Context,
    summary: DemoSummary,
) -> _Outcome:
    estimator_name = recipe.estimator.__name__
    run = run_create(
        experiment=experiment,
        name=f"{recipe.model_name}-{number}",
        by=context.user,
        code=context.code,
        environment=context.environment,
        image=context.image,
        tags={"estimator": estimator_name, "dataset": recipe.dataset, "task": recipe.task, "demo": "true"},
    )
    steps = []

    with _step(steps, "load data") as log:
        data = load_split(recipe.dataset, seed=spec.split_seed)
        for part in SPLITS:
            profile = context.profile(data, part)
            dataset = dataset_register(
                by=context.user,
                name=f"{recipe.dataset}-{part}",
                digest=profile.digest,
                source_uri=data.source_uri(part),
                source_type="sklearn",
                schema=profile.schema,
                profile=profile.profile,
            )
            run_input_add(run=run, by=context.user, dataset=dataset, context=CONTEXTS[part])
            summary.datasets.add(dataset.pk)
            log.append(f"{dataset.name}: {profile.num_rows} rows, digest {profile.digest[:12]}")

    with _step(steps, "train") as log:
        trained = recipe.fit(spec, data, steps=context.steps, seed=number)
        for i in range(max(0, trained.steps - 3), trained.steps):
            log.append(
                f"step {i + 1}/{trained.steps} " + " ".join(f"{k}={v[i]:.4g}" for k, v in trained.history.items())
            )

    with _step(steps, "evaluate") as log:
        test_metrics = evaluate(trained.model, data)
        log.extend(f"{key} = {value:.4f}" for key, value in test_metrics.items())

    params = {key: str(value) for key, value in trained.params.items()}
    params.update(split_seed=str(spec.split_seed), steps=str(trained.steps), model_class=type(trained.model).__name__)
    params_log(run=run, by=context.user, params=params)
    summary.metric_points += metrics_log(run=run, by=context.user, points=_points(trained, test_metrics, steps))

    with _step(steps, "log model") as log:
        files = _model_files(trained, run, data)
        for path, content in files.items():
            artifact_store(owner=run, path=f"model/{path}", stream=io.BytesIO(content), by=context.user)
            log.append(f"model/{path} ({len(content)} bytes)")
        summary.artifacts += len(files)

    run_steps_set(run=run, by=context.user, steps=steps)
    run_finish(run=run, by=context.user, status=RunStatus.FINISHED)
    summary.runs += 1

    headline = recipe.selection[0].lstrip("-")
    version = version_create(
        model=model,
        run=run,
        artifact_path="model",
        by=context.user,
        description=(
            f"`{estimator_name}` with {_describe(spec.hyperparameters)}, trained for {trained.steps} "
            f"steps on `{recipe.dataset}-train` (split seed {spec.split_seed}). "
            f"{headline} on the validation split: {trained.last(headline):.4f}."
        ),
        tags={"estimator": estimator_name, "split_seed": str(spec.split_seed)},
    )
    return _Outcome(version, run, trained, test_metrics, comparable=spec.split_seed == DEFAULT_SPLIT_SEED)


@contextmanager
def _step(steps: list[dict], name: str) -> Iterator[list[str]]:
    """Time a pipeline step; the caller appends log lines to the yielded list. Recorded as run_steps_set expects."""
    started_at = timezone.now()
    log: list[str] = []
    status = RunStep.Status.FAILED
    try:
        yield log
        status = RunStep.Status.SUCCEEDED
    finally:
        steps.append(
            {
                "name": name,
                "status": status,
                "started_at": started_at,
                "ended_at": timezone.now(),
                "log_excerpt": "\n".join(log),
            }
        )


def _describe(hyperparameters: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in hyperparameters.items()) or "default settings"


def _points(trained: Trained, test_metrics: dict[str, float], steps: list[dict]) -> list[Point]:
    points = [
        Point(key, value, step, timestamp)
        for key, values in trained.history.items()
        for step, (value, timestamp) in enumerate(zip(values, trained.timestamps, strict=True), start=1)
    ]
    finished = trained.timestamps[-1] if trained.timestamps else None
    points += [Point(key, value, trained.steps, finished) for key, value in test_metrics.items()]
    train_step = next(s for s in steps if s["name"] == "train")
    seconds = (train_step["ended_at"] - train_step["started_at"]).total_seconds()
    points.append(Point("training_seconds", seconds, trained.steps, finished))
    return points


def _model_files(trained: Trained, run: Run, data: SplitData) -> dict[str, bytes]:
    """The pickled estimator and an MLflow-style description of it."""
    pickled = pickle.dumps(trained.model, protocol=4)
    features = [{"type": "double", "name": name, "required": True} for name in data.train.feature_names]
    target = "double" if data.classes is None else ("string" if data.classes.dtype.kind == "U" else "long")
    created = datetime.now(UTC).isoformat()
    mlmodel = "\n".join(
        [
            "artifact_path: model",
            "flavors:",
            "  python_function:",
            "    env:",
            "      virtualenv: requirements.txt",
            "    loader_module: mlflow.sklearn",
            "    model_path: model.pkl",
            "    predict_fn: predict",
            f"    python_version: {json.dumps(sys.version.split()[0])}",
            "  sklearn:",
            "    pickled_model: model.pkl",
            "    serialization_format: pickle",
            f"    sklearn_version: {json.dumps(sklearn.__version__)}",
            f"model_size_bytes: {len(pickled)}",
            f"run_id: {run.pk}",
            "signature:",
            f"  inputs: {json.dumps(json.dumps(features))}",
            f"  outputs: {json.dumps(json.dumps([{'type': target, 'name': data.train.target_name}]))}",
            f"utc_time_created: {json.dumps(created)}",
            "",
        ]
    )
    requirements = f"scikit-learn=={sklearn.__version__}\nnumpy=={numpy.__version__}\n"
    return {"model.pkl": pickled, "MLmodel": mlmodel.encode(), "requirements.txt": requirements.encode()}


def _promote(
    recipe: Recipe,
    model: RegisteredModel,
    outcomes: list[_Outcome],
    context: _Context,
    *,
    with_request: bool,
    summary: DemoSummary,
) -> None:
    """Give the model a stage history through the governance rules: an early version in Production, replaced by the
    best one, and a challenger. The demo user asks; the demo approver approves Production moves and the champion.

    Only versions evaluated on the usual split compete, since the others' metrics are not comparable.
    """
    user, approver = context.user, context.approver
    candidates = sorted((o for o in outcomes if o.comparable), key=lambda o: recipe.score(o.trained), reverse=True)
    best = candidates[0]
    earlier = next(o for o in outcomes if o.comparable and o is not best)
    challenger = next(o for o in candidates if o is not best and o is not earlier)
    headline = recipe.selection[0].lstrip("-")

    def metric(outcome: _Outcome) -> str:
        return f"{headline} {outcome.trained.last(headline):.4f}"

    def promote(outcome: _Outcome, comment: str, *, archive_existing: bool = False) -> None:
        request = transition_request(
            version=outcome.version,
            to_stage=Stage.PRODUCTION,
            by=user,
            comment=comment,
            archive_existing=archive_existing,
        )
        transition_approve(request_id=request.pk, by=approver, comment="Looks good.")

    stage_change_direct(
        version=earlier.version, to_stage=Stage.STAGING, by=user, comment="First candidate to validate."
    )
    promote(earlier, f"Initial release ({metric(earlier)}).")
    stage_change_direct(version=best.version, to_stage=Stage.STAGING, by=user, comment=f"New best: {metric(best)}.")
    promote(
        best,
        f"Replaces version {earlier.version.version}: {metric(best)} against {metric(earlier)}.",
        archive_existing=True,
    )
    stage_change_direct(
        version=challenger.version, to_stage=Stage.STAGING, by=user, comment=f"Challenger: {metric(challenger)}."
    )
    alias_set(model=model, alias="champion", version=best.version, by=approver)  # protected: the approver's move
    alias_set(model=model, alias="challenger", version=challenger.version, by=user)

    if with_request:
        transition_request(
            version=challenger.version,
            to_stage=Stage.PRODUCTION,
            archive_existing=True,
            by=user,
            comment=(
                f"Version {challenger.version.version} (Staging) scores {_key_test_metric(challenger)} on the test "
                f"split against {_key_test_metric(best)} for the champion, version {best.version.version}. "
                "Requesting promotion to Production."
            ),
        )
        summary.pending_requests += 1


def _key_test_metric(outcome: _Outcome) -> str:
    key, value = next(iter(outcome.test_metrics.items()))
    return f"{key} {value:.4f}"
