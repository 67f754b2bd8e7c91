"""Scan files again: all of them, a model's, a version's, or those an older scanner judged."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from registry.catalog.models import ArtifactFile, ModelVersion, RegisteredModel
from registry.lib.references import ReferenceError_, parse_reference
from registry.scanning import services


class Command(BaseCommand):
    help = (
        "Queue files for a new scan and scan them now: --all (every stored file, including those stored before "
        "scanning was on), --model NAME, --version NAME/N, or by default those judged by an older scanner version."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version names a model version and replaces Django's (which prints Django's version).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--all", action="store_true", help="Every file of every run and version.")
        which.add_argument("--model", metavar="NAME", help="The files of every version of this model.")
        which.add_argument("--version", metavar="NAME/N", help="The files of one version, e.g. fraud/3.")
        parser.add_argument("--queue-only", action="store_true", help="Leave the scans to scan_worker.")

    def handle(self, *args, all: bool, model: str | None, version: str | None, queue_only: bool, **options):
        if all:
            files = ArtifactFile.objects.all()
        elif model:
            if not RegisteredModel.objects.filter(name=model).exists():
                raise CommandError(f"No model named {model!r}.")
            files = ArtifactFile.objects.filter(version__model__name=model)
        elif version:
            files = ArtifactFile.objects.filter(version=self._version(version))
        else:
            files = None
        if files is None:
            queued = services.queue_outdated()
        else:
            queued = len(services.queue_files(files.only("storage_key", "path", "size"), after_commit=False))
            if all:
                services.verdicts_drop_unused()
        self.stdout.write(f"Queued {queued} file(s).")
        if queue_only:
            return
        done = services.scan_pending()
        self.stdout.write(f"Scanned {done} file(s).")

    def _version(self, text: str) -> ModelVersion:
        try:
            reference = parse_reference(text)
        except ReferenceError_ as exc:
            raise CommandError(str(exc)) from None
        if reference.version is None:
            raise CommandError("Name a version as NAME/N, e.g. fraud/3.")
        found = ModelVersion.objects.filter(model__name=reference.model, version=reference.version).first()
        if found is None:
            raise CommandError(f"No version {text!r}.")
        return found
