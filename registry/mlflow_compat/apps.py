from django.apps import AppConfig


class MlflowCompatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry.mlflow_compat"
    label = "mlflow_compat"
    verbose_name = "MLflow compatibility: the REST API the official MLflow client speaks"
