from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry.accounts"
    verbose_name = "Accounts: API tokens"
