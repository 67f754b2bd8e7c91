"""Loading experiments, runs and datasets for a user: one helper per object that checks the permission and preloads.

Runs follow their experiment: READ on it reads its runs; EDIT creates runs there and writes your own; MANAGE also
writes other people's runs (and renames, deletes and shares the experiment). Datasets are readable where a run that
used them is (see DatasetQuerySet.readable_by).

Like the catalog's helpers, these answer NotFound when the user may not read the thing and Forbidden when they may
read it but not do this.
"""

from __future__ import annotations

from registry.accounts.access import ask_for_access, level_of
from registry.lib.access import Level
from registry.lib.errors import Forbidden, NotFound
from registry.tracking.models import Dataset, Experiment, Run

DOING = {Level.READ: "see", Level.EDIT: "log runs in", Level.MANAGE: "rename, delete or share"}


def require_experiment(experiment: Experiment, user, need: Level, *, doing: str | None = None) -> Level:
    level = level_of(experiment, user)
    if level < Level.READ:
        raise NotFound(f"No experiment {experiment.name!r}.")
    if level < need:
        raise Forbidden(
            f"You need {need.name} access to {doing or DOING[need]} experiment {experiment.name!r}; you have "
            f"{level.name}. {ask_for_access(experiment)}"
        )
    return level


def experiment_for(user, ref: str | int, *, need: Level = Level.READ, queryset=None) -> Experiment:
    """An experiment by id (a number) or else by name, if `user` holds `need` on it."""
    queryset = Experiment.objects.all() if queryset is None else queryset
    experiment = None
    text = str(ref)
    if text.isascii() and text.isdigit() and len(text) <= 18:
        experiment = queryset.filter(pk=int(text)).first()
    if experiment is None:
        experiment = queryset.filter(name=text).first()
    if experiment is None:
        raise NotFound(f"No experiment {text!r} (give its name or id).")
    require_experiment(experiment, user, need)
    return experiment


def run_level(run: Run, user) -> Level:
    """The user's level on the run's experiment; cached on the run (Run.objects.get_with_access fills it)."""
    cache = run.__dict__.setdefault("_level_cache", {})
    key = getattr(user, "pk", None)
    if key not in cache:
        cache[key] = level_of(run.experiment, user)
    return cache[key]


def may_write_run(run: Run, user) -> bool:
    level = run_level(run, user)
    return level >= Level.MANAGE or (level >= Level.EDIT and run.user_id in (None, user.pk))


def require_run_read(run: Run, user) -> None:
    if run_level(run, user) < Level.READ:
        raise NotFound(f"Run with id={run.pk} not found.")


def require_run_write(run: Run, user) -> None:
    """Runs are written by their author with EDIT on the experiment, or by anyone who manages the experiment."""
    require_run_read(run, user)
    if not may_write_run(run, user):
        level = run_level(run, user)
        if level < Level.EDIT:
            raise Forbidden(
                f"You need EDIT access to the experiment of run {run.pk} to change it; you have {level.name}."
            )
        raise Forbidden(
            f"Run {run.pk} belongs to another user; only its author or someone who manages its experiment may "
            "change it."
        )


def require_experiment_level(run: Run, user, need: Level, *, doing: str) -> None:
    """`need` on the run's experiment (registering a run as a model version needs EDIT there)."""
    require_run_read(run, user)
    level = run_level(run, user)
    if level < need:
        raise Forbidden(
            f"You need {need.name} access to the experiment of run {run.pk} to {doing}; you have {level.name}."
        )


def run_for(user, run_id: str, *, write: bool = False, queryset=None) -> Run:
    """The run, if `user` may read it (and write it, with `write`). Without a queryset, one hand-written statement
    reads the run (its installed packages left unread) with the user's access: every logging call starts here."""
    run_id = (run_id or "").lower()
    if queryset is None:
        run = Run.objects.get_with_access(run_id, user)
    else:
        run = queryset.select_related("experiment").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"Run with id={run_id} not found.")
    if write:
        require_run_write(run, user)
    else:
        require_run_read(run, user)
    return run


def dataset_for(user, pk: int) -> Dataset:
    dataset = Dataset.objects.readable_by(user).filter(pk=pk).first() if 0 < pk < 2**63 else None
    if dataset is None:
        raise NotFound(f"No dataset with id {pk}.")
    return dataset
