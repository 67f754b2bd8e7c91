"""`manage.py createsuperuser`: Django's command, written through accounts.user_create, so the audit log records the
new administrator (actor `system:createsuperuser`: whoever runs manage.py runs the server).

Interactive, it asks for a username, an email (optional) and a password twice. With --noinput it reads
DJANGO_SUPERUSER_USERNAME, DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD, as Django's does; without a password
the account gets none (it signs in through the identity provider until one is set).
"""

from __future__ import annotations

import getpass
import os

from django.core.management.base import BaseCommand, CommandError

from registry.accounts import services as accounts
from registry.lib.errors import DomainError

TRIES = 3


class Command(BaseCommand):
    help = "Create an administrator (recorded in the audit log)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--username", help="The new administrator's username.")
        parser.add_argument("--email", help="Their email address (optional).")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Ask nothing: read DJANGO_SUPERUSER_USERNAME, _EMAIL and _PASSWORD from the environment.",
        )

    def handle(self, *args, username: str | None, email: str | None, interactive: bool, **options):
        if not interactive:
            username = username or os.environ.get("DJANGO_SUPERUSER_USERNAME", "")
            email = email if email is not None else os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
            if not username:
                raise CommandError("Give --username or set DJANGO_SUPERUSER_USERNAME.")
            self._create(username, email, os.environ.get("DJANGO_SUPERUSER_PASSWORD") or None)
            return
        username = username or input("Username: ").strip()
        email = email if email is not None else input("Email address (optional): ").strip()
        for _ in range(TRIES):
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                self.stderr.write("Passwords do not match. Please try again.")
                continue
            if not password:
                self.stderr.write("A password cannot be blank.")
                continue
            self._create(username, email, password)  # a weak password is an error, as every other refusal
            return
        raise CommandError(f"No administrator created after {TRIES} attempts.")

    def _create(self, username: str, email: str, password: str | None) -> None:
        try:
            accounts.user_create(
                username=username,
                password=password,
                email=email or "",
                is_superuser=True,
                unusable=password is None,
                by="system:createsuperuser",
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Administrator {username!r} created.")
