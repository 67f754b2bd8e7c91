"""What every admin page of the registry shares: history shown read-only, and edits made through the services.

The admin is one more surface: saving or deleting a model, version, alias, grant or policy here calls the same
service the API and the dashboard call (the administrator is `by`), so the permission rules hold and the audit log
records who did it. A service's refusal comes back as an error message on the same page, with nothing changed.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from registry.lib.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    """History: viewable, never added, edited or deleted through the admin."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ServiceAdmin(admin.ModelAdmin):
    """Subclasses write in `save_model` and `delete_model` through services; a DomainError from them rolls the
    admin's transaction back and is shown as a message."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through delete_model
        return actions

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, f"Nothing was changed: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as exc:
            self.message_user(request, f"Nothing was deleted: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
