"""The one exception the client raises for anything the registry (or the way to it) refuses."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """An error answer from the registry, or a failure to get one.

    `status` is the HTTP status, or None when there was no usable answer (connection refused, checksum mismatch);
    `code` is the server's machine-readable code (`not_found`, `forbidden`, ...); `details` lists per-field problems.
    """

    def __init__(self, status: int | None, code: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details or [])

    def __str__(self) -> str:
        prefix = f"{self.status} {self.code}" if self.status is not None else self.code
        text = f"{prefix}: {self.message}"
        shown = [_detail_text(d) for d in self.details[:5]]
        if shown:
            more = f" (+{len(self.details) - 5} more)" if len(self.details) > 5 else ""
            text += " [" + "; ".join(shown) + more + "]"
        return text

    def __repr__(self) -> str:
        return f"RegistryError({self.status!r}, {self.code!r}, {self.message!r}, {self.details!r})"


def _detail_text(detail: Any) -> str:
    if not isinstance(detail, dict):
        return str(detail)
    where = detail.get("field") or detail.get("key") or detail.get("index")
    message = detail.get("message", "")
    return f"{where}: {message}" if where not in (None, "") else str(message)
