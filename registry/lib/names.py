"""The one rule for user-chosen names and keys: models, experiments, aliases, tag keys, param and metric keys.

Pure Python (no Django): every surface (the JSON API, the MLflow API, the dashboard, the admin) reaches it through
the services, and the Python client carries a copy (`registry_client/rules.py`, kept equal by tests/test_names.py)
so it can refuse a bad name before sending anything.

Names appear in URLs (`/models/<name>/`), in references (`name@alias`, `name/3`) and on screens, so a name must
read as what it is: printable, with no character a URL or a path would reinterpret (`/ \\ % ? #`), not `.` or
`..` (a browser folds `/models/../` into `/`), and without invisible characters such as U+202E RIGHT-TO-LEFT
OVERRIDE that make one name look like another.
"""

from __future__ import annotations

import re
import unicodedata

MODEL_NAME_MAX = 256
EXPERIMENT_NAME_MAX = 256
KEY_MAX = 250
ALIAS_MAX = 256

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Characters that URLs and file paths reinterpret: separators, the escape, the query and the fragment.
NAME_FORBIDDEN = "/\\%?#"
# Unicode categories that do not print as themselves: controls, format characters (bidi overrides, zero-width
# joiners, soft hyphens), surrogates, private use, line and paragraph separators.
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


class NameError_(ValueError):
    """A name or key that breaks the registry's rules; the message says what to fix."""


def has_control_characters(value: str) -> bool:
    return bool(_CONTROL.search(value))


def describe_character(char: str) -> str:
    """`U+202E (RIGHT-TO-LEFT OVERRIDE)`: how a message names a character that may not show on screen."""
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"


def unprintable_character(value: str) -> str | None:
    """The first character of `value` that does not print as itself, or None.

    Refused: controls, format characters (category Cf: bidi overrides, zero-width spaces and joiners), surrogates,
    private-use characters, line and paragraph separators, and every space other than the plain space (a no-break
    space reads like a space but is another name)."""
    for char in value:
        if char == " ":
            continue
        category = unicodedata.category(char)
        if category in _UNPRINTABLE_CATEGORIES or category == "Zs":
            return char
    return None


# What `unprintable_character` refuses, as code point ranges, for the JSON Schema patterns that state the rules
# (registry.api.schemas). Written out so that no process walks all of Unicode as it starts (0.15 s);
# tests/api/test_schema_patterns.py derives them from `unicodedata` and `_UNPRINTABLE_CATEGORIES` and fails when a
# Python with a newer Unicode moves one. Surrogates (Cs) are left out: no UTF-8 text carries a lone one, and the
# regex engines of other languages (Rust's, which schema validators use) refuse them in a class.
UNPRINTABLE_RANGES = (
    (0x0, 0x1F), (0x7F, 0xA0), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F),
    (0x890, 0x891), (0x8E2, 0x8E2), (0x1680, 0x1680), (0x180E, 0x180E), (0x2000, 0x200F), (0x2028, 0x202F),
    (0x205F, 0x2064), (0x2066, 0x206F), (0x3000, 0x3000), (0xE000, 0xF8FF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD),
)  # fmt: skip


def unprintable_class() -> str:
    """UNPRINTABLE_RANGES as the inside of a regular-expression character class (`[...]`). Code points above U+FFFF
    appear as themselves, which Python's `re` and ECMAScript's `u` mode both read."""
    return "".join(_class_char(a) if a == b else f"{_class_char(a)}-{_class_char(b)}" for a, b in UNPRINTABLE_RANGES)


