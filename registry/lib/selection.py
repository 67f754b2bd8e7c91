"""Reading which builds to compare from a query string. Pure Python.

`?versions=churn:3,churn:4` names model versions, `?runs=<id>,<id>` runs. Model names cannot hold '/' or '@' but
may hold ':' and ',', so an item ends at the last ':<number>' before a comma: `a:b:2,c:3` is ("a:b", 2), ("c", 3).
Parameters may also be repeated (`?versions=a:1&versions=a:2`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

MIN_BUILDS = 2
MAX_BUILDS = 4
VERSION_MAX = 2**31 - 1  # PositiveIntegerField: a larger number cannot exist, and must not reach the database
NAME_MAX = 256

_ENDS_WITH_VERSION = re.compile(r".*:\s*\d+\s*", re.DOTALL)
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Selection:
    versions: list[tuple[str, int]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # items that could not be read, as written

    @property
    def count(self) -> int:
        return len(self.versions) + len(self.runs)


def _items(raw_values: Iterable[str]) -> list[str]:
    """Comma-separated items, re-joining pieces split at a comma that belongs to a model name."""
    items = []
    for raw in raw_values:
        buffer = None
        for piece in raw.split(","):
            buffer = piece if buffer is None else f"{buffer},{piece}"
            if _ENDS_WITH_VERSION.fullmatch(buffer):
                items.append(buffer.strip())
                buffer = None
        if buffer is not None and buffer.strip():
            items.append(buffer.strip())
    return items


def parse_versions(raw_values: Iterable[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """([(model name, version)], [unreadable items]), duplicates collapsed, in the order given."""
    found: list[tuple[str, int]] = []
    invalid: list[str] = []
    for item in _items(raw_values):
        name, sep, number = item.rpartition(":")
        name, number = name.strip(), number.strip()
        readable = number.isascii() and number.isdigit() and len(number) <= 10
        if not sep or not name or not readable or len(name) > NAME_MAX:
            invalid.append(item)
            continue
        version = int(number)
        if not 1 <= version <= VERSION_MAX:
            invalid.append(item)
            continue
        if (name, version) not in found:
            found.append((name, version))
    return found, invalid


def parse_runs(raw_values: Iterable[str]) -> tuple[list[str], list[str]]:
    """([run id], [unreadable items]): ids are 32 hexadecimal digits; duplicates collapsed, in the order given."""
    found: list[str] = []
    invalid: list[str] = []
    for raw in raw_values:
        for item in re.split(r"[,\s]+", raw):
            if not item:
                continue
            run_id = item.lower()
            if not _RUN_ID.match(run_id):
                invalid.append(item[:80])
            elif run_id not in found:
                found.append(run_id)
    return found, invalid


def parse_selection(versions: Iterable[str], runs: Iterable[str]) -> Selection:
    found_versions, bad_versions = parse_versions(versions)
    found_runs, bad_runs = parse_runs(runs)
    return Selection(versions=found_versions, runs=found_runs, invalid=bad_versions + bad_runs)


def version_ref(name: str, version: int) -> str:
    return f"{name}:{version}"
