"""Governance personas and builds shared by the services, API, web, client and browser tests.

The approver groups come from a data migration, but transactional tests flush the database (permissions are
recreated afterwards, groups are not), so they are made here when missing, with the migration's permissions.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from registry.catalog.models import ModelVersion, RegisteredModel
from registry.tracking.services import Point
from tests.builders import dataset_register, metrics_log, run_create, run_input_add, version_create
from tests.factories import UserFactory

GROUPS = {
    "Model requesters": ["request_transition"],
    "Staging approvers": ["request_transition", "approve_none", "approve_staging", "approve_archived"],
    "Production approvers": [
        "request_transition",
        "approve_none",
        "approve_staging",
        "approve_production",
        "approve_archived",
    ],
}
REQUESTERS = "Model requesters"
STAGING_APPROVERS = "Staging approvers"
PRODUCTION_APPROVERS = "Production approvers"


def group(name: str) -> Group:
    found, _ = Group.objects.get_or_create(name=name)
    wanted = Permission.objects.filter(content_type__app_label="governance", codename__in=GROUPS[name])
    if found.permissions.count() != len(GROUPS[name]):
        found.permissions.set(wanted)
    return found


def person(username: str, *groups: str, superuser: bool = False, password: str | None = None):
    """A user in `groups`, fetched again so that its permission cache sees them. Without `password` it cannot sign in
    with one (and no time goes into hashing)."""
    user = UserFactory(username=username, is_superuser=superuser, is_staff=superuser, password=password)
    for name in groups:
        user.groups.add(group(name))
    return get_user_model().objects.get(pk=user.pk)


def build(
    model: RegisteredModel,
    metrics: dict[str, float] | None = None,
    *,
    by=None,
    commit: str = "0123456789abcdef0123456789abcdef01234567",
    datasets: dict[str, str] | None = None,
) -> ModelVersion:
    """Register the next version of `model` from a fresh run with these final `metrics`, git `commit` (clean tree)
    and `datasets` ({context: dataset name}, digests derived from the names)."""
    run = run_create(
        name=f"run-{model.name}", user=by, code={"git_commit": commit, "git_dirty": False} if commit else {}
    )
    if metrics:
        metrics_log(run=run, points=[Point(key, value) for key, value in metrics.items()])
    for context, name in (datasets or {}).items():
        digest = (name.encode().hex() * 8)[:64]
        run_input_add(run=run, dataset=dataset_register(name=name, digest=digest), context=context)
    return version_create(model=model, run=run, created_by=by)
