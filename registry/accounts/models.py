"""Per-user API tokens: shown once, stored as a hash, scoped read or write, revocable."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry import rawsql

TOKEN_PREFIX = "mrt_"
# last_used_at is written at most this often per token, so that busy training jobs do not turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def account_subject(username: str) -> str:
    """How the audit log names an account: "user:ana", by its username when the event was recorded."""
    return f"user:{username}"


@functools.cache  # built once per process: every API request authenticates through it
def _authenticate_sql() -> tuple[rawsql.Columns, rawsql.Columns, str]:
    user_model = get_user_model()
    token_columns, user_columns = rawsql.Columns(ApiToken), rawsql.Columns(user_model)
    sql = (
        f"SELECT {token_columns.select('t')}, {user_columns.select('u')}"
        f" FROM {rawsql.table(ApiToken)} t JOIN {rawsql.table(user_model)} u"
        f" ON u.{rawsql.quote(user_model._meta.pk.column)} = t.{rawsql.column(ApiToken, 'user')}"
        f" WHERE t.{rawsql.column(ApiToken, 'token_hash')} = %s AND t.{rawsql.column(ApiToken, 'revoked_at')} IS NULL"
    )
    return token_columns, user_columns, sql


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough (no need for a password KDF).
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )


class ApiToken(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.WRITE)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False, help_text="The first characters, to recognise it.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=["read", "write"]), name="api_token_scope_valid"),
            models.CheckConstraint(condition=~Q(name=""), name="api_token_name_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, *, user, name: str, scope: str = Scope.WRITE, expires_at=None) -> tuple[ApiToken, str]:
        """Create a token and return it with its raw value, which is never stored and cannot be shown again."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, scope=scope, token_hash=hash_token(raw), prefix=raw[:12], expires_at=expires_at
        )
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        """The active token with this raw value, its user loaded; None when unknown, revoked, expired or the user
        is inactive.

        Every API call comes through here, so it is one hand-written join (see registry.rawsql): the ORM would
        spend more compiling the query than the database spends running it.
        """
        if not raw or not raw.startswith(TOKEN_PREFIX):
            return None
        token_columns, user_columns, sql = _authenticate_sql()
        connection = rawsql.connection_for(cls)
        row = rawsql.fetchone(connection, sql, [hash_token(raw)])
        if row is None:
            return None
        token = token_columns.load(row[: len(token_columns)], connection)
        token.user = user_columns.load(row[len(token_columns) :], connection)
        if not token.is_active or not token.user.is_active:
            return None
        token.touch()
        return token

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.WRITE

    def touch(self) -> None:
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION:
            type(self).objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class IdentityProviderGroup(models.Model):
    """A group whose membership the identity provider decides: named in someone's groups claim at sign-in. Each
    sign-in sets the user's membership of these groups to what the claim says; groups without this mark (the roles
    an administrator hands out here) are left alone."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, primary_key=True, related_name="from_idp")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.group.name} (from the identity provider)"
