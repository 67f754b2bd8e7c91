"""`manage.py changepassword [USERNAME]`: Django's command, written through accounts.user_password_set, so the audit
log records the change (actor `system:changepassword`: whoever runs manage.py runs the server)."""

from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from registry.accounts import services as accounts
from registry.lib.errors import DomainError

TRIES = 3


class Command(BaseCommand):
    help = "Change a user's password (recorded in the audit log)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", help="Whose password to change (default: your login name).")

    def handle(self, *args, username: str | None, **options):
        User = get_user_model()
        username = username or getpass.getuser()
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user named {username!r}: check the spelling (usernames are case-sensitive).")
        self.stdout.write(f"Changing password for user {username!r}")
        for _ in range(TRIES):
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                self.stderr.write("Passwords do not match. Please try again.")
                continue
            try:
                accounts.user_password_set(user=user, password=password, by="system:changepassword")
            except DomainError as exc:
                self.stderr.write(exc.message)
                continue
            return f"Password changed successfully for user {username!r}"
        raise CommandError(f"Aborting password change for user {username!r} after {TRIES} attempts")
