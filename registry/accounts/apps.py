from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry.accounts"
    verbose_name = "Accounts: API tokens"

    def ready(self):
        from registry.accounts import throttle  # noqa: F401 - connects the lockout log to user_login_failed
