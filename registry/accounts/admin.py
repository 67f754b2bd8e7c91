from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken
from registry.admin_base import ServiceAdmin
from registry.lib.errors import DomainError

User = get_user_model()

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(ServiceAdmin, DjangoGroupAdmin):
    """Django's group admin, written through the accounts services: groups are teams holding grants, and their
    permissions include the approver roles, so creating, renaming, setting permissions and deleting are an
    administrator's and audited (group_save, group_delete)."""

    def save_model(self, request, obj, form, change):
        stored = Group.objects.get(pk=obj.pk) if change else None
        permissions = form.cleaned_data.get("permissions")
        saved = accounts.group_save(group=stored, name=obj.name, by=request.user, permissions=permissions)
        obj.pk, obj.name, obj._state = saved.pk, saved.name, saved._state

    def save_related(self, request, form, formsets, change):
        form.cleaned_data.pop("permissions", None)  # written by group_save above
        super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        accounts.group_delete(group=obj, by=request.user)


@admin.register(User)
class UserAdmin(ServiceAdmin, DjangoUserAdmin):
    """Django's user admin, with what decides access written by the accounts services, which audit it: a new
    account (user_create); its username, rights, teams and own permissions (user_access_set: single sign-on finds
    accounts by username, teams carry grants and the approver roles, which are permissions); its password
    (user_password_set, user_password_off); its name and email (user_details_set); deleting it (user_delete). When
    it last signed in and joined are records, shown read-only."""

    readonly_fields = ["last_login", "date_joined"]

    def save_model(self, request, obj, form, change):
        if not change:
            password = form.cleaned_data.get("password1") or None  # None: no usable password (SSO only)
            created = accounts.user_create(
                username=obj.get_username(), password=password, by=request.user, unusable=password is None
            )
            obj.pk, obj.password, obj._state = created.pk, created.password, created._state
            return
        # Every field the form edits is written by a service: names and email here, the rest in save_related
        # (after the form's groups and permissions are cleaned). The form itself saves nothing.
        request.registry_user_access = {
            field: getattr(obj, field) for field in [User.USERNAME_FIELD, *accounts.USER_FLAGS]
        }
        stored = User.objects.get(pk=obj.pk)
        details = {field: getattr(obj, field) for field in accounts.USER_DETAILS if field in form.cleaned_data}
        accounts.user_details_set(user=stored, by=request.user, **details)

    def save_related(self, request, form, formsets, change):
        groups = form.cleaned_data.pop("groups", None) if change else None
        permissions = form.cleaned_data.pop("user_permissions", None) if change else None
        super().save_related(request, form, formsets, change)
        if change:
            access = dict(getattr(request, "registry_user_access", {}))
            username = access.pop(User.USERNAME_FIELD, None)
            accounts.user_access_set(
                user=form.instance, by=request.user, username=username, groups=groups, permissions=permissions, **access
            )

    def delete_model(self, request, obj):
        accounts.user_delete(user=obj, by=request.user)

    def user_change_password(self, request, id, form_url=""):
        """Django's password page, for administrators only (a password set here lets whoever set it sign in as that
        person), its change written by user_password_set or user_password_off, which audit it. Django's own view
        renders the page and answers a form with errors."""
        if not request.user.is_superuser:
            raise PermissionDenied
        user = self.get_object(request, unquote(id))
        if request.method == "POST" and user is not None:
            form = self.change_password_form(user, request.POST)
            turn_off = "unset-password" in request.POST
            if form.is_valid() and (form.cleaned_data["set_usable_password"] or turn_off):
                password = form.cleaned_data["password1"] if form.cleaned_data["set_usable_password"] else None
                try:
                    if password is None:
                        accounts.user_password_off(user=user, by=request.user)
                    else:
                        accounts.user_password_set(user=user, password=password, by=request.user)
                except DomainError as exc:
                    self.message_user(request, f"Nothing was changed: {exc.message}", messages.ERROR)
                    return HttpResponseRedirect(request.get_full_path())
                self.message_user(
                    request, "Password changed." if password is not None else "Password sign-in turned off."
                )
                update_session_auth_hash(request, user)
                return HttpResponseRedirect(
                    reverse(
                        f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change", args=[user.pk]
                    )
                )
        return super().user_change_password(request, id, form_url)


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceAdmin):
    """Tokens are issued and revoked through token_issue and token_revoke, which audit them; a token acts as its
    user, so only an administrator issues one for someone else. A stored token is never edited (its user or scope
    changed under the holder's feet): revoke it and issue another."""

    list_display = ["name", "user", "scope", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_select_related = ["user"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    raw_id_fields = ["user"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "scope", "expires_at"]
        return ["user", "name", "scope", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked, never deleted: the list keeps what was issued

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing on a stored token is editable
        token, raw = accounts.token_issue(
            user=obj.user, name=obj.name, scope=obj.scope, expires_at=obj.expires_at, by=request.user
        )
        obj.pk, obj._state = token.pk, token._state
        obj.token_hash, obj.prefix, obj.created_at = token.token_hash, token.prefix, token.created_at
        messages.warning(request, f"Token for {obj.user}: {raw} — copy it now, it will not be shown again.")

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.select_related("user"):
            try:
                revoked += accounts.token_revoke(token=token, by=request.user)
            except DomainError as exc:
                self.message_user(request, f"{token.name}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Revoked {revoked} token(s).")
