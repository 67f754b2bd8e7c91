"""`manage.py check_names`: list the rows that break the naming and path rules (registry.lib.names, .paths).

Names and paths stored before the rules (or by an older release) are reported, never rewritten: a name is what
deployments and code refer to, so renaming is a decision for its owner. Exits 1 when anything is reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from django.core.management.base import BaseCommand, CommandError

from registry.catalog.models import ArtifactFile, ModelAlias, ModelVersion, RegisteredModel
from registry.lib.names import NameError_, check_alias, check_experiment_name, check_model_name, check_tag_key
from registry.lib.paths import PathError, check_artifact_path
from registry.tracking.models import Experiment, Run

CHUNK = 2000


def _broken(rows: Iterable[tuple[str, str]], check: Callable[[str], object]) -> Iterator[tuple[str, str]]:
    """(where, what is wrong) for each (where, value) that `check` refuses."""
    for where, value in rows:
        try:
            check(value)
        except (NameError_, PathError) as exc:
            yield where, str(exc)


def _case_clashes(kind: str, names: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Names equal ignoring case. The database's unique index folds with LOWER() (ASCII letters only on SQLite), so
    this folds in Python too, to report `Ä` beside `ä` wherever the index let them in."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        groups[name.casefold()].append(name)
    for group in groups.values():
        if len(group) > 1:
            listed = ", ".join(repr(name) for name in sorted(group))
            yield f"{kind}s {listed}", "these names differ only in case; rename all but one."


def _tag_keys(kind: str, rows: Iterable[tuple[object, dict]]) -> Iterator[tuple[str, str]]:
    for label, tags in rows:
        for key in tags or {}:
            yield f"{kind} {label} tag {key!r}", key


def problems() -> Iterator[tuple[str, str]]:
    models = RegisteredModel.objects.order_by("pk").values_list("pk", "name")
    yield from _broken(((f"model {name!r} (id {pk})", name) for pk, name in models.iterator(CHUNK)), check_model_name)
    yield from _case_clashes("model", (name for _, name in models.iterator(CHUNK)))

    experiments = Experiment.objects.order_by("pk").values_list("pk", "name")
    yield from _broken(
        ((f"experiment {name!r} (id {pk})", name) for pk, name in experiments.iterator(CHUNK)), check_experiment_name
    )
    yield from _case_clashes("experiment", (name for _, name in experiments.iterator(CHUNK)))

    aliases = ModelAlias.objects.order_by("pk").values_list("model__name", "alias")
    yield from _broken(((f"alias {name}@{alias}", alias) for name, alias in aliases.iterator(CHUNK)), check_alias)

    tagged = [
        ("model", RegisteredModel.objects.values_list("name", "tags")),
        ("experiment", Experiment.objects.values_list("name", "tags")),
        ("run", Run.objects.values_list("pk", "tags")),
    ]
    for kind, rows in tagged:
        yield from _broken(_tag_keys(kind, ((repr(a), t) for a, t in rows.order_by().iterator(CHUNK))), check_tag_key)
    versions = ModelVersion.objects.order_by().values_list("model__name", "version", "tags")
    yield from _broken(
        _tag_keys("version", ((f"{name}/{number}", tags) for name, number, tags in versions.iterator(CHUNK))),
        check_tag_key,
    )

    files = ArtifactFile.objects.order_by("pk").values_list(
        "pk", "path", "run_id", "version__model__name", "version__version"
    )
    yield from _broken(
        (
            (f"file {path!r} of " + (f"run {run_id}" if run_id else f"version {name}/{number}") + f" (id {pk})", path)
            for pk, path, run_id, name, number in files.iterator(CHUNK)
        ),
        check_artifact_path,
    )


class Command(BaseCommand):
    help = (
        "Report models, experiments, aliases, tag keys and artifact paths that break the naming and path rules "
        "(nothing is changed). Exits 1 when any is found."
    )

    def handle(self, *args, **options):
        count = 0
        for where, why in problems():
            count += 1
            self.stdout.write(f"{where}: {why}")
        if count:
            raise CommandError(
                f"{count} name{'s' * (count != 1)} or path{'s' * (count != 1)} break the rules (listed above; nothing "
                "was changed). Rename models and experiments with the API, the MLflow client or the admin; move "
                "aliases and tags to new keys; upload misnamed files again under a good path and delete the old ones."
            )
        self.stdout.write("Every model, experiment, alias, tag key and artifact path follows the rules.")
