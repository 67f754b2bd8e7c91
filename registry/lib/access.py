"""Access levels: what a user may do with a registered model or an experiment (and so with its versions, runs,
datasets and artifacts). Pure Python: the client shows the same names.

    NONE < READ < EDIT < MANAGE

READ sees it; EDIT changes its content (descriptions, tags, versions, runs, unprotected aliases); MANAGE renames and
deletes it and decides who else has access. MLflow's permission names map onto these (NO_PERMISSIONS is NONE).
"""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    NONE = 0
    READ = 1
    EDIT = 2
    MANAGE = 3

    @classmethod
    def parse(cls, text: object) -> Level:
        """A level from its name in any case ("edit", "EDIT") or MLflow's names ("NO_PERMISSIONS")."""
        if isinstance(text, Level):
            return text
        name = str(text).strip().upper()
        name = {"NO_PERMISSIONS": "NONE", "USE": "READ"}.get(name, name)
        try:
            return cls[name]
        except KeyError:
            raise ValueError(
                f"Unknown access level {text!r}; use one of {', '.join(level.name for level in cls)}."
            ) from None

    @property
    def mlflow_name(self) -> str:
        return "NO_PERMISSIONS" if self is Level.NONE else self.name

    @property
    def label(self) -> str:
        return self.name.capitalize()


GRANTABLE = (Level.READ, Level.EDIT, Level.MANAGE)
