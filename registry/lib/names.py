"""Validation of user-chosen names and keys. Pure Python: the client and the server share these rules."""

from __future__ import annotations

import re

MODEL_NAME_MAX = 256
KEY_MAX = 250
ALIAS_MAX = 256

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class NameError_(ValueError):
    """A name or key that breaks the registry's rules; the message says what to fix."""


def has_control_characters(value: str) -> bool:
    return bool(_CONTROL.search(value))


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise NameError_("A model name must be a non-empty string.")
    if name != name.strip():
        raise NameError_("A model name must not start or end with white space.")
    if len(name) > MODEL_NAME_MAX:
        raise NameError_(f"A model name must be at most {MODEL_NAME_MAX} characters (got {len(name)}).")
    if "/" in name:
        raise NameError_("A model name must not contain '/' (it separates the name from the version in references).")
    if "@" in name:
        raise NameError_("A model name must not contain '@' (it introduces an alias or stage in references).")
    if has_control_characters(name):
        raise NameError_("A model name must not contain control characters.")
    return name


def check_key(key: str, *, what: str = "key") -> str:
    """Keys of params, metrics and tags."""
    if not isinstance(key, str) or not key:
        raise NameError_(f"A {what} must be a non-empty string.")
    if len(key) > KEY_MAX:
        raise NameError_(f"A {what} must be at most {KEY_MAX} characters (got {len(key)}).")
    if has_control_characters(key):
        raise NameError_(f"A {what} must not contain control characters.")
    return key


# Aliases share the namespace of references (`name@alias`), so stage names and "latest" are reserved, and
# aliases that look like version numbers ("v3") would be ambiguous.
RESERVED_ALIASES = frozenset({"latest", "none", "staging", "production", "archived"})
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_VERSION_LIKE = re.compile(r"^[vV]\d+$")


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not alias:
        raise NameError_("An alias must be a non-empty string.")
    if len(alias) > ALIAS_MAX:
        raise NameError_(f"An alias must be at most {ALIAS_MAX} characters.")
    if not _ALIAS.match(alias):
        raise NameError_("An alias must start with a letter or '_' and contain only letters, digits, '_' and '-'.")
    if alias.lower() in RESERVED_ALIASES:
        raise NameError_(f"'{alias}' is reserved (stage names and 'latest' cannot be aliases).")
    if _VERSION_LIKE.match(alias):
        raise NameError_(f"'{alias}' looks like a version number; choose another alias.")
    return alias
