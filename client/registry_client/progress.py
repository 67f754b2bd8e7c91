"""A one-line byte progress bar on stderr, drawn only for a person watching (a TTY) or when asked for."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 24
_REDRAW_SECONDS = 0.1


def wanted(progress: bool | None, stream: TextIO | None = None) -> bool:
    """`progress` True or False decides; None means "when stderr is a terminal"."""
    if progress is not None:
        return progress
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Counts bytes towards `total` and redraws `label [#####.....] 45% 12.0 MB/27.0 MB 5.1 MB/s` in place.

    Disabled, it only counts. Use as a context manager, or call `close()`, to end the line.
    """

    def __init__(self, total: int, label: str = "", *, enabled: bool = True, stream: TextIO | None = None):
        self.total = max(int(total), 0)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._closed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def update(self, count: int) -> None:
        self.done += count
        if self.enabled and time.monotonic() - self._drawn_at >= _REDRAW_SECONDS:
            self._draw()

    def set_label(self, label: str) -> None:
        self.label = label

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        self._drawn_at = time.monotonic()
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(fraction * _WIDTH)
        elapsed = max(self._drawn_at - self._started, 1e-6)
        rate = human_bytes(self.done / elapsed)
        line = (
            f"\r{self.label[:40]:<40} [{'#' * filled}{'.' * (_WIDTH - filled)}] {fraction:4.0%} "
            f"{human_bytes(self.done)}/{human_bytes(self.total)} {rate}/s"
        )
        self.stream.write(line.ljust(100))
        self.stream.flush()
