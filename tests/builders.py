"""Setting up state for tests through the real services.

Services need the user who acts (`by`). Tests that are not about permissions build their fixtures as an
administrator ("setup", a superuser), so that the state is made exactly as the product makes it (numbering, audit,
webhooks) without each test arranging grants first. Tests about permissions pass `by` themselves.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from registry.catalog import artifact_files
from registry.catalog import services as catalog
from registry.catalog.models import RegisteredModel
from registry.governance import services as governance
from registry.tracking import services as tracking

SETUP_USERNAME = "setup"


def admin():
    """The superuser fixtures are built by."""
    user, created = get_user_model().objects.get_or_create(
        username=SETUP_USERNAME, defaults={"is_superuser": True, "is_staff": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def model_create(*, name: str, owner=None, by=None, **fields):
    """A model owned by `owner` (else by the setup administrator)."""
    return catalog.model_create(name=name, by=owner or by or admin(), **fields)


def version_create(*, model, created_by=None, by=None, **fields):
    """The next version of `model`, registered by `created_by` (else by the setup administrator)."""
    return catalog.version_create(model=model, by=created_by or by or admin(), **fields)


def version_stage_set(*, version, stage: str, by=None, archive_existing: bool = False, comment: str = ""):
    """Move a version now, as an administrator's direct change."""
    return governance.stage_change_direct(
        version=version, to_stage=stage, by=by or admin(), archive_existing=archive_existing, comment=comment
    )


def alias_set(*, model, alias: str, version, by=None):
    return governance.alias_set(model=model, alias=alias, version=version, by=by or admin())


def alias_delete(*, model, alias: str, by=None):
    return governance.alias_delete(model=model, alias=alias, by=by or admin())


def run_create(*, user=None, by=None, **fields):
    """A run logged by `user` (else by the setup administrator)."""
    return tracking.run_create(by=user or by or admin(), **fields)


def artifact_store(*, owner, path: str, stream, by=None, limit=None):
    return artifact_files.artifact_store(owner=owner, path=path, stream=stream, by=by or admin(), limit=limit)


def experiment_create(*, name: str, owner=None, by=None, **fields):
    return tracking.experiment_create(name=name, by=owner or by or admin(), **fields)


def metrics_log(*, run, points, by=None):
    return tracking.metrics_log(run=run, points=points, by=by or admin())


def params_log(*, run, params, by=None):
    return tracking.params_log(run=run, params=params, by=by or admin())


def log_batch(*, run, params, points, tags, by=None):
    return tracking.log_batch(run=run, params=params, points=points, tags=tags, by=by or admin())


def dataset_register(*, by=None, **fields):
    return tracking.dataset_register(by=by or admin(), **fields)


def run_input_add(*, run, dataset, context: str = "training", by=None):
    return tracking.run_input_add(run=run, dataset=dataset, context=context, by=by or admin())


def run_finish(*, run, by=None, **fields):
    return tracking.run_finish(run=run, by=by or admin(), **fields)


def run_steps_set(*, run, steps, by=None):
    return tracking.run_steps_set(run=run, steps=steps, by=by or admin())


def run_tags_set(*, run, tags, by=None):
    return tracking.run_tags_set(run=run, tags=tags, by=by or admin())


def grant(obj, user, level: str = "EDIT", *, by=None, **stage_rights):
    """Give `user` `level` on a registered model or an experiment."""
    if isinstance(obj, RegisteredModel):
        return catalog.model_grant_set(model=obj, by=by or admin(), user=user, level=level, **stage_rights)
    return tracking.experiment_grant_set(experiment=obj, by=by or admin(), user=user, level=level)
