"""Writes to the catalog: registered models, their versions, tags, descriptions, model cards, and who may do what
with them. Each function checks that `by` may do it, writes, and records the audit event in one transaction; every
surface (the JSON API, the MLflow API, the dashboard, the admin, management commands) calls these and only
translates their errors.

Stages and aliases are moved by the governance services (they are what deployments pull, under approval rules).
Files are written by registry.catalog.artifact_files, and the bytes behind them (keys, hashing writes, ranged reads,
freeing) are registry.catalog.blobs'; a version's signature is registry.catalog.version_signature's; the catalog's
refusals are registry.catalog.errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry import rawsql
from registry.accounts import grants
from registry.accounts.access import level_of
from registry.audit import services as audit
from registry.audit.models import AuditAction, WebhookEventType
from registry.catalog import blobs, version_signature
from registry.catalog.access import require
from registry.catalog.errors import (
    AlreadyExists,
    CatalogError,
    InvalidPath,
    NoSuchFolder,
)
from registry.catalog.models import ArtifactFile, ModelCard, ModelGrant, ModelVersion, RegisteredModel, Stage
from registry.lib import errors
from registry.lib import model_card as cards
from registry.lib.access import Level
from registry.lib.errors import Forbidden
from registry.lib.names import KEY_MAX, NameError_, case_clash_message, check_model_name, check_tag_key
from registry.lib.paths import PathError, normalise_artifact_path
from registry.scanning import services as scanning
from registry.tracking import access as tracking_access
from registry.tracking.models import Run

logger = logging.getLogger(__name__)

TAG_VALUE_MAX = 8000


def _require_user(by) -> None:
    if by is None or not getattr(by, "is_authenticated", False) or not by.is_active:
        raise Forbidden("Sign in to change the registry.")


def _checked_name(name: str) -> str:
    try:
        return check_model_name(name)
    except NameError_ as exc:
        raise CatalogError(str(exc)) from None


def _checked_tags(tags: Mapping[str, object] | None) -> dict[str, str]:
    checked = {}
    for key, value in (tags or {}).items():
        try:
            check_tag_key(key)
        except NameError_ as exc:
            raise CatalogError(str(exc)) from None
        text = "" if value is None else str(value)
        if len(text) > TAG_VALUE_MAX:
            raise CatalogError(f"The value of tag {key!r} is {len(text)} characters; the limit is {TAG_VALUE_MAX}.")
        checked[key] = text
    return checked


def _refuse_case_clash(name: str, *, other_than: RegisteredModel | None = None) -> None:
    """Names are unique ignoring case (a database constraint on LOWER(name) holds it): `M1` beside `m1` is refused
    with a message naming the model that exists. The same LOWER() as the constraint, so both agree on every
    database."""
    clash = RegisteredModel.objects.named_ignoring_case(name)
    if other_than is not None:
        clash = clash.exclude(pk=other_than.pk)
    existing = clash.values_list("name", flat=True).first()
    if existing is not None:
        raise _taken(name, existing)


def _taken(name: str, existing: str | None = None) -> errors.Conflict:
    """AlreadyExists for the very name, NameClash for another case of it; the message names the one that exists."""
    if existing is None:
        existing = RegisteredModel.objects.named_ignoring_case(name).values_list("name", flat=True).first() or name
    message = case_clash_message("model", name, existing)
    return AlreadyExists(message) if existing == name else errors.NameClash(message)


def _tag_change(before: dict, after: dict) -> dict:
    return {
        "set": {k: v for k, v in after.items() if before.get(k) != v},
        "removed": sorted(k for k in before if k not in after),
    }


# --- Registered models ----------------------------------------------------------------------------------------------


def model_create(
    *, name: str, by, description: str = "", tags: Mapping[str, str] | None = None, default_level=None
) -> RegisteredModel:
    """A new model owned by `by`; any signed-in user with a write token may create one."""
    _require_user(by)
    name = _checked_name(name)
    tags = _checked_tags(tags)
    _refuse_case_clash(name)
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                name=name, owner=by, description=description, tags=tags, default_level=default_level
            )
            audit.record(AuditAction.MODEL_CREATED, actor=by, model=model, to_value=name)
    except IntegrityError:
        raise _taken(name) from None
    return model


def model_rename(*, model: RegisteredModel, new_name: str, by) -> RegisteredModel:
    """Rename a model (MANAGE: deployments refer to models by name)."""
    require(model, by, Level.MANAGE, doing="rename")
    new_name = _checked_name(new_name)
    old_name = model.name
    if new_name == old_name:
        return model
    _refuse_case_clash(new_name, other_than=model)  # "m1" may become "M1"
    try:
        with transaction.atomic():
            now = timezone.now()
            # Only these columns: a full save would write back a stale `last_version`.
            RegisteredModel.objects.filter(pk=model.pk).update(name=new_name, updated_at=now)
            model.name, model.updated_at = new_name, now
            audit.record(AuditAction.MODEL_RENAMED, actor=by, model=model, from_value=old_name, to_value=new_name)
    except IntegrityError:
        model.name = old_name
        raise _taken(new_name) from None
    return model


def model_update(
    *, model: RegisteredModel, by, description: str | None = None, tags: Mapping[str, str] | None = None
) -> RegisteredModel:
    """Change the description and/or replace the tags (EDIT)."""
    require(model, by, Level.EDIT)
    with transaction.atomic():
        locked = RegisteredModel.objects.select_for_update().only("description", "tags").get(pk=model.pk)
        changes: dict = {}
        if description is not None and description != locked.description:
            changes["description"] = description
            audit.record(AuditAction.MODEL_UPDATED, actor=by, model=model, data={"description": description[:2000]})
        if tags is not None:
            checked = _checked_tags(tags)
            if checked != locked.tags:
                changes["tags"] = checked
                audit.record(
                    AuditAction.MODEL_TAGS_CHANGED, actor=by, model=model, data=_tag_change(locked.tags, checked)
                )
        if changes:
            changes["updated_at"] = timezone.now()
            RegisteredModel.objects.filter(pk=model.pk).update(**changes)
            for field, value in changes.items():
                setattr(model, field, value)
    return model


def model_tag_set(*, model: RegisteredModel, key: str, value: str | None, by) -> RegisteredModel:
    """Set one tag, or with value None delete it (EDIT); deleting a tag that is not there is CatalogError."""
    require(model, by, Level.EDIT)
    tags = _one_tag(RegisteredModel, model, key, value)
    return model_update(model=model, by=by, tags=tags)


class InProduction(CatalogError):
    """A version in Production cannot go: it is what deployments pull."""

    status = 409
    code = "conflict"


class TagNotFound(CatalogError):
    status = 404
    code = "not_found"


def _one_tag(model_class, row, key: str, value: str | None) -> dict:
    if not isinstance(key, str) or len(key) > KEY_MAX:
        raise CatalogError(f"Tag keys are strings of at most {KEY_MAX} characters.")
    current = dict(model_class.objects.values_list("tags", flat=True).get(pk=row.pk) or {})
    if value is None:
        if key not in current:
            raise TagNotFound(f"No tag with key {key!r} on {row}.")
        current.pop(key)
    else:
        current[key] = value
    return current


def model_delete(*, model: RegisteredModel, by) -> None:
    """Delete a model with its versions and their files (MANAGE). Refused while a version is in Production."""
    require(model, by, Level.MANAGE, doing="delete")
    if model.versions.filter(stage=Stage.PRODUCTION).exists():
        raise InProduction(f"{model.name!r} has a version in Production; archive it before deleting the model.")
    with transaction.atomic():
        keys = list(ArtifactFile.objects.filter(version__model=model).values_list("storage_key", flat=True))
        count = model.versions.count()
        audit.record(
            AuditAction.MODEL_DELETED,
            actor=by,
            model=model,
            from_value=model.name,
            data={"versions": count, "last_version": model.last_version},
        )
        model.delete()
        for key in set(keys):
            blobs.delete_when_unused(key)


# --- Model cards ----------------------------------------------------------------------------------------------------


class CardInvalid(CatalogError):
    """A card section that cannot be stored (unknown, not text, over the size limit); `field` names the section."""

    def __init__(self, error: cards.CardError):
        super().__init__(error.message, [{"field": error.field}])
        self.field = error.field


def card_update(
    *, model: RegisteredModel, by, sections: Mapping[str, str | None], version: ModelVersion | None = None
) -> ModelCard:
    """Write the sections given (EDIT on the model): the model's card, or with `version` that version's own sections
    over it. A section given empty is removed (a version's then reads its model's again); sections not given stay.
    Each save that changes something bumps the revision and records the changed sections whole in the audit log.
    """
    require(model, by, Level.EDIT, doing="edit the model card of")
    if version is not None and version.model_id != model.pk:
        raise CatalogError(f"Version {version.version} is not a version of {model.name!r}.")
    try:
        given = cards.checked_sections({key: value or "" for key, value in sections.items()})
        cleared = {key for key, value in sections.items() if not (value or "").strip()}
    except cards.CardError as exc:
        raise CardInvalid(exc) from None
    with transaction.atomic():
        card, _ = ModelCard.objects.select_for_update().get_or_create(model=model, version=version)
        after = {key: text for key, text in card.sections.items() if key not in cleared}
        after.update(given)
        changed = {key: after.get(key, "") for key in cards.SECTION_KEYS if after.get(key) != card.sections.get(key)}
        if not changed:
            return card
        card.sections = {key: after[key] for key in cards.SECTION_KEYS if key in after}
        card.revision += 1
        card.updated_by = by
        card.updated_at = timezone.now()
        card.save()
        where = {"version": version} if version is not None else {"model": model}
        audit.record(
            AuditAction.MODEL_CARD_CHANGED,
            actor=by,
            to_value=f"revision {card.revision}",
            data={
                "revision": card.revision,
                "scope": f"version {version.version}" if version else "model",
                "sections": changed,
            },
            **where,
        )
    return card


# --- Access ---------------------------------------------------------------------------------------------------------


def _stage_list(stages, what: str) -> list[str]:
    parsed = []
    for stage in stages or []:
        try:
            parsed.append(Stage.parse(stage).value)
        except ValueError as exc:
            raise CatalogError(f"{what}: {exc}") from None
    return sorted(set(parsed))


def model_grant_set(
    *, model: RegisteredModel, by, user=None, group=None, level, request_stages=(), approve_stages=()
) -> ModelGrant:
    """Give a user or group a level on the model, and the stages they may request and approve for it (MANAGE)."""
    require(model, by, Level.MANAGE, doing="share")
    extra = {
        "request_stages": _stage_list(request_stages, "request_stages"),
        "approve_stages": _stage_list(approve_stages, "approve_stages"),
    }
    return grants.grant_set(
        obj=model, by=by, user=user, group=group, level=level, extra=extra, scope={"model": model}, what=_what(model)
    )


def model_grant_revoke(*, model: RegisteredModel, by, user=None, group=None) -> None:
    require(model, by, Level.MANAGE, doing="share")
    grants.grant_revoke(obj=model, by=by, user=user, group=group, scope={"model": model}, what=_what(model))


def model_owner_set(*, model: RegisteredModel, by, owner) -> None:
    require(model, by, Level.MANAGE, doing="hand over")
    grants.owner_set(obj=model, by=by, owner=owner, scope={"model": model}, what=_what(model))


def model_default_level_set(*, model: RegisteredModel, by, level) -> None:
    require(model, by, Level.MANAGE, doing="share")
    grants.default_level_set(obj=model, by=by, level=level, scope={"model": model}, what=_what(model))


def _what(model: RegisteredModel) -> str:
    return f"model {model.name!r}"


# --- Versions -------------------------------------------------------------------------------------------------------


def version_create(
    *,
    model: RegisteredModel,
    by,
    run: Run | None = None,
    artifact_path: str | None = None,
    source: str = "",
    description: str = "",
    tags: Mapping[str, str] | None = None,
    external_location: str = "",
    external_run_id: str = "",
    logged_model_id: str = "",
    signature: Mapping | None = None,
    signature_source: str = "api",
) -> ModelVersion:
    """Register the next version of `model` (EDIT on the model; registering a run's files also needs EDIT on the
    run's experiment: the run's lineage now names the version).

    With `external_location` the version is an external reference: its files are not stored here, and the location
    is recorded as text that the registry never reads, fetches, lists or resolves (no artifact path then).
    `external_run_id` records the run a client named when this registry has no such run.
    `signature` (ours or MLflow's form, see registry.lib.signature) is stored normalised; without one, an `MLmodel`
    file among the version's files gives it. A malformed signature is refused (SignatureInvalid names the field)
    before anything is written; a malformed MLmodel leaves the version without a signature.

    Numbers come from incrementing `RegisteredModel.last_version` under the row lock that the UPDATE takes, in the
    same transaction as the insert: concurrent registrations queue on that row, and a failed one rolls its number
    back, so numbers have neither gaps nor duplicates.

    With `run` and `artifact_path`, the run's files under that path become the version's files (same blobs); the
    returned version's `created_files` lists the ArtifactFile rows made for it (empty without a path), so callers can
    answer without reading them back.
    """
    require(model, by, Level.EDIT, doing="register versions of")
    if run is not None:
        tracking_access.require_experiment_level(run, by, Level.EDIT, doing="register its runs as model versions")
    tags = _checked_tags(tags)
    external_location, external_run_id, logged_model_id = _checked_lineage(
        external_location, external_run_id, logged_model_id
    )
    if external_location and artifact_path is not None:
        raise CatalogError("A version is either an external reference or the files of a run folder, not both.")
    checked_signature = version_signature.checked_signature(signature, signature_source)
    prefix = None
    if artifact_path is not None:
        if run is None:
            raise CatalogError("An artifact path needs the run it belongs to.")
        try:
            prefix = normalise_artifact_path(artifact_path, allow_empty=True)
        except PathError as exc:
            raise InvalidPath(str(exc)) from None
        source = source or f"runs:/{run.pk}/{prefix}".rstrip("/")

    connection = rawsql.connection_for(ModelVersion, write=True)
    with transaction.atomic(using=connection.alias):
        now = timezone.now()
        version = _insert_numbered(
            ModelVersion(
                model=model,
                run=run,
                source=source,
                created_by=by,
                description=description,
                tags=tags,
                external_location=external_location,
                external_run_id="" if run is not None else external_run_id,
                logged_model_id=logged_model_id,
                signature=checked_signature,
                created_at=now,
                updated_at=now,
            )
        )
        version.created_files = _copy_run_files(run, prefix, version) if prefix is not None else []
        scanning.version_registered(version)  # the run's files were scanned already: an unsafe one is told now
        if checked_signature is None:
            version_signature.signature_from_files(version, version.created_files)
        audit.record(
            AuditAction.VERSION_CREATED,
            actor=by,
            version=version,
            to_value=source,
            data={"external_location": external_location} if external_location else None,
        )
        audit.emit(WebhookEventType.VERSION_CREATED, model=model, payload=audit.version_payload(version))
    model.last_version = version.version
    model.updated_at = now
    return version


# Longest texts recorded as lineage (the columns' sizes).
EXTERNAL_LOCATION_MAX = 2048
EXTERNAL_RUN_ID_MAX = 256
LOGGED_MODEL_ID_MAX = 64


def _checked_lineage(location: str, run_id: str, logged_model_id: str) -> tuple[str, str, str]:
    for value, limit, what in (
        (location, EXTERNAL_LOCATION_MAX, "An external location"),
        (run_id, EXTERNAL_RUN_ID_MAX, "A run id"),
        (logged_model_id, LOGGED_MODEL_ID_MAX, "A logged model id"),
    ):
        if not isinstance(value, str):
            raise CatalogError(f"{what} must be text.")
        if len(value) > limit:
            raise CatalogError(f"{what} is at most {limit} characters (got {len(value)}).")
    return location, run_id, logged_model_id


def version_copy(
    *, version: ModelVersion, model: RegisteredModel, by, source: str = "", description: str | None = None, tags=None
) -> ModelVersion:
    """Copy `version` (READ on its model) to the next version of `model` (EDIT): the same files (same blobs), the
    same lineage (run, external location, logged model), its description and tags unless given. Recorded as a
    new version whose source names the original (`models:/<name>/<number>` by default)."""
    require(version.model, by, Level.READ)
    require(model, by, Level.EDIT, doing="register versions of")
    source = source or f"models:/{version.model.name}/{version.version}"
    connection = rawsql.connection_for(ModelVersion, write=True)
    with transaction.atomic(using=connection.alias):
        now = timezone.now()
        copy = _insert_numbered(
            ModelVersion(
                model=model,
                run_id=version.run_id,
                source=source,
                created_by=by,
                description=version.description if description is None else description,
                tags=_checked_tags(version.tags if tags is None else tags),
                external_location=version.external_location,
                external_run_id=version.external_run_id,
                logged_model_id=version.logged_model_id,
                created_at=now,
                updated_at=now,
            )
        )
        copy.created_files = ArtifactFile.objects.copy_version(from_version_id=version.pk, to_version_id=copy.pk)
        scanning.version_registered(copy)  # a copy of an unsafe version is told unsafe, as a registration is
        audit.record(
            AuditAction.VERSION_CREATED,
            actor=by,
            version=copy,
            to_value=source,
            data={"copied_from": f"{version.model.name}/{version.version}", "files": len(copy.created_files)},
        )
        audit.emit(WebhookEventType.VERSION_CREATED, model=model, payload=audit.version_payload(copy))
    model.last_version = copy.version
    model.updated_at = now
    return copy


def version_register(
    *, model_name: str, run: Run, artifact_path: str, by, description: str = "", create_model: bool = False
) -> ModelVersion:
    """Register a run's folder as the next version of the model named `model_name`, creating the model first when
    `create_model` is set and no model has that name (the dashboard's "register from a run"). One transaction: a
    refused registration leaves no new, empty model behind."""
    _require_user(by)
    with transaction.atomic():
        model = RegisteredModel.objects.get_with_access(model_name, by)
        if model is None or level_of(model, by) < Level.READ:
            if not create_model:
                raise errors.NotFound(f"No model named {model_name!r}; tick “create it” to register its first version.")
            model = model_create(name=model_name, by=by)
        return version_create(model=model, by=by, run=run, artifact_path=artifact_path, description=description)


UNCHANGED = object()  # version_update's `signature` when the caller does not change it (None removes it)


def version_update(
    *,
    version: ModelVersion,
    by,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    signature=UNCHANGED,
) -> ModelVersion:
    """Change a version's description, replace its tags and/or set its signature (None removes it) (EDIT on its
    model)."""
    require(version.model, by, Level.EDIT)
    if signature is not UNCHANGED:
        checked_signature = version_signature.checked_signature(signature, "api")
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().only("description", "tags", "signature").get(pk=version.pk)
        changes: dict = {}
        if signature is not UNCHANGED and checked_signature != locked.signature:
            changes["signature"] = checked_signature
            version_signature.record_signature(version, by, checked_signature)
        if description is not None and description != locked.description:
            changes["description"] = description
            audit.record(
                AuditAction.VERSION_UPDATED, actor=by, version=version, data={"description": description[:2000]}
            )
        if tags is not None:
            checked = _checked_tags(tags)
            if checked != locked.tags:
                changes["tags"] = checked
                audit.record(
                    AuditAction.VERSION_TAGS_CHANGED, actor=by, version=version, data=_tag_change(locked.tags, checked)
                )
        if changes:
            changes["updated_at"] = timezone.now()
            ModelVersion.objects.filter(pk=version.pk).update(**changes)
            for field, value in changes.items():
                setattr(version, field, value)
    return version


def version_tag_set(*, version: ModelVersion, key: str, value: str | None, by) -> ModelVersion:
    """Set one tag, or with value None delete it (EDIT on the model)."""
    require(version.model, by, Level.EDIT)
    tags = _one_tag(ModelVersion, version, key, value)
    return version_update(version=version, by=by, tags=tags)


def may_delete_version(version: ModelVersion, user) -> bool:
    """Whoever manages the model, and the version's own author with EDIT."""
    level = level_of(version.model, user)
    return level >= Level.MANAGE or (level >= Level.EDIT and version.created_by_id == user.pk)


def version_delete(*, version: ModelVersion, by) -> None:
    """Delete a version and its files (MANAGE on the model, or EDIT for the version's own author). Refused while it
    is in Production."""
    require(version.model, by, Level.EDIT, doing="delete versions of")
    if not may_delete_version(version, by):
        raise Forbidden(
            f"Only the author of version {version.version} or someone who manages {version.model.name!r} may delete it."
        )
    if version.stage == Stage.PRODUCTION:
        raise InProduction(f"Version {version.version} is in Production; archive it before deleting it.")
    with transaction.atomic():
        keys = list(ArtifactFile.objects.filter(version=version).values_list("storage_key", flat=True))
        audit.record(
            AuditAction.VERSION_DELETED,
            actor=by,
            version=version,
            from_value=version.stage,
            data={"source": version.source, "run_id": version.run_id},
        )
        version.delete()
        # As MLflow: losing a version is a change of the model.
        RegisteredModel.objects.filter(pk=version.model_id).update(updated_at=timezone.now())
        for key in set(keys):
            blobs.delete_when_unused(key)


def _insert_numbered(version: ModelVersion) -> ModelVersion:
    """Insert `version` as its model's next number: `RegisteredModel.last_version` incremented by an UPDATE whose row
    lock is held until the transaction ends, so concurrent registrations queue here (one statement on PostgreSQL,
    see rawsql.insert_counted). Written by hand: registration is a hot path."""
    model = version.model
    connection = rawsql.connection_for(RegisteredModel, write=True)
    last = rawsql.column(RegisteredModel, "last_version")
    inserted = rawsql.insert_counted(
        version,
        "version",
        f"UPDATE {rawsql.table(RegisteredModel)} SET {last} = {last} + 1,"
        f" {rawsql.column(RegisteredModel, 'updated_at')} = %s WHERE {rawsql.quote('id')} = %s RETURNING {last}",
        [rawsql.adapt(RegisteredModel, "updated_at", version.updated_at, connection), model.pk],
    )
    if inserted is None:
        raise CatalogError(f"Model {model.name!r} no longer exists.")
    return inserted


def _copy_run_files(run: Run, prefix: str, version: ModelVersion) -> list[ArtifactFile]:
    """Give the version the run's files under `prefix` (same blobs, one statement); NoSuchFolder when there are
    none, which rolls the registration back."""
    copies = ArtifactFile.objects.copy_folder(run_id=run.pk, prefix=prefix, version_id=version.pk)
    if not copies:
        raise NoSuchFolder(f"Run {run.pk} has no artifacts under {prefix or 'its root'!r}.")
    return copies
