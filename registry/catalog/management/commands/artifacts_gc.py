"""`manage.py artifacts_gc [--dry-run] [--older-than 1h]`: free the artifact blobs no row points at."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from registry.catalog import blobs

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> timedelta:
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise CommandError(f"--older-than takes a whole number with an optional unit s, m, h or d (got {text!r}).")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


class Command(BaseCommand):
    help = (
        "Delete artifact blobs that no file row references and that were last written more than an hour ago "
        "(uploads cut short by a killed worker, on local disk or S3, including incomplete S3 multipart uploads). "
        "Safe while uploads are in flight: they are newer than the threshold, and rows are re-checked before deleting."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List what would be freed; delete nothing.")
        parser.add_argument(
            "--older-than",
            default="1h",
            help="Only blobs last written longer ago than this: seconds, or a number with s, m, h or d (default 1h).",
        )

    def handle(self, *args, dry_run: bool, older_than: str, **options):
        report = blobs.collect_garbage(blobs.artifact_storage(), min_age=parse_age(older_than), dry_run=dry_run)
        for blob in report.blobs:
            self.stdout.write(f"  {blob.name}  {blob.size} bytes")
        for upload in report.partial_uploads:
            self.stdout.write(f"  {upload.name}  {upload.size} bytes (incomplete multipart upload)")
        verb = "Would free" if dry_run else "Freed"
        plural = "" if report.count == 1 else "s"
        self.stdout.write(
            f"{verb} {report.count} blob{plural}, {report.bytes} bytes"
            f" (of which {len(report.partial_uploads)} incomplete multipart uploads)."
        )
