"""The OpenAPI document says what the server enforces: schemathesis, with every check on (`--checks all`), drives the
live server from the document and finds no server error and no mismatch (a schema-valid request refused, a
schema-invalid one accepted, an undocumented status, header or body). Bounded: a fixed seed and a few examples per
operation, about a minute per database; `make fuzz` runs it longer (FUZZ_EXAMPLES, FUZZ_SEED)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from registry.accounts.models import ApiToken
from tests.builders import artifact_store, experiment_create, model_create, version_create
from tests.factories import RunFactory, UserFactory

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "5")
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = os.environ.get("FUZZ_SEED", "1")


def schemathesis_cli() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("schemathesis is not installed: `make install-test` installs the test extra.")
    return found


def test_schemathesis_finds_no_server_error_and_no_mismatch(live_server, settings, tmp_path):
    # Wrong tokens are part of the run (the ignored_auth check): the throttle would answer 429 after ten of them,
    # which tests/test_login_throttle.py covers; here every refusal must be the documented 401.
    settings.AXES_ENABLED = False
    user = UserFactory(username="fuzzer", is_staff=True, is_superuser=True)
    _, token = ApiToken.issue(user=user, name="fuzz")
    # Something for the generated requests to find besides 404s.
    experiment_create(name="fraud-detection", owner=user)
    run = RunFactory(user=user)
    artifact_store(owner=run, path="model/model.pkl", stream=io.BytesIO(b"weights"), by=user)
    version_create(model=model_create(name="fraud-detector", owner=user), created_by=user)

    command = [
        schemathesis_cli(),
        "--config-file",
        str(CONFIG),
        "run",
        f"{live_server.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "2",
        "--generation-database",
        "none",
        "--no-color",
        "--output-truncate",
        "true",
        "--request-timeout",
        "30",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = result.stdout[-30000:] + result.stderr[-5000:]
    assert result.returncode == 0, report
    assert "No issues found" in result.stdout or " passed" in result.stdout, report
