"""Settings: a production-like environment passes Django's deployment checks; a missing secret stops the start."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "registry.example.com",
    "REGISTRY_HTTPS": "true",
}


def run_django(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh interpreter with only `env` (plus PATH and a private var dir) set."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REGISTRY_VAR_DIR": str(tmp_path / "var"), **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def random_secret_key() -> str:
    key = secrets.token_urlsafe(45)
    assert len(key) == 60
    return key


def test_deploy_check_passes_in_production_environment(tmp_path):
    result = run_django(["check", "--deploy"], {**PRODUCTION, "SECRET_KEY": random_secret_key()}, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output
    assert "System check identified no issues" in output


def test_deploy_check_notices_plain_http(tmp_path):
    """The check above would catch a regression: turning HTTPS off brings the expected warnings back."""
    env = {**PRODUCTION, "SECRET_KEY": random_secret_key(), "REGISTRY_HTTPS": "false"}
    result = run_django(["check", "--deploy"], env, tmp_path)
    output = result.stdout + result.stderr
    assert "WARNINGS" in output
    # No HSTS, no redirect to HTTPS, session and CSRF cookies not marked secure.
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output


def test_missing_secret_key_with_debug_off_fails_with_a_clear_message(tmp_path):
    result = run_django(["check"], PRODUCTION, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
    assert not (tmp_path / "var" / "secret_key").exists()


def test_debug_without_secret_key_generates_and_keeps_one(tmp_path):
    show_key = ["shell", "--verbosity", "0", "-c", "from django.conf import settings; print(settings.SECRET_KEY)"]
    first = run_django(show_key, {"DEBUG": "true"}, tmp_path)
    second = run_django(show_key, {"DEBUG": "true"}, tmp_path)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "var" / "secret_key"
    assert first.stdout.strip() == second.stdout.strip() == key_file.read_text().strip()
    assert len(first.stdout.strip()) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("name", "value"), [("DEBUG", "maybe"), ("SQLITE_BUSY_TIMEOUT", "soon")])
def test_malformed_environment_values_are_refused_by_name(tmp_path, name, value):
    result = run_django(["check"], {"SECRET_KEY": random_secret_key(), name: value}, tmp_path)
    assert result.returncode != 0
    assert f"{name} must be" in result.stderr
    assert repr(value) in result.stderr
