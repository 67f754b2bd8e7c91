"""Who may do what with a registered model or an experiment: owners, grants to users and groups, and the level for
everyone else.

A user's level on an object is the highest of:

- MANAGE if the user owns it (superusers hold MANAGE everywhere);
- the levels of the grants to the user and to the user's groups;
- the object's own level for every signed-in user (`default_level`), or, when it has none, the registry's
  (`REGISTRY_DEFAULT_PERMISSION`: READ unless set to NONE for a private registry).

The catalog (registered models) and tracking (experiments) each keep a grant table built on `Grant`; the filters and
the level computation here serve both, in SQL, so a list page costs the same whatever the number of grants.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Exists, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from registry.accounts.models import account_subject
from registry.lib.access import GRANTABLE, Level

LEVEL_CHOICES = [(level.value, level.label) for level in Level]
GRANT_LEVEL_CHOICES = [(level.value, level.label) for level in GRANTABLE]
DEFAULT_LEVEL_CHOICES = [(level.value, level.label) for level in (Level.NONE, Level.READ, Level.EDIT)]


def registry_default() -> Level:
    """The level of signed-in users on objects that set none of their own (REGISTRY_DEFAULT_PERMISSION)."""
    return Level(settings.REGISTRY_DEFAULT_PERMISSION)


def user_groups(user) -> Subquery:
    """The ids of the user's groups, as a subquery (no query of its own)."""
    through = get_user_model().groups.through
    return Subquery(through.objects.filter(user_id=user.pk).values("group_id"))


class Grant(models.Model):
    """A level granted on one object to one user or one group (the concrete models add the object, a foreign key
    named by `object_field` with the related name `grants`)."""

    object_field = ""  # "model", "experiment": also the audit log's name for the object

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField(choices=GRANT_LEVEL_CHOICES)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="%(app_label)s_%(class)s_one_grantee",
            ),
            models.CheckConstraint(
                condition=Q(level__in=[int(level) for level in GRANTABLE]), name="%(app_label)s_%(class)s_level"
            ),
        ]

    @property
    def grantee(self) -> str:
        """'user:alice' or 'group:ml-team', as the audit log names it."""
        return account_subject(self.user.get_username()) if self.user_id else f"group:{self.group.name}"

    @property
    def level_name(self) -> str:
        return Level(self.level).name

    @property
    def granted_on(self):
        return getattr(self, self.object_field)


def grants_held(*, user=None, group=None) -> list[Grant]:
    """Every grant `user` or `group` holds, in every grant table, each with its object and grantee loaded: what
    deleting the user or group takes away with it."""
    holder = {"user": user} if user is not None else {"group": group}
    found: list[Grant] = []
    for table in Grant.__subclasses__():
        found += table.objects.filter(**holder).select_related(table.object_field, *holder)
    return found


class AccessQuerySet(models.QuerySet):
    """For models with an `owner`, a `default_level` and a grant table (related name `grants`)."""

    def at_least(self, user, level: Level) -> AccessQuerySet:
        """The objects on which `user` holds `level` or more: one filter joined in SQL, no query of its own."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        grant_model = self.model.grants.rel.related_model
        object_field = self.model.grants.rel.field.name
        grants = grant_model.objects.filter(**{object_field: OuterRef("pk")}, level__gte=level).filter(
            Q(user=user) | Q(group__in=user_groups(user))
        )
        everyone = Q(default_level__gte=level)
        if registry_default() >= level:
            everyone |= Q(default_level__isnull=True)
        return self.filter(Q(owner=user) | everyone | Exists(grants))

    def readable_by(self, user) -> AccessQuerySet:
        return self.at_least(user, Level.READ)

    def with_level_for(self, user) -> AccessQuerySet:
        """Annotate `user_level`: the user's level on each object, computed in SQL."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.annotate(user_level=models.Value(int(Level.NONE)))
        if user.is_superuser:
            return self.annotate(user_level=models.Value(int(Level.MANAGE)))
        grant_model = self.model.grants.rel.related_model
        object_field = self.model.grants.rel.field.name
        best_grant = (
            grant_model.objects.filter(**{object_field: OuterRef("pk")})
            .filter(Q(user=user) | Q(group__in=user_groups(user)))
            .order_by("-level")
            .values("level")[:1]
        )
        return self.annotate(
            user_level=models.Case(
                models.When(owner=user, then=models.Value(int(Level.MANAGE))),
                default=Greatest(
                    Coalesce("default_level", models.Value(int(registry_default()))),
                    Coalesce(Subquery(best_grant), models.Value(int(Level.NONE))),
                ),
                output_field=models.PositiveSmallIntegerField(),
            )
        )


