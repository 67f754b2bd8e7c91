"""Loading a registered model or version for a user: one helper per object that checks the permission and preloads.

    model = model_for(request.user, name, need=Level.EDIT)

answers NotFound when the user may not read the model (so a private model's name never leaks) and Forbidden when
they may read it but not do this. Views, API handlers and MLflow handlers all start with these; the services check
again (for free: the user's access is cached on the object).
"""

from __future__ import annotations

from registry.accounts.access import ask_for_access, level_of
from registry.catalog.models import VERSION_MAX, ModelVersion, RegisteredModel
from registry.lib.access import Level
from registry.lib.errors import Forbidden, NotFound

# What each level lets a user do to a model, in the words of a refusal.
DOING = {
    Level.READ: "see",
    Level.EDIT: "change",
    Level.MANAGE: "rename, delete or share",
}


def require(model: RegisteredModel, user, need: Level, *, doing: str | None = None) -> Level:
    """The user's level on `model`, if it reaches `need`; else NotFound (cannot read) or Forbidden."""
    level = level_of(model, user)
    if level < Level.READ:
        raise NotFound(f"No model named {model.name!r}.")
    if level < need:
        raise Forbidden(
            f"You need {need.name} access to {doing or DOING[need]} model {model.name!r}; you have {level.name}. "
            f"{ask_for_access(model)}"
        )
    return level


def model_for(user, name: str, *, need: Level = Level.READ, queryset=None) -> RegisteredModel:
    """The model named `name`, from `queryset` (to preload what the caller shows), if `user` holds `need` on it."""
    if queryset is None:
        model = RegisteredModel.objects.get_with_access(name, user)  # one statement: registration starts here
    else:
        model = queryset.filter(name=name).first()
    if model is None:
        raise NotFound(f"No model named {name!r}.")
    require(model, user, need)
    return model


def version_for(user, name: str, number: int, *, need: Level = Level.READ, queryset=None) -> ModelVersion:
    """Version `number` of model `name`, with its model loaded, if `user` holds `need` on the model."""
    if not 0 < number <= VERSION_MAX:
        raise NotFound(f"Model {name!r} has no version {number}.")
    queryset = ModelVersion.objects.select_related("model") if queryset is None else queryset
    version = queryset.filter(model__name=name, version=number).first()
    if version is None:
        model_for(user, name)  # "no such model" before "no such version", and nothing about models one cannot read
        raise NotFound(f"Model {name!r} has no version {number}.")
    require(version.model, user, need)
    return version
