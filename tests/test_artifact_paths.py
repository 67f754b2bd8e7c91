"""Artifact paths: one rule (registry.lib.paths) for every route; hostile or odd shapes are refused, never cleaned."""

from __future__ import annotations

import pytest

from registry.lib.paths import PATH_MAX, PathError, check_artifact_path, fully_decoded, normalise_artifact_path


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
        # Decoded until it stops changing, however deep.
        ("%2525252e%2525252e/x", "'..' segments"),
        ("a%252Fb", "percent-encoded"),
        ("a%25252F..%25252Fb", "'..' segments"),
        ("", "empty"),
        (".", "'.' segments"),
        ("./", "'.' segments"),
        ("./model/model.pkl", "'.' segments"),
        ("a//b", "empty or '.' segments"),
        ("a/./b", "empty or '.' segments"),
        ("model/", "empty or '.' segments"),
        ("file:///tmp/x", "URL scheme"),
        ("file:/tmp/x", "URL scheme"),
        ("s3://bucket/x", "URL scheme"),
        ("mlflow-artifacts:/runs/x", "URL scheme"),
        ("file%3A%2F%2F%2Ftmp%2Fx", "URL scheme"),
        ("a\u202eb", "invisible characters"),
        ("a\u200bb", "invisible characters"),
        ("a" * (PATH_MAX + 1), f"at most {PATH_MAX}"),
        (None, "string"),
        (b"model.pkl", "string"),
    ],
)
def test_refused(path, message):
    with pytest.raises(PathError, match=message):
        normalise_artifact_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "model.pkl",
        "model/model.pkl",
        "a/.../b",
        "weights..bak",
        ".hidden/file",
        "données/modèle.pkl",
        "with space/file name.txt",
        "2024-01-01T10:00/x",
        "a" * PATH_MAX,
    ],
)
def test_accepted_unchanged(path):
    assert check_artifact_path(path) == path
    assert normalise_artifact_path(path) == path


@pytest.mark.parametrize(("path", "expected"), [("", ""), ("model/", "model"), ("a/b/", "a/b"), ("a/b", "a/b")])
def test_folders_may_be_empty_or_end_with_one_slash(path, expected):
    assert check_artifact_path(path, folder=True) == expected
    assert normalise_artifact_path(path, allow_empty=True) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (".", "'.' segments"),
        ("./", "'.' segments"),
        ("a//", "empty or '.' segments"),
        ("..", "'..' segments"),
        ("/", "relative"),
        ("/tmp/x", "relative"),
        ("file:///tmp/x", "URL scheme"),
    ],
)
def test_folders_obey_the_rest_of_the_rule(path, message):
    with pytest.raises(PathError, match=message):
        check_artifact_path(path, folder=True)


def test_fully_decoded_stops_when_stable():
    assert fully_decoded("a%25252Fb") == "a/b"
    assert fully_decoded("100%") == "100%"
    assert fully_decoded("plain") == "plain"
