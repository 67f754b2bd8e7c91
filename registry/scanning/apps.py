from django.apps import AppConfig


class ScanningConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry.scanning"
    label = "scanning"
    verbose_name = "File safety scan"
