"""Who may call the API: Bearer tokens (read or write, revocable, expiring), the browser session with CSRF, and
`manage.py createtoken`."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils.crypto import get_random_string

from registry.accounts import services as accounts
from registry.accounts.models import ApiToken, _authenticate_sql
from registry.catalog.models import ArtifactFile, RegisteredModel
from registry.tracking.models import Experiment, Run
from tests.api.conftest import Api, assert_error
from tests.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db

READS = ["/runs", "/experiments", "/models", "/datasets", "/experiments/Default"]


@pytest.fixture
def model(user):
    return RegisteredModelFactory(name="iris", owner=user)


def writes(run_id: str) -> list[tuple[str, str, dict | None]]:
    """One call for each way the API writes, with a valid body."""
    return [
        ("POST", "/experiments", {"name": "new-experiment"}),
        ("PATCH", "/experiments/Default", {"description": "edited"}),
        ("POST", "/runs", {"name": "new-run"}),
        ("PATCH", f"/runs/{run_id}", {"status": "finished"}),
        ("POST", f"/runs/{run_id}/log-batch", {"params": {"lr": "0.1"}}),
        ("POST", "/datasets", {"name": "d", "digest": "abc"}),
        ("POST", "/models", {"name": "new-model"}),
        ("PATCH", "/models/iris", {"description": "edited"}),
        ("PUT", "/models/iris/aliases/candidate", {"version": 1}),
        ("DELETE", "/models/iris/aliases/candidate", None),
        ("DELETE", "/models/iris", None),
    ]


def snapshot() -> tuple:
    return (
        Experiment.objects.count(),
        Run.objects.count(),
        RegisteredModel.objects.count(),
        ArtifactFile.objects.count(),
        list(Experiment.objects.values_list("description", flat=True)),
        list(Run.objects.values_list("status", "params__key")),
        list(RegisteredModel.objects.values_list("name", "description")),
    )


# --- The matrix -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", READS)
def test_anonymous_reads_are_401_with_the_json_error_shape(client, path):
    response = Api(client, None).get(path)
    assert_error(response, 401, code="unauthenticated", contains="Authorization: Bearer")


def test_anonymous_writes_are_401_and_write_nothing(client, api, run_id, model):
    before = snapshot()
    for method, path, body in writes(run_id):
        response = Api(client, None).request(method, path, body)
        assert_error(response, 401, code="unauthenticated")
    response = Api(client, None).upload(run_id, "model/model.pkl", b"weights")
    assert_error(response, 401)
    assert snapshot() == before


@pytest.mark.parametrize("path", READS)
def test_read_token_can_read(client, read_token, path):
    response = Api(client, read_token).get(path)
    assert response.status_code == 200, response.content


def test_read_token_gets_403_on_every_write_and_nothing_changes(client, api, read_token, run_id, model):
    api.upload(run_id, "model/model.pkl", b"weights")
    before = snapshot()
    reader = Api(client, read_token)
    for method, path, body in writes(run_id):
        response = reader.request(method, path, body)
        assert_error(response, 403, code="forbidden", contains="read-only")
    assert_error(reader.upload(run_id, "model/other.pkl", b"x"), 403)
    assert_error(reader.delete(f"/runs/{run_id}/artifacts/model/model.pkl"), 403)
    assert snapshot() == before


def test_write_token_can_write(api, run_id, model):
    for method, path, body in writes(run_id):
        if (method, path) == ("PUT", "/models/iris/aliases/candidate"):
            api.post("/models/iris/versions", {})
        response = api.request(method, path, body)
        assert response.status_code in (200, 201, 204), (method, path, response.content)
    assert Experiment.objects.filter(name="new-experiment").exists()
    assert RegisteredModel.objects.filter(name="new-model").exists()
    assert not RegisteredModel.objects.filter(name="iris").exists()


@pytest.mark.parametrize("which", ["revoked_token", "expired_token"])
def test_revoked_and_expired_tokens_are_401(request, client, which):
    token = request.getfixturevalue(which)
    reader = Api(client, token)
    assert_error(reader.get("/runs"), 401)
    assert_error(reader.post("/experiments", {"name": "x"}), 401)
    assert not Experiment.objects.filter(name="x").exists()


def test_inactive_users_token_is_401(client, user, write_token):
    user.is_active = False
    user.save()
    assert_error(Api(client, write_token).get("/runs"), 401)


def test_revoking_takes_effect_at_once(client, user):
    token, raw = ApiToken.issue(user=user, name="soon revoked")
    caller = Api(client, raw)
    assert caller.get("/runs").status_code == 200
    accounts.token_revoke(token=token, by=user)
    assert_error(caller.get("/runs"), 401)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer mrt_not-a-real-token",
        "Bearer not-even-our-prefix",
        "Token {raw}",
        "Basic d3JpdGVyOnB3LWZvci10ZXN0cy0x",
        "{raw}",
        "Bearer {raw} trailing",
        "Bearer {raw}{raw}",
    ],
)
def test_malformed_authorization_header_is_401(client, write_token, header):
    response = Api(client, None).get("/runs", headers={"Authorization": header.format(raw=write_token)})
    assert_error(response, 401)


def test_a_bad_header_is_not_rescued_by_a_session(client, user):
    client.force_login(user)
    assert client.get("/api/v1/runs").status_code == 200
    assert_error(Api(client, None).get("/runs", headers={"Authorization": "Bearer nope"}), 401)


# --- Session (the dashboard's own calls) ----------------------------------------------------------------------------


@pytest.fixture
def session_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_session_login_can_read(session_client):
    response = Api(session_client, None).get("/runs")
    assert response.status_code == 200
    assert "items" in response.json()


def test_session_write_without_csrf_header_is_403(session_client):
    response = Api(session_client, None).post("/experiments", {"name": "from-the-browser"})
    assert_error(response, 403, contains="CSRF")
    assert not Experiment.objects.filter(name="from-the-browser").exists()


def test_session_write_with_a_wrong_csrf_header_is_403(session_client):
    session_client.cookies[settings.CSRF_COOKIE_NAME] = get_random_string(32)
    response = Api(session_client, None).post(
        "/experiments", {"name": "from-the-browser"}, headers={"X-CSRFToken": get_random_string(32)}
    )
    assert_error(response, 403, contains="CSRF")
    assert not Experiment.objects.filter(name="from-the-browser").exists()


def test_session_write_with_the_csrf_header_works(session_client, user):
    secret = get_random_string(32)
    session_client.cookies[settings.CSRF_COOKIE_NAME] = secret
    response = Api(session_client, None).post(
        "/experiments", {"name": "from-the-browser"}, headers={"X-CSRFToken": secret}
    )
    assert response.status_code == 201, response.content
    run = Api(session_client, None).post("/runs", {"name": "clicked"}, headers={"X-CSRFToken": secret}).json()
    assert run["user"] == user.username


def test_bearer_token_needs_no_csrf(write_token):
    client = Client(enforce_csrf_checks=True)
    assert Api(client, write_token).post("/experiments", {"name": "from-ci"}).status_code == 201


# --- Tokens ---------------------------------------------------------------------------------------------------------


def test_createtoken_prints_a_working_write_token_as_the_last_line(client, user):
    out = io.StringIO()
    call_command("createtoken", user.username, "--name", "ci", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    token = ApiToken.objects.get(user=user, name="ci")
    assert token.can_write and token.is_active
    response = Api(client, raw).post("/experiments", {"name": "made-with-cli-token"})
    assert response.status_code == 201


def test_createtoken_read_only(client, user):
    out = io.StringIO()
    call_command("createtoken", user.username, "--read-only", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert ApiToken.objects.get(user=user, name="cli").scope == ApiToken.Scope.READ
    caller = Api(client, raw)
    assert caller.get("/runs").status_code == 200
    assert_error(caller.post("/experiments", {"name": "nope"}), 403)


def test_createtoken_for_an_unknown_user_fails_clearly(db):
    out = io.StringIO()
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("createtoken", "ghost", stdout=out)
    assert not ApiToken.objects.exists()
    assert "mrt_" not in out.getvalue()


def test_createtoken_refuses_an_empty_name(user):
    with pytest.raises(CommandError, match="--name"):
        call_command("createtoken", user.username, "--name", "  ", stdout=io.StringIO())
    assert not ApiToken.objects.exists()


def test_tokens_are_stored_hashed(user):
    token, raw = ApiToken.issue(user=user, name="secret")
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(raw not in str(value) for value in row.values()), row
    assert row["token_hash"] != raw and len(row["token_hash"]) == 64
    assert raw.startswith(row["prefix"])


def test_last_used_at_is_updated_on_use(client, user):
    token, raw = ApiToken.issue(user=user, name="fresh")
    assert token.last_used_at is None
    Api(client, raw).get("/runs")
    token.refresh_from_db()
    assert token.last_used_at is not None
    first = token.last_used_at
    # Within the resolution window a read does not turn into a write.
    Api(client, raw).get("/runs")
    token.refresh_from_db()
    assert token.last_used_at == first


def test_the_token_lookup_statement_is_built_once_per_process():
    """Every API request authenticates through it; building it reads the models' columns each time (a decorator that
    slipped onto the function above it once left it rebuilt per request)."""
    assert _authenticate_sql() is _authenticate_sql()
