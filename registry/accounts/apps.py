from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry.accounts"
    verbose_name = "Accounts: API tokens"

    def ready(self):
        # axes' handlers first: the lockout log reads what axes' user_login_failed handler marks on the request, and
        # receivers run in the order they were connected (this app's ready() runs before axes', see INSTALLED_APPS).
        import axes.signals  # noqa: F401

        from registry.accounts import throttle  # noqa: F401 - connects the lockout log to user_login_failed
