from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry.governance"
    verbose_name = "Governance: policies, audit log, webhooks"
