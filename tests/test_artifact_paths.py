"""Artifact paths: hostile shapes are refused, harmless ones come out normalised."""

from __future__ import annotations

import pytest

from registry.lib.paths import PATH_MAX, PathError, normalise_artifact_path


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("..", "'..' segments"),
        ("../x", "'..' segments"),
        ("a/../b", "'..' segments"),
        ("a/..", "'..' segments"),
        ("a/./../../b", "'..' segments"),
        ("/etc/passwd", "relative"),
        ("//server/share", "relative"),
        ("C:\\x", "backslash"),
        ("C:/x", "drive letter"),
        ("c:x", "drive letter"),
        ("a\\b", "backslash"),
        ("..\\..\\x", "backslash"),
        ("a\x00b", "NUL"),
        ("a\nb", "control characters"),
        ("a\tb", "control characters"),
        ("a\x7fb", "control characters"),
        ("%2e%2e/x", "'..' segments"),
        ("%2E%2E/x", "'..' segments"),
        ("%252e%252e/x", "'..' segments"),
        ("..%2fx", "'..' segments"),
        ("a%2f..%2f..%2fb", "'..' segments"),
        ("%2fetc", "relative"),
        ("%5cwindows", "backslash"),
        ("a%00b", "NUL"),
        ("a%0ab", "control characters"),
        ("C%3a/x", "drive letter"),
        ("a%20b", "percent-encoded"),
        # Encoded more deeply than the decoder unwraps: still refused, because any encoding is.
        ("%2525252e%2525252e/x", "percent-encoded"),
        ("", "empty"),
        (".", "empty"),
        ("./", "empty"),
        ("a" * (PATH_MAX + 1), f"at most {PATH_MAX}"),
        (None, "string"),
        (b"model.pkl", "string"),
    ],
)
def test_refused(path, message):
    with pytest.raises(PathError, match=message):
        normalise_artifact_path(path)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a//b/./c", "a/b/c"),
        ("./model/model.pkl", "model/model.pkl"),
        ("model/", "model"),
        ("model.pkl", "model.pkl"),
        ("a/.../b", "a/.../b"),
        ("weights..bak", "weights..bak"),
        (".hidden/file", ".hidden/file"),
        ("données/modèle.pkl", "données/modèle.pkl"),
        ("a" * PATH_MAX, "a" * PATH_MAX),
    ],
)
def test_normalised(path, expected):
    assert normalise_artifact_path(path) == expected


def test_normalising_is_idempotent():
    once = normalise_artifact_path("./a//b/./c/")
    assert normalise_artifact_path(once) == once == "a/b/c"


@pytest.mark.parametrize("path", ["", ".", "./", ".//."])
def test_empty_allowed_when_asked(path):
    assert normalise_artifact_path(path, allow_empty=True) == ""


def test_allow_empty_does_not_relax_anything_else():
    with pytest.raises(PathError, match="'..' segments"):
        normalise_artifact_path("..", allow_empty=True)
    with pytest.raises(PathError, match="relative"):
        normalise_artifact_path("/", allow_empty=True)
