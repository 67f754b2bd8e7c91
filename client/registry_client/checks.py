"""The server's naming and path rules (registry_client.rules) applied before a request is sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from registry_client import rules
from registry_client.errors import RegistryError


def checked(check: Callable[..., str], value: Any, **options: Any) -> str:
    """`value` if it passes `check`, else the RegistryError the server would answer, raised before anything is sent
    (status None: no request was made)."""
    try:
        return check(value, **options)
    except rules.PathError as exc:
        raise RegistryError(None, "invalid_path", str(exc)) from None
    except rules.NameError_ as exc:
        raise RegistryError(None, "bad_request", str(exc)) from None


def checked_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags as strings, every key checked."""
    return {checked(rules.check_tag_key, str(key)): str(value) for key, value in (tags or {}).items()}
