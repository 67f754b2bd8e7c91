"""Fill an empty registry with really trained scikit-learn models (used by `make run`)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from registry.catalog.models import RegisteredModel


class Command(BaseCommand):
    help = (
        "Train small scikit-learn models on the data sets shipped with scikit-learn and register them with their "
        "runs, metric histories, datasets, artifacts, stages and aliases. Models that already exist are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if the registry already holds any model."
        )
        parser.add_argument(
            "--size",
            choices=["small", "full"],
            default="full",
            help="small: 3 models x 6 versions x 100 steps, in seconds; full (default): 5 x 8 x 120 steps.",
        )

    def handle(self, *args, if_empty: bool, size: str, **options):
        if if_empty and RegisteredModel.objects.exists():
            self.stdout.write("The registry already holds models; no demo data added.")
            return
        try:
            # scikit-learn (the `demo` extra) and the Python client are imported only when the demo runs.
            from registry.demo.services import demo_populate
        except ImportError as exc:
            raise CommandError(
                f"The demo cannot import {exc.name or exc}: install its dependencies with "
                "pip install -e '.[demo]' -e ./client"
            ) from None
        summary = demo_populate(size=size, progress=self.stdout.write)
        for line in summary.lines():
            self.stdout.write(line)
        if not summary.created:
            self.stdout.write("Nothing to add: every demo model already exists.")
        else:
            self.stdout.write(self.style.SUCCESS("Demo data ready."))
