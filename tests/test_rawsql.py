"""registry.rawsql: hand-written SQL that must give what the ORM gives, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime

import pytest
from django.db import connection

from registry import rawsql
from registry.accounts import services as accounts
from registry.accounts.models import ApiToken
from registry.audit.models import AuditEvent
from registry.catalog.models import ModelVersion, RegisteredModel
from registry.tracking.models import MetricSeries, Run
from tests.factories import MetricSeriesFactory, RegisteredModelFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_rows_load_as_the_orm_loads_them():
    """Datetimes aware, JSON decoded, booleans as bools, NULL floats as NaN: the ORM's own converters."""
    run = RunFactory(tags={"phase": "train"}, git_dirty=True, packages={"numpy": "2.1.0"})
    MetricSeriesFactory(run=run, key="loss", last_value=math.nan, min_value=math.nan, max_value=math.nan)
    loaded = rawsql.get(Run, pk=run.pk)
    expected = Run.objects.get(pk=run.pk)
    for field in Run._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert loaded.start_time.tzinfo is not None and loaded.git_dirty is True and loaded.tags == {"phase": "train"}
    series = rawsql.get(MetricSeries, run=run.pk, key="loss")
    assert math.isnan(series.last_value) and math.isnan(series.min_value)


def test_get_returns_none_when_nothing_matches():
    assert rawsql.get(Run, pk="0" * 32) is None


def test_columns_load_only_what_was_selected():
    run = RunFactory(name="partial")
    columns = rawsql.Columns(Run, "id", "name")
    row = rawsql.fetchone(
        connection, f"SELECT {columns.select('r')} FROM {rawsql.table(Run)} r WHERE r.id = %s", [run.pk]
    )
    loaded = columns.load(row, connection)
    assert loaded.name == "partial" and loaded.get_deferred_fields() >= {"tags", "start_time"}


def test_insert_is_a_save_that_returns_the_key():
    model, user = RegisteredModelFactory(), UserFactory()
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    event = rawsql.insert(
        AuditEvent(
            action="version_created",
            model_id=model.pk,
            actor_id=user.pk,
            actor_name=user.username,
            at=at,
            data={"a": [1]},
        )
    )
    assert event.pk is not None and not event._state.adding
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.model_id, stored.actor_id, stored.at, stored.data) == (model.pk, user.pk, at, {"a": [1]})


def test_insert_counted_takes_the_number_from_the_counter_in_the_same_row():
    """One statement on PostgreSQL, two elsewhere: the same row either way, and nothing when no counter row."""
    model = RegisteredModelFactory(last_version=6)
    table, last = rawsql.table(RegisteredModel), rawsql.column(RegisteredModel, "last_version")
    counter = f"UPDATE {table} SET {last} = {last} + 1 WHERE id = %s RETURNING {last}"
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    version = rawsql.insert_counted(
        ModelVersion(model=model, source="s3://b/m", tags={"k": "v"}, created_at=at, updated_at=at),
        "version",
        counter,
        [model.pk],
    )
    assert version.version == 7 and version.pk is not None and not version._state.adding
    stored = ModelVersion.objects.get(pk=version.pk)
    assert (stored.version, stored.source, stored.tags, stored.created_at) == (7, "s3://b/m", {"k": "v"}, at)
    assert RegisteredModel.objects.get(pk=model.pk).last_version == 7
    orphan = ModelVersion(model=model, created_at=at, updated_at=at)
    assert rawsql.insert_counted(orphan, "version", counter, [model.pk + 1000]) is None
    assert ModelVersion.objects.filter(model=model).count() == 1


@pytest.mark.parametrize("naive", [False, True])
def test_insert_prepares_values_exactly_as_django_does(naive):
    """The SQLite shortcuts for text, integers, booleans, None and aware datetimes give Django's own values; odd
    values (a naive datetime, an int in a text field, a lazy string) take Django's path and give its answers."""
    from django.utils.translation import gettext_lazy

    from registry.catalog.models import ArtifactFile, ModelVersion

    model, user = RegisteredModelFactory(), UserFactory()
    run = RunFactory()
    at = datetime(2026, 1, 2, 3, 4, 5, 678901) if naive else datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    samples = [
        AuditEvent(action="version_created", model_id=model.pk, actor_id=user.pk, actor_name=user.username, at=at),
        AuditEvent(action=gettext_lazy("moved"), model_id=model.pk, actor_name="system", comment=7, at=at),
        ModelVersion(model=model, version=3, run=run, source="runs:/x", created_by=None, created_at=at, updated_at=at),
        ArtifactFile(run=run, path="model/a.bin", storage_key="k", size=2**40, sha256="0" * 64, created_at=at),
    ]
    for obj in samples:
        fields, _sql, shortcuts = rawsql._insert_sql(type(obj), False)
        with warnings.catch_warnings():  # Django warns about the naive datetime, in both ways
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
            got = rawsql._prepared(obj, fields, shortcuts, connection)
        assert list(map(_comparable, got)) == list(map(_comparable, expected)), type(obj).__name__


def _comparable(value):
    # psycopg wraps JSON (Jsonb) and typed integers in objects that compare by identity: compare what they hold.
    return type(value), getattr(value, "obj", value)


def test_database_errors_are_djangos_and_queries_are_counted_when_watched(django_assert_num_queries):
    """On SQLite, unwatched statements skip Django's cursor; errors must still be Django's classes (callers catch
    them), and a watched connection (assertNumQueries, DEBUG) must still see every statement."""
    from django.db import IntegrityError, transaction

    from registry.catalog.models import RegisteredModel

    existing = RegisteredModelFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        rawsql.insert(RegisteredModel(name=existing.name))
    with django_assert_num_queries(2):
        assert rawsql.get(RegisteredModel, name=existing.name).pk == existing.pk
        assert rawsql.fetchall(connection, f"SELECT 1 FROM {rawsql.table(RegisteredModel)}") == [(1,)]


def test_token_lookup_refuses_revoked_and_expired_tokens_and_inactive_users():
    user = UserFactory()
    token, raw = ApiToken.issue(user=user, name="job")
    found = ApiToken.authenticate(raw)
    assert found.pk == token.pk and found.user == user and found.user.username == user.username
    accounts.token_revoke(token=token, by=user)
    assert ApiToken.authenticate(raw) is None
    expired, raw_expired = ApiToken.issue(user=user, name="old", expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert ApiToken.authenticate(raw_expired) is None
    _, raw_inactive = ApiToken.issue(user=UserFactory(is_active=False), name="gone")
    assert ApiToken.authenticate(raw_inactive) is None


def test_deferred_fields_are_left_unread_and_load_on_access(django_assert_num_queries):
    run = RunFactory(packages={"numpy": "2.1.0", "scikit-learn": "1.5.2"})
    with django_assert_num_queries(1):
        loaded = rawsql.get(Run, pk=run.pk, defer=Run.HEAVY_FIELDS)
    assert loaded.get_deferred_fields() == {"packages"} and loaded.name == run.name
    with django_assert_num_queries(1):
        assert loaded.packages == {"numpy": "2.1.0", "scikit-learn": "1.5.2"}
