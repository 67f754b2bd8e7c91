"""Model references, as deployment jobs write them: `name/3`, `name@champion`, `name@production`, `name@latest`.

An optional `models:/` prefix (MLflow's URI form) is accepted. Pure Python, shared with the client.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGE_WORDS = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}


class ReferenceError_(ValueError):
    """A reference that cannot be read; the message shows the accepted forms."""


@dataclass(frozen=True)
class Reference:
    model: str
    version: int | None = None
    alias: str | None = None
    stage: str | None = None
    latest: bool = False

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.model}/{self.version}"
        if self.stage is not None:
            return f"{self.model}@{self.stage.lower()}"
        return f"{self.model}@{'latest' if self.latest else self.alias}"


_FORMS = "Write name/3 (a version), name@champion (an alias), name@production (a stage) or name@latest."


def parse_reference(text: str) -> Reference:
    ref = (text or "").strip()
    if ref.startswith("models:/"):
        ref = ref[len("models:/") :]
    if not ref:
        raise ReferenceError_(f"The reference is empty. {_FORMS}")
    if "@" in ref:
        name, _, tag = ref.rpartition("@")
        if not name or not tag:
            raise ReferenceError_(f"{text!r} is not a reference. {_FORMS}")
        lowered = tag.lower()
        if lowered in STAGE_WORDS:
            return Reference(model=name, stage=STAGE_WORDS[lowered])
        if lowered == "latest":
            return Reference(model=name, latest=True)
        return Reference(model=name, alias=tag)
    if "/" in ref:
        name, _, number = ref.rpartition("/")
        # isascii: str.isdigit() also accepts "²" and "١", which int() refuses or reads unexpectedly.
        if name and number.isascii() and number.isdigit() and int(number) >= 1:
            return Reference(model=name, version=int(number))
        if name and number.lower() in STAGE_WORDS:
            return Reference(model=name, stage=STAGE_WORDS[number.lower()])
        if name and number.lower() == "latest":
            return Reference(model=name, latest=True)
    raise ReferenceError_(f"{text!r} is not a reference. {_FORMS}")
