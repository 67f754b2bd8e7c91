from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken
from registry.admin_base import RowChoicesAdmin, ServiceAdmin

User = get_user_model()

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(RowChoicesAdmin, DjangoGroupAdmin):
    """Django's group admin, whose permission picker answers an id no row can have with a form error, not a 500."""


@admin.register(User)
class UserAdmin(ServiceAdmin, DjangoUserAdmin):
    """Django's user admin, with what decides access written by the accounts services, which audit it: a new
    account (user_create), its rights and teams (user_access_set: teams carry grants and the approver roles),
    deleting it (user_delete). Names, email and Django's own permissions are saved by the form as before."""

    def save_model(self, request, obj, form, change):
        if not change:
            password = form.cleaned_data.get("password1") or None  # None: no usable password (SSO only)
            created = accounts.user_create(
                username=obj.get_username(), password=password, by=request.user, unusable=password is None
            )
            obj.pk, obj.password, obj._state = created.pk, created.password, created._state
            return
        stored = User.objects.get(pk=obj.pk)
        request.registry_user_flags = {flag: getattr(obj, flag) for flag in accounts.USER_FLAGS}
        for flag in accounts.USER_FLAGS:  # saved below through the service, not by the form
            setattr(obj, flag, getattr(stored, flag))
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        groups = form.cleaned_data.pop("groups", None) if change else None
        super().save_related(request, form, formsets, change)
        if change:
            flags = getattr(request, "registry_user_flags", {})
            accounts.user_access_set(user=form.instance, by=request.user, groups=groups, **flags)

    def delete_model(self, request, obj):
        accounts.user_delete(user=obj, by=request.user)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "scope", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_select_related = ["user"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "scope", "expires_at"]
        return ["user", "name", "scope", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, raw = ApiToken.issue(user=obj.user, name=obj.name, scope=obj.scope, expires_at=obj.expires_at)
        obj.pk = token.pk
        obj.token_hash, obj.prefix, obj.created_at = token.token_hash, token.prefix, token.created_at
        messages.warning(request, f"Token for {obj.user}: {raw} — copy it now, it will not be shown again.")

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            token.revoke()
        self.message_user(request, f"Revoked {queryset.count()} token(s).")
