from django.apps import AppConfig


class CatalogConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry.catalog"
    verbose_name = "Catalog: models, versions, stages, artifacts"
