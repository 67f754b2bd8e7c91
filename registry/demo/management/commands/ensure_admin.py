"""Create the local admin account once and print its login (used by `make run`)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from registry.accounts import services as accounts


class Command(BaseCommand):
    help = "Create an 'admin' superuser with a generated password (kept in var/admin_password) and print the login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        User = get_user_model()
        password_file = settings.VAR_DIR / "admin_password"
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            accounts.user_create(username=username, password=password, is_superuser=True, by="system:ensure_admin")
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        elif password_file.exists() and user.check_password(password_file.read_text().strip()):
            password = password_file.read_text().strip()
        else:
            self.stdout.write(f"Admin login: {username} (password changed since it was generated; not shown)")
            return
        self.stdout.write(self.style.SUCCESS(f"Admin login: {username} / {password}"))