def ask_for_access(obj) -> str:
    """Whom to ask for access to a model or experiment: its owner by name (one query, on the refusal path only)."""
    owner = obj.owner.get_username() if obj.owner_id and obj.owner else None
    if owner:
        return f"Ask its owner ({owner}) or someone who manages it for access."
    return "Ask someone who manages it for access."


def level_of(obj, user) -> Level:
    """The user's level on `obj` (a model or experiment with owner, default_level and grants): at most one query,
    cached on the object for the rest of the request (the hot paths' hand-written statements fill the cache)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Level.NONE
    cache = obj.__dict__.setdefault("_level_cache", {})
    if user.pk not in cache:
        if user.is_superuser or (obj.owner_id is not None and obj.owner_id == user.pk):
            cache[user.pk] = Level.MANAGE
        else:
            best = obj.grants.filter(Q(user=user) | Q(group__in=user_groups(user))).aggregate(best=Max("level"))
            cache[user.pk] = level_from(
                user, owner_id=obj.owner_id, default_level=obj.default_level, best_grant=best["best"]
            )
    return cache[user.pk]


def stage_rights_of(obj, user) -> tuple[set[str], set[str]]:
    """The stages the user may request and approve for `obj` through its grants (registered models only): one query,
    cached on the object."""
    if user is None or not user.is_authenticated:
        return set(), set()
    cache = obj.__dict__.setdefault("_stage_rights_cache", {})
    if user.pk not in cache:
        request, approve = set(), set()
        for grant in obj.grants.filter(Q(user=user) | Q(group__in=user_groups(user))).only(
            "request_stages", "approve_stages"
        ):
            request |= set(grant.request_stages or [])
            approve |= set(grant.approve_stages or [])
        cache[user.pk] = (request, approve)
    return cache[user.pk]


def preload_access(user, objects) -> None:
    """Fill the level (and stage-rights) caches of `objects` (models or experiments of one kind) for `user` with one
    query, so that pages checking permissions per row cost the same at 1 and 50 rows."""
    objects = [o for o in objects if o is not None]
    if not objects or user is None or not user.is_authenticated:
        return
    grant_model = type(objects[0]).grants.rel.related_model
    object_field = type(objects[0]).grants.rel.field.name
    best: dict[int, int] = {}
    rights: dict[int, tuple[set, set]] = {}
    has_stages = hasattr(grant_model, "request_stages")
    if not user.is_superuser:
        grants = grant_model.objects.filter(**{f"{object_field}__in": {o.pk for o in objects}}).filter(
            Q(user=user) | Q(group__in=user_groups(user))
        )
        for grant in grants:
            key = getattr(grant, f"{object_field}_id")
            best[key] = max(best.get(key, 0), grant.level)
            if has_stages:
                request, approve = rights.setdefault(key, (set(), set()))
                request |= set(grant.request_stages or [])
                approve |= set(grant.approve_stages or [])
    for obj in objects:
        level = level_from(user, owner_id=obj.owner_id, default_level=obj.default_level, best_grant=best.get(obj.pk))
        obj.__dict__.setdefault("_level_cache", {})[user.pk] = level
        if has_stages:
            obj.__dict__.setdefault("_stage_rights_cache", {})[user.pk] = rights.get(obj.pk, (set(), set()))


def best_grant_sql(grant_table: str, object_column: str, object_ref: str, user) -> tuple[str, list]:
    """The highest level granted to the user (or a group of theirs) on the row `object_ref`, as one SQL scalar
    subquery, for the hand-written hot-path statements (registration, resolve), which then call `level_from`.
    The arguments are quoted table and column references; returns (sql, params)."""
    through = get_user_model().groups.through
    user_column = through._meta.get_field("user").column
    sql = (
        f'(SELECT MAX(g."level") FROM {grant_table} g WHERE g.{object_column} = {object_ref}'
        f' AND (g."user_id" = %s OR g."group_id" IN'
        f' (SELECT ug."group_id" FROM "{through._meta.db_table}" ug WHERE ug."{user_column}" = %s)))'
    )
    return sql, [user.pk, user.pk]


def level_from(user, *, owner_id: int | None, default_level: int | None, best_grant: int | None) -> Level:
    """A level from an object's owner and default level and the user's best grant (read by `best_grant_sql`)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Level.NONE
    if user.is_superuser or (owner_id is not None and owner_id == user.pk):
        return Level.MANAGE
    everyone = Level(default_level) if default_level is not None else registry_default()
    return max(everyone, Level(best_grant or 0))
