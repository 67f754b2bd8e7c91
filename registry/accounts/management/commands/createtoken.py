"""`manage.py createtoken USERNAME [--name N] [--read-only]`: print a new API token as the last line."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken
from registry.lib.errors import DomainError


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it as the last line of output (it is not stored in clear)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label to recognise the token by (default: cli).")
        parser.add_argument("--read-only", action="store_true", help="Allow reads only.")

    def handle(self, *args, username: str, name: str, read_only: bool, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"No user named {username!r}; create it first (manage.py createsuperuser).") from None
        scope = ApiToken.Scope.READ if read_only else ApiToken.Scope.WRITE
        try:
            # Whoever runs manage.py runs the server: the audit log names the command as the actor.
            token, raw = accounts.token_issue(user=user, name=name, scope=scope, by="system:createtoken")
        except DomainError as exc:
            raise CommandError(f"--name: {exc.message}") from None
        self.stdout.write(f"Created {token.get_scope_display().lower()} token {token.name!r} for {username}.")
        self.stdout.write(raw)
