"""What every admin page of the registry shares: history shown read-only, and edits made through the services.

The admin is one more surface: saving or deleting a model, version, alias, grant or policy here calls the same
service the API and the dashboard call (the administrator is `by`), so the permission rules hold and the audit log
records who did it. A service's refusal comes back as an error message on the same page, with nothing changed.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import connections
from django.http import HttpResponseRedirect

from registry.lib.errors import DomainError


class KeyValueWidget(forms.Widget):
    """Tags as rows of key and value inputs (the stored ones, then a few empty rows to add more), not a JSON box."""

    template_name = "widgets/key_value.html"  # in registry/web/templates: form widgets render from app dirs
    empty_rows = 3

    def format_value(self, value):
        if isinstance(value, dict):
            return [(str(k), "" if v is None else str(v)) for k, v in value.items()]
        return list(value or [])

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["rows"] = [*self.format_value(value), *[("", "")] * self.empty_rows]
        return context

    def value_from_datadict(self, data, files, name):
        keys, values = data.getlist(f"{name}__key"), data.getlist(f"{name}__value")
        return [(k.strip(), v) for k, v in zip(keys, values, strict=False) if k.strip() or v.strip()]

    def value_omitted_from_data(self, data, files, name):
        return f"{name}__key" not in data


class KeyValueField(forms.Field):
    """A {key: value} mapping from KeyValueWidget rows; a row without a key or a key given twice is a form error."""

    widget = KeyValueWidget

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        tags: dict[str, str] = {}
        for key, text in value or []:
            if not key:
                raise forms.ValidationError(f"The tag with value {text!r} has no key; give it one or clear the row.")
            if key in tags:
                raise forms.ValidationError(f"The key {key!r} is given twice; keep one.")
            tags[key] = text
        return tags

    def has_changed(self, initial, data) -> bool:
        try:
            return dict(initial or {}) != self.to_python(data)
        except forms.ValidationError:
            return True


class RowChoicesField(forms.ModelMultipleChoiceField):
    """Django's choice of several rows, refusing an id that the id column cannot hold as an invalid choice. Django's
    own field sends it to the database, which fails (a 500) on SQLite and PostgreSQL alike."""

    def _check_values(self, value):
        pk = self.queryset.model._meta.pk
        low, high = connections[self.queryset.db].ops.integer_field_range(pk.get_internal_type())
        for item in value if isinstance(value, list | tuple) else ():
            try:
                number = int(item)
            except (TypeError, ValueError):
                continue  # not a number: Django's own check words it
            if (low is not None and number < low) or (high is not None and number > high):
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": item}
                )
        return super()._check_values(value)


class RowChoicesAdmin(admin.ModelAdmin):
    """Picks of several rows (a user's groups, a group's permissions) through RowChoicesField."""

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", RowChoicesField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ReadOnlyAdmin(admin.ModelAdmin):
    """History: viewable, never added, edited or deleted through the admin."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ServiceAdmin(RowChoicesAdmin):
    """Subclasses write in `save_model` and `delete_model` through services; a DomainError from them rolls the
    admin's transaction back and is shown as a message."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "tags":
            return KeyValueField(required=False, label="Tags", help_text="One key and value per row.")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

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
