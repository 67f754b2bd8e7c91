"""One verdict per stored blob: is this file safe to load?

Keyed by the blob (`storage_key`), not by the file row: every upload gets its own blob, and a version registered
from a run's folder shares the run's blobs, so one scan answers for the run's file and every version that copied
it. The version's verdict is rolled up from its files' (`VersionScan`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry import rawsql
from registry.lib import filescan
from registry.lib.paths import PATH_MAX


class Verdict(models.TextChoices):
    SAFE = filescan.SAFE, "Safe"
    UNSAFE = filescan.UNSAFE, "Unsafe"
    UNKNOWN = filescan.UNKNOWN, "Unknown"
    PENDING = filescan.PENDING, "Pending"


class FileScanQuerySet(models.QuerySet):
    def of_blobs(self, storage_keys: Iterable[str]) -> dict[str, FileScan]:
        """The scans of these blobs, by storage key (a blob never scanned is absent).

        Every registration asks this of its new files: one hand-written query per thousand keys (see registry.rawsql),
        where the ORM spent longer compiling its `IN` than the database took to answer."""
        keys = sorted(set(storage_keys))
        columns = _scan_columns()
        connection = rawsql.connection_for(FileScan)
        key_column = rawsql.column(FileScan, "storage_key")
        scans = {}
        for chunk in rawsql.chunks(keys):
            sql = (
                f"SELECT {columns.select('s')} FROM {rawsql.table(FileScan)} s"
                f" WHERE s.{key_column} IN ({rawsql.placeholders(len(chunk))})"
            )
            for row in rawsql.fetchall(connection, sql, chunk):
                scan = columns.load(row, connection)
                scans[scan.storage_key] = scan
        return scans

    def backlog_figures(self) -> tuple[int, float, dict[str, int]]:
        """For the operators' metrics: files waiting for a scan, how long the oldest has waited (seconds, 0 when
        none), and how many scans have each verdict. Two queries on the (verdict, queued_at) index."""
        by_verdict = dict.fromkeys(Verdict.values, 0)
        for verdict, count in self.order_by().values_list("verdict").annotate(n=models.Count("id")):
            by_verdict[verdict] = count
        oldest = self.filter(verdict=Verdict.PENDING).order_by("queued_at").values_list("queued_at", flat=True).first()
        waited = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        return by_verdict[Verdict.PENDING], max(waited, 0.0), by_verdict


class FileScan(models.Model):
    storage_key = models.CharField(max_length=PATH_MAX + 64, unique=True, help_text="The blob scanned.")
    path = models.CharField(max_length=PATH_MAX, help_text="The file's path when it was uploaded (a format hint).")
    size = models.PositiveBigIntegerField(default=0)
    verdict = models.CharField(max_length=8, choices=Verdict.choices, default=Verdict.PENDING)
    format = models.CharField(max_length=64, blank=True)
    findings = models.JSONField(default=list, blank=True, help_text="What makes it unsafe, one sentence each.")
    reason = models.TextField(blank=True, help_text="Why the verdict is unknown.")
    scanner = models.CharField(max_length=64, blank=True)
    scanner_version = models.CharField(max_length=64, blank=True, db_index=True)
    queued_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A scanner is on it until then (a lease: a scanner that died loses it)."
    )
    scanned_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="How long the scan took.")
    # Bumped whenever a scan is queued again: a scan that finishes after a newer one was queued is not saved.
    generation = models.PositiveIntegerField(default=0)

    objects = FileScanQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["verdict", "queued_at"], name="filescan_verdict_queued")]
        constraints = [models.CheckConstraint(condition=Q(verdict__in=Verdict.values), name="filescan_verdict_valid")]

    def __str__(self) -> str:
        return f"{self.path}: {self.verdict}"


@functools.cache
def _scan_columns() -> rawsql.Columns:
    return rawsql.Columns(
        FileScan,
        "id",
        "storage_key",
        "path",
        "verdict",
        "format",
        "findings",
        "reason",
        "scanner_version",
        "scanned_at",
    )


NO_FILES = "none"
RANK = {Verdict.UNSAFE: 4, Verdict.PENDING: 3, Verdict.UNKNOWN: 2, Verdict.SAFE: 1, NO_FILES: 0}


@dataclass
class FileVerdict:
    path: str
    verdict: str
    format: str = ""
    findings: list[str] = field(default_factory=list)
    reason: str = ""
    scanner_version: str = ""
    scanned_at: object = None


@dataclass
class VersionScan:
    """A version's roll-up: any unsafe file makes it unsafe, then any pending, then any unknown; else safe.
    A version without files is "none" (nothing to load)."""

    verdict: str
    files: list[FileVerdict] = field(default_factory=list)

    @classmethod
    def of(cls, files: list[FileVerdict]) -> VersionScan:
        verdict = max((f.verdict for f in files), key=lambda v: RANK[v], default=NO_FILES)
        return cls(verdict, files)

    @property
    def label(self) -> str:
        return "no files" if self.verdict == NO_FILES else self.verdict

    @property
    def problems(self) -> list[FileVerdict]:
        return [f for f in self.files if f.verdict != Verdict.SAFE]

    def summary(self) -> str:
        """One line for gates, tags and messages."""
        if self.verdict == Verdict.UNSAFE:
            bad = [f for f in self.files if f.verdict == Verdict.UNSAFE]
            return "; ".join(f"{f.path}: {', '.join(f.findings[:3])}" for f in bad[:3])
        if self.verdict == Verdict.PENDING:
            return "still scanning " + ", ".join(f.path for f in self.files if f.verdict == Verdict.PENDING)[:200]
        if self.verdict == Verdict.UNKNOWN:
            odd = [f for f in self.files if f.verdict == Verdict.UNKNOWN]
            return "; ".join(f"{f.path}: {f.reason}" for f in odd[:3])[:500]
        return "no files" if self.verdict == NO_FILES else f"{len(self.files)} file(s) safe"
