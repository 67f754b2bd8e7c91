"""The OpenAPI document's patterns accept exactly what the name, key and path rules accept.

schemathesis (test_openapi_fuzz.py) samples these strings at random; this module checks the corners by name: every
character the rules refuse for being invisible, private-use or an unusual space, including ones above U+FFFF, the
characters URLs reinterpret, and the segment rules of keys and paths.
"""

from __future__ import annotations

import sys
import unicodedata

import pytest
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter

from registry.api import schemas
from registry.lib import names, paths

INVISIBLE = [
    "\u00a0",  # no-break space
    "\u00ad",  # soft hyphen
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u202e",  # right-to-left override
    "\u2028",  # line separator
    "\u3000",  # ideographic space
    "\ufeff",  # byte order mark
    "\ue000",  # private use
    "\U000e0041",  # tag latin capital letter a
    "\U000f0000",  # supplementary private use
    "\U0010fffd",
    "\x85",
    "\t",
]
PRINTABLE = ["a", "Z", "7", "-", "_", ".", " ", "é", "准", "🙂", "\U0001d400", "@", "%", "?", "#", "\\", "/", ":"]


def _texts() -> list[str]:
    texts = ["", ".", "..", "...", " a", "a ", "a b", "x" * 256, "x" * 257, "/x", "x/", "a//b", "a/./b", "a/../b"]
    texts += ["./a", "a/.", "a/..", "val/loss", "C:x", "s3:x", "s3://b/k", "a%2Fb", "a%zz", "%41", "model.pkl"]
    for char in INVISIBLE + PRINTABLE:
        texts += [char, f"a{char}b", f"{char}a", f"a{char}"]
    return texts


def _schema_accepts(schema: dict, text: str) -> bool:
    return Draft202012Validator(schema).is_valid(text)


def _rule_accepts(rule, text: str) -> bool:
    try:
        rule(text)
    except (names.NameError_, paths.PathError):
        return False
    return True


def _json_schema(annotated) -> dict:
    return TypeAdapter(annotated).json_schema()


CASES = [
    ("model name", lambda: _json_schema(schemas.ModelName), names.check_model_name),
    ("experiment name", lambda: _json_schema(schemas.ExperimentName), names.check_experiment_name),
    ("metric or param key", lambda: schemas._KEY_SCHEMA, names.check_key),
    ("tag key", lambda: schemas._TAG_KEY_SCHEMA, names.check_tag_key),
    ("artifact path", lambda: schemas.ARTIFACT_PATH_SCHEMA, paths.check_artifact_path),
    (
        "artifact folder",
        lambda: schemas.ARTIFACT_PREFIX_SCHEMA,
        lambda text: paths.check_artifact_path(text, folder=True),
    ),
]


@pytest.mark.parametrize(("what", "schema", "rule"), CASES, ids=[case[0] for case in CASES])
def test_the_schema_accepts_what_the_rule_accepts(what, schema, rule):
    disagreements = [
        (text, _schema_accepts(schema(), text))
        for text in _texts()
        if _schema_accepts(schema(), text) != _rule_accepts(rule, text)
    ]
    assert not disagreements, f"{what}: schema and rule disagree on (text, schema accepts): {disagreements}"


def test_the_written_out_ranges_are_unicodes_own():
    """UNPRINTABLE_RANGES are the runs of code points in the categories the rule refuses (surrogates aside), as this
    Python's Unicode database has them."""
    refused = (names._UNPRINTABLE_CATEGORIES - {"Cs"}) | {"Zs"}
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if char == " " or unicodedata.category(char) not in refused:
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    assert tuple(ranges) == names.UNPRINTABLE_RANGES


def test_the_unprintable_class_is_what_the_rule_refuses():
    import re

    refused = re.compile(f"[{names.unprintable_class()}]")
    for char in INVISIBLE:
        assert refused.fullmatch(char) and names.unprintable_character(char) == char
    for char in PRINTABLE:
        assert not refused.fullmatch(char) and names.unprintable_character(char) is None
