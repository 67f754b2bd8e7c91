"""The refusals every service raises and every surface translates: one vocabulary, four kinds.

The JSON API answers them with their `status`; the MLflow API with MLflow's error codes; the dashboard with a page or
a form error. Pure Python, so the lowest layers can raise them.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the registry refuses; `message` says what to do instead, `details` lists per-item problems."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: list | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class Invalid(DomainError):
    """The input breaks a rule (a name, a value, a state the object is in)."""


class NotFound(DomainError):
    """There is no such thing, or the caller may not read it: the two answer alike, so names never leak."""

    status = 404
    code = "not_found"


class Forbidden(DomainError):
    """The caller may read the thing but not do this to it."""

    status = 403
    code = "forbidden"


class Conflict(DomainError):
    """The thing already exists, or changed meanwhile."""

    status = 409
    code = "conflict"


class AlreadyExists(Conflict):
    """A name that is taken."""

    code = "already_exists"


class NameClash(Conflict):
    """A name that differs only in letter case from one that is taken (names are unique ignoring case). Not
    `already_exists`: clients read that as "use the existing one" and would then look for a name that is not there."""

    code = "name_clash"
