from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "registry.audit"
    label = "audit"
    verbose_name = "Audit log and webhooks"

    def ready(self) -> None:
        from registry.audit import triggers

        post_migrate.connect(triggers.after_migrate, sender=self, dispatch_uid="audit-append-only")
