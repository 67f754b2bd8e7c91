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


SHOW_KEY = ["shell", "--verbosity", "0", "-c", "from django.conf import settings; print(settings.SECRET_KEY)"]


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
    first = run_django(SHOW_KEY, {"DEBUG": "true"}, tmp_path)
    second = run_django(SHOW_KEY, {"DEBUG": "true"}, tmp_path)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "var" / "secret_key"
    assert first.stdout.strip() == second.stdout.strip() == key_file.read_text().strip()
    assert len(first.stdout.strip()) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600


def keep_secret_key(tmp_path: Path) -> str:
    """What `make run` leaves behind: a key in var/secret_key (here the private var dir), mode 600."""
    key = random_secret_key()
    var = tmp_path / "var"
    var.mkdir()
    (var / "secret_key").write_text(key + "\n")
    (var / "secret_key").chmod(0o600)
    return key


def test_manage_py_after_make_run_reads_the_kept_secret_key(tmp_path):
    """`make run` exports SECRET_KEY from var/secret_key; a command typed later in a plain shell finds the same key."""
    key = keep_secret_key(tmp_path)
    result = run_django(SHOW_KEY, {"DEBUG": "false"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key


def test_secret_key_from_the_environment_wins_over_the_kept_one(tmp_path):
    keep_secret_key(tmp_path)
    chosen = random_secret_key()
    result = run_django(SHOW_KEY, {"DEBUG": "false", "SECRET_KEY": chosen}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == chosen


def test_an_empty_kept_secret_key_does_not_count(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text("\n")
    result = run_django(["check"], PRODUCTION, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_createtoken_as_the_readme_shows_after_make_run(tmp_path):
    """README: `python manage.py createtoken USERNAME` prints the token as its last line, with no SECRET_KEY set."""
    keep_secret_key(tmp_path)
    env = {"DEBUG": "false"}  # what a fresh shell has: no SECRET_KEY, no REGISTRY_HTTPS
    migrate = run_django(["migrate", "--noinput", "-v", "0"], env, tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    create_user = ["shell", "-c", "from django.contrib.auth.models import User; User.objects.create_user('alice')"]
    assert run_django(create_user, env, tmp_path).returncode == 0
    result = run_django(["createtoken", "alice"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("mrt_")


@pytest.mark.parametrize(("name", "value"), [("DEBUG", "maybe"), ("SQLITE_BUSY_TIMEOUT", "soon")])
def test_malformed_environment_values_are_refused_by_name(tmp_path, name, value):
    result = run_django(["check"], {"SECRET_KEY": random_secret_key(), name: value}, tmp_path)
    assert result.returncode != 0
    assert f"{name} must be" in result.stderr
    assert repr(value) in result.stderr


def test_a_malformed_prepare_threshold_is_refused_by_name(tmp_path):
    env = {"SECRET_KEY": random_secret_key(), "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused"}
    result = run_django(["check"], {**env, "DB_PREPARE_THRESHOLD": "sometimes"}, tmp_path)
    assert result.returncode != 0
    assert "DB_PREPARE_THRESHOLD must be a number of executions or 'off', got 'sometimes'" in result.stderr


def test_postgres_binds_on_the_server_and_prepares_unless_turned_off(tmp_path):
    show = [
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings; o = settings.DATABASES['default']['OPTIONS'];"
        " print(o['server_side_binding'], o['prepare_threshold'])",
    ]
    env = {"SECRET_KEY": random_secret_key(), "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused"}
    assert run_django(show, env, tmp_path).stdout.split() == ["True", "5"]
    # Behind a pooler that cannot keep prepared statements (PgBouncer's transaction mode before 1.21).
    assert run_django(show, {**env, "DB_PREPARE_THRESHOLD": "off"}, tmp_path).stdout.split() == ["True", "None"]
    assert run_django(show, {**env, "DB_PREPARE_THRESHOLD": "0"}, tmp_path).stdout.split() == ["True", "0"]


@pytest.mark.django_db
def test_a_statement_repeated_on_postgres_runs_prepared():
    """What the settings above are for: from its sixth execution on a connection, a statement is parsed and planned
    once on the server (psycopg's automatic preparation), not on every execution."""
    from django.db import connection

    from registry.catalog.models import RegisteredModel

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    # A statement no other test sends (the connection is shared by the tests before this one).
    probe = RegisteredModel.objects.filter(name="prepared-probe", description="prepared-probe").only("default_level")
    for _ in range(6):
        assert list(probe.all()) == []  # .all(): a fresh queryset each time, not the first one's cached rows
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s AND statement LIKE %s",
            ['%SELECT "catalog_registeredmodel"."id", "catalog_registeredmodel"."default_level" FROM%', "%$2%"],
        )
        assert cursor.fetchone()[0] == 1
