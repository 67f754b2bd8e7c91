"""Model cards through the API: read a model's or a version's card (a version's own sections over its model's), and
write sections (EDIT), so a training pipeline can fill what it knows. Writes go through catalog.card_update."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import BaseModel, ConfigDict, Field

from registry.api.catalog import ERRORS
from registry.catalog import services
from registry.catalog.access import model_for, version_for
from registry.catalog.models import ModelCard, ModelVersion, RegisteredModel
from registry.lib import model_card as cards
from registry.lib.access import Level

router = Router(tags=["model cards"])


class CardSectionOut(Schema):
    key: str
    title: str
    text: str
    inherited: bool = Field(description="The version has no text of its own here: this is the model's.")


class CardOut(Schema):
    model: str
    version: int | None
    model_revision: int
    version_revision: int | None
    sections: list[CardSectionOut]


def _section(key: str) -> Any:
    return Field(None, max_length=cards.SECTION_MAX, description=f"{cards.TITLES[key]} (Markdown).")


class CardSectionsIn(BaseModel):
    """The sections to write: Markdown each; an empty string removes one, sections not given stay as they are."""

    model_config = ConfigDict(extra="forbid")

    intended_use: str | None = _section("intended_use")
    out_of_scope: str | None = _section("out_of_scope")
    training_data: str | None = _section("training_data")
    evaluation: str | None = _section("evaluation")
    limitations: str | None = _section("limitations")
    owners: str | None = _section("owners")


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sections: CardSectionsIn = Field(
        examples=[{"intended_use": "Rank accounts by churn risk.", "limitations": "Not for new markets."}]
    )


def _card_out(model: RegisteredModel, version: ModelVersion | None) -> dict:
    if version is None:
        base = ModelCard.objects.filter(model=model, version__isnull=True).first()
        own, sections = None, cards.effective(base.sections if base else {}, None)
    else:
        base, own = ModelCard.objects.for_version(version)
        sections = cards.effective(base.sections if base else {}, own.sections if own else {})
    return {
        "model": model.name,
        "version": version.version if version else None,
        "model_revision": base.revision if base else 0,
        "version_revision": (own.revision if own else 0) if version else None,
        "sections": [{"key": s.key, "title": s.title, "text": s.text, "inherited": s.inherited} for s in sections],
    }


@router.get("/models/{name}/card", response={200: CardOut, **ERRORS}, summary="A model's card")
def get_model_card(request: HttpRequest, name: str):
    return _card_out(model_for(request.user, name), None)


@router.put("/models/{name}/card", response={200: CardOut, **ERRORS}, summary="Write sections of a model's card (EDIT)")
def put_model_card(request: HttpRequest, name: str, payload: CardIn):
    model = model_for(request.user, name, need=Level.EDIT)
    services.card_update(model=model, by=request.user, sections=payload.sections.model_dump(exclude_none=True))
    return _card_out(model, None)


@router.get(
    "/models/{name}/versions/{version}/card",
    response={200: CardOut, **ERRORS},
    summary="A version's card: its own sections over its model's",
)
def get_version_card(request: HttpRequest, name: str, version: int):
    mv = version_for(request.user, name, version)
    return _card_out(mv.model, mv)


@router.put(
    "/models/{name}/versions/{version}/card",
    response={200: CardOut, **ERRORS},
    summary="Write a version's own card sections (EDIT)",
)
def put_version_card(request: HttpRequest, name: str, version: int, payload: CardIn):
    mv = version_for(request.user, name, version, need=Level.EDIT)
    services.card_update(
        model=mv.model, version=mv, by=request.user, sections=payload.sections.model_dump(exclude_none=True)
    )
    return _card_out(mv.model, mv)
