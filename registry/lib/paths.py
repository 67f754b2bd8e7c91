"""Artifact paths: relative, normalised, and never able to leave their owner's folder.

Hostile shapes are refused rather than "cleaned", so that a path means the same thing to every layer that reads it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from registry.lib.names import has_control_characters

PATH_MAX = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


class PathError(ValueError):
    """An artifact path that is not a safe relative path; the message says what is wrong."""


def normalise_artifact_path(path: str, *, allow_empty: bool = False) -> str:
    """Return `path` as `a/b/c`, or raise PathError.

    Refused: `..` segments, absolute paths, drive letters, backslashes, NUL and other control characters, and the
    percent-encoded or double-encoded forms of any of these. Empty and `.` segments are dropped.
    """
    if not isinstance(path, str):
        raise PathError("An artifact path must be a string.")
    # Decode repeatedly so that %252e%252e (double-encoded "..") is seen for what it is.
    decoded = path
    for _ in range(3):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    for candidate in (path, decoded):
        if "\x00" in candidate:
            raise PathError("An artifact path must not contain NUL bytes.")
        if has_control_characters(candidate):
            raise PathError("An artifact path must not contain control characters.")
        if "\\" in candidate:
            raise PathError("An artifact path must use '/' and never a backslash.")
        if candidate.startswith("/"):
            raise PathError("An artifact path must be relative (it starts with '/').")
        if _DRIVE.match(candidate):
            raise PathError("An artifact path must not start with a drive letter.")
        if ".." in candidate.split("/"):
            raise PathError("An artifact path must not contain '..' segments.")
    if decoded != path:
        raise PathError("An artifact path must not be percent-encoded; send it as plain text.")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    normalised = "/".join(parts)
    if not normalised and not allow_empty:
        raise PathError("An artifact path must name a file (it is empty).")
    if len(normalised) > PATH_MAX:
        raise PathError(f"An artifact path must be at most {PATH_MAX} characters.")
    return normalised
