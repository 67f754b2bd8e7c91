"""`manage.py artifacts_verify [--checksums]`: list the file rows whose blob is gone or differs; exit 1 if any."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from registry.catalog import blobs


class Command(BaseCommand):
    help = (
        "Check that the artifact store holds every file the registry lists: each row's blob is there, with the "
        "recorded size, and with --checksums the recorded sha256 (reads every byte). Prints each damaged blob with "
        "the runs and versions that use it, and exits 1 when there is any. Reads only; safe while the registry runs. "
        "The inverse of artifacts_gc, which frees blobs no row names."
    )

    def add_arguments(self, parser):
        parser.add_argument("--checksums", action="store_true", help="Also hash every blob and compare its sha256.")

    def handle(self, *args, checksums: bool, **options):
        report = blobs.verify(blobs.artifact_storage(), checksums=checksums)
        for damage in report.damage:
            self.stdout.write(f"{damage.problem}: {damage.storage_key} ({damage.detail})")
            for name in damage.files:
                self.stdout.write(f"  {name}")
        what = "sizes and checksums" if checksums else "sizes"
        summary = f"Checked {report.blobs} blobs ({report.bytes} bytes, {what}) named by {report.rows} file rows"
        if report.damage:
            raise CommandError(
                f"{summary}: {len(report.damage)} damaged (listed above; nothing was changed). Restore those blobs "
                "from a backup of the artifact store, or upload the files again and delete the damaged versions."
            )
        self.stdout.write(f"{summary}: all there.")