def _class_char(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


def _check_printable(value: str, what: str) -> None:
    char = unprintable_character(value)
    if char is None:
        return
    if has_control_characters(char):
        raise NameError_(f"{_a(what)} must not contain control characters (found {describe_character(char)}).")
    raise NameError_(
        f"{_a(what)} must contain only printable characters; {describe_character(char)} is invisible or changes how "
        "the text around it reads. Remove it and type the name again."
    )


def _a(what: str) -> str:
    article = "An" if what[:1].lower() in "aeiou" else "A"
    return f"{article} {what}"


def check_name(name: object, *, what: str, max_length: int, also_forbidden: str = "") -> str:
    """The rule shared by model and experiment names; `also_forbidden` adds characters a kind of name reserves."""
    if not isinstance(name, str) or not name.strip():
        raise NameError_(f"{_a(what)} must be a non-empty string.")
    if name != name.strip():
        raise NameError_(f"{_a(what)} must not start or end with white space.")
    if len(name) > max_length:
        raise NameError_(f"{_a(what)} must be at most {max_length} characters (got {len(name)}).")
    _check_printable(name, what)
    if name in (".", ".."):
        raise NameError_(f"{_a(what)} must not be {name!r}: in a URL it means a folder, not a name.")
    for char in NAME_FORBIDDEN + also_forbidden:
        if char in name:
            raise NameError_(f"{_a(what)} must not contain {char!r}: {_WHY[char]}. Use letters, digits, '-', '_'.")
    return name


_WHY = {
    "/": "it separates the parts of URLs and references (name/3)",
    "\\": "it separates folders on Windows",
    "%": "it starts an escape in URLs (a%2Fb would read as a/b)",
    "?": "it starts the query of a URL",
    "#": "it starts the fragment of a URL",
    "@": "it introduces an alias or stage in references (name@champion)",
}


def check_model_name(name: object) -> str:
    return check_name(name, what="model name", max_length=MODEL_NAME_MAX, also_forbidden="@")


def check_experiment_name(name: object) -> str:
    return check_name(name, what="experiment name", max_length=EXPERIMENT_NAME_MAX)


def case_clash_message(what: str, wanted: str, existing: str) -> str:
    """What a refused name says when another differs from it only in case."""
    if wanted == existing:
        return f"{_a(what)} {existing!r} already exists; choose another name."
    return (
        f"{_a(what)} {existing!r} already exists, and names are unique ignoring case, so {wanted!r} would be "
        f"mistaken for it; use {existing!r} or choose another name."
    )


def _check_segments(key: str, what: str) -> None:
    # Keys may use '/' as a namespace separator ("val/loss", MLflow allows it), but not as a path trick.
    if key in (".", "..") or any(part in ("", ".", "..") for part in key.split("/")):
        raise NameError_(
            f"{_a(what)} must not be '.' or '..', start or end with '/', or contain '//', '/./' or '/../' "
            f"(got {key!r})."
        )


def check_key(key: object, *, what: str = "key") -> str:
    """Keys of params and metrics (MLflow's shapes: `val/loss`, `a b`, `准确率`)."""
    if not isinstance(key, str) or not key:
        raise NameError_(f"{_a(what)} must be a non-empty string.")
    if len(key) > KEY_MAX:
        raise NameError_(f"{_a(what)} must be at most {KEY_MAX} characters (got {len(key)}).")
    _check_printable(key, what)
    _check_segments(key, what)
    return key


def check_tag_key(key: object, *, what: str = "tag key") -> str:
    """Tag keys of models, versions, experiments and runs: a key, and none of `\\ % ? #` (MLflow refuses them too;
    `mlflow.source.git.commit` and `team/owner` are fine)."""
    check_key(key, what=what)
    for char in "\\%?#":
        if char in key:
            raise NameError_(f"{_a(what)} must not contain {char!r}: {_WHY[char]}.")
    return key


# Aliases share the namespace of references (`name@alias`), so stage names and "latest" are reserved, and
# aliases that look like version numbers ("v3") would be ambiguous (MLflow refuses `latest` and `v3` too).
RESERVED_ALIASES = frozenset({"latest", "none", "staging", "production", "archived"})
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_VERSION_LIKE = re.compile(r"^[vV]\d+$")


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not alias:
        raise NameError_("An alias must be a non-empty string.")
    if len(alias) > ALIAS_MAX:
        raise NameError_(f"An alias must be at most {ALIAS_MAX} characters.")
    if not _ALIAS.fullmatch(alias):
        raise NameError_("An alias must start with a letter or '_' and contain only letters, digits, '_' and '-'.")
    if alias.lower() in RESERVED_ALIASES:
        raise NameError_(f"'{alias}' is reserved (stage names and 'latest' cannot be aliases).")
    if _VERSION_LIKE.match(alias):
        raise NameError_(f"'{alias}' looks like a version number; choose another alias.")
    return alias
