"""The one rule for artifact paths, the same on every route (`/api/v1`, the MLflow artifact proxy, registration).

A path is relative (`model/model.pkl`): no leading `/`, no empty, `.` or `..` segments, no scheme-like first
segment (`file:`, `s3:`, `C:`), no backslashes, no control or invisible characters, and none of these hidden behind
percent-encoding, however deep (`a%252Fb` is decoded until it stops changing). Hostile or odd shapes are refused, never
"cleaned", so that a path means the same thing to every layer that reads it and `PUT …/artifacts//tmp/x` is a 400 on
both APIs instead of a file stored as `tmp/x`.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from registry.lib.names import describe_character, has_control_characters, unprintable_character

PATH_MAX = 1024
# A URL scheme (`file:`, `s3:`, `mlflow-artifacts:`) or a drive letter (`C:`) at the start of the first segment.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


class PathError(ValueError):
    """An artifact path that is not a safe relative path; the message says what is wrong."""


def fully_decoded(text: str) -> str:
    """`text` percent-decoded until decoding changes nothing more (each round that changes it makes it shorter)."""
    while True:
        once = unquote(text)
        if once == text:
            return text
        text = once


def check_artifact_path(path: object, *, folder: bool = False) -> str:
    """Return `path` if it obeys the rule, else raise PathError saying what to fix.

    With `folder`, the path names a folder: empty means the top, and one trailing `/` is allowed (and dropped).
    """
    if not isinstance(path, str):
        raise PathError("An artifact path must be a string.")
    decoded = fully_decoded(path)
    if "\x00" in decoded:
        raise PathError("An artifact path must not contain NUL bytes.")
    char = unprintable_character(decoded.replace(" ", ""))
    if char is not None:
        kind = "control characters" if has_control_characters(char) else "invisible characters"
        raise PathError(f"An artifact path must not contain {kind} (found {describe_character(char)}).")
    if "\\" in decoded:
        raise PathError("An artifact path must use '/' and never a backslash.")
    if decoded.startswith("/"):
        raise PathError(f"An artifact path must be relative: {path!r} starts with '/'; drop it (e.g. 'model/x.pkl').")
    if _SCHEME.match(decoded):
        raise PathError(
            f"An artifact path must be relative: {path!r} starts like a URL scheme or drive letter "
            f"({decoded.split(':', 1)[0]}:); name the file inside the run, e.g. 'model/x.pkl'."
        )
    body = decoded[:-1] if folder and decoded.endswith("/") else decoded
    segments = body.split("/") if body else []
    if ".." in segments:
        raise PathError("An artifact path must not contain '..' segments.")
    if "" in segments or "." in segments:
        raise PathError(
            f"An artifact path must not contain empty or '.' segments ('//', '/./'): {path!r}; write it as folder/file."
        )
    if decoded != path:
        raise PathError("An artifact path must not be percent-encoded; send it as plain text.")
    if not body and not folder:
        raise PathError("An artifact path must name a file (it is empty).")
    if len(body) > PATH_MAX:
        raise PathError(f"An artifact path must be at most {PATH_MAX} characters.")
    return body


def normalise_artifact_path(path: object, *, allow_empty: bool = False) -> str:
    """`check_artifact_path` under its older name: `allow_empty` means the path names a folder."""
    return check_artifact_path(path, folder=allow_empty)
