"""The audit log (read-only) and webhooks in the admin."""

from __future__ import annotations

import secrets

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.validators import URLValidator
from django.db.models import Count

from registry.admin_base import ReadOnlyAdmin, ServiceAdmin
from registry.audit import services, webhooks
from registry.audit.models import AuditEvent, DeliveryAttempt, OutboxEvent, Webhook, WebhookDelivery, WebhookEventType

# --- Audit ----------------------------------------------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Append-only: viewable here, never added, changed or deleted (the database refuses it too)."""

    list_display = ["at", "action", "actor_name", "target", "from_value", "to_value", "short_comment"]
    list_filter = ["action", "model_name", "at"]
    search_fields = ["model_name", "experiment_name", "alias", "actor_name", "subject", "comment"]
    date_hierarchy = "at"
    show_full_result_count = False

    def get_actions(self, request):
        return {}

    @admin.display(description="Comment")
    def short_comment(self, obj: AuditEvent) -> str:
        return obj.comment if len(obj.comment) <= 80 else obj.comment[:79] + "…"


# --- Webhooks -------------------------------------------------------------------------------------------------------


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        max_length=2048,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="http(s) only; private and loopback addresses are refused unless the server allows them.",
    )
    events = forms.MultipleChoiceField(choices=WebhookEventType.choices, widget=forms.CheckboxSelectMultiple)
    secret = forms.CharField(
        max_length=256,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs every delivery. Leave blank to generate one (shown once after saving); on an existing "
        "webhook, leave blank to keep the current secret.",
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "events", "model", "secret", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
            try:
                webhooks.check_target(url)
            except webhooks.TargetRefused as exc:
                raise forms.ValidationError(str(exc)) from None
            except webhooks.TargetUnresolvable:
                pass  # DNS may be down or not yet set up; every delivery checks again
        return url

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if secret:
            return secret
        if self.instance.pk:
            return Webhook.objects.values_list("secret", flat=True).get(pk=self.instance.pk)
        self.generated_secret = secrets.token_urlsafe(32)
        return self.generated_secret


@admin.register(Webhook)
class WebhookAdmin(ServiceAdmin):
    """Subscriptions are written by the audit services, as MLflow's webhook API writes them: the same permission
    check and an audit event for each (a webhook's URL decides where the registry's news goes)."""

    form = WebhookForm
    list_display = ["name", "url", "event_list", "model", "active", "created_by", "created_at"]
    list_select_related = ["model", "created_by"]
    list_filter = ["active"]
    search_fields = ["name", "url", "model__name"]
    raw_id_fields = ["model"]
    readonly_fields = ["created_by", "created_at"]

    @admin.display(description="Events")
    def event_list(self, obj: Webhook) -> str:
        return ", ".join(obj.events or [])

    def save_model(self, request, obj: Webhook, form, change: bool) -> None:
        fields = {"name": obj.name, "url": obj.url, "events": obj.events, "active": obj.active, "model": obj.model}
        if change:
            stored = Webhook.objects.get(pk=obj.pk)
            secret = obj.secret if obj.secret != stored.secret else None
            services.webhook_update(webhook=stored, by=request.user, secret=secret, **fields)
            return
        hook, _ = services.webhook_create(by=request.user, secret=obj.secret, **fields)
        obj.pk, obj._state, obj.created_by, obj.created_at = hook.pk, hook._state, hook.created_by, hook.created_at
        generated = getattr(form, "generated_secret", None)
        if generated:
            self.message_user(
                request,
                f"Generated secret for {obj.name!r} (shown only now; receivers verify X-Registry-Signature with it): "
                f"{generated}",
                messages.WARNING,
            )

    def delete_model(self, request, obj: Webhook) -> None:
        services.webhook_delete(webhook=obj, by=request.user)


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "type", "model_id", "created_at", "delivery_count"]
    list_filter = ["type", "created_at"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(delivery_count=Count("deliveries"))

    @admin.display(description="Deliveries", ordering="delivery_count")
    def delivery_count(self, obj: OutboxEvent) -> int:
        return obj.delivery_count


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["at", "status_code", "latency_ms", "error", "replay"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "status",
        "attempts",
        "last_status_code",
        "last_latency_ms",
        "next_attempt_at",
        "delivered_at",
    ]
    list_select_related = ["webhook", "event"]
    list_filter = ["status", "webhook", "event__type"]
    search_fields = ["webhook__name", "last_error"]
    inlines = [DeliveryAttemptInline]
    actions = ["replay_selected"]

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("audit.change_webhook")

    @admin.action(description="Replay selected deliveries", permissions=["replay"])
    def replay_selected(self, request, queryset) -> None:
        for delivery in queryset.select_related("webhook", "event").order_by("id"):
            attempt = webhooks.replay(delivery)
            if attempt.error:
                self.message_user(request, f"Delivery {delivery.pk}: {attempt.error}", messages.ERROR)
            else:
                self.message_user(
                    request, f"Delivery {delivery.pk}: HTTP {attempt.status_code} in {attempt.latency_ms} ms."
                )
