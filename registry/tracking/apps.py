from django.apps import AppConfig


class TrackingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry.tracking"
    verbose_name = "Tracking: experiments, runs, metrics, datasets"
