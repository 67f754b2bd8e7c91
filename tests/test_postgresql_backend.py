"""registry.postgresql: Django's backend reading timestamptz with psycopg's compiled loader, giving the same values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader

from registry.audit.models import AuditEvent

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend"),
]

TEXTS = [
    "2026-12-05 03:15:19.833108+00",
    "2026-12-05 03:15:19+00",
    "2026-12-05 03:15:19.5+00",
    "1969-07-20 20:17:40.000001+00",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "2026-03-29 01:30:00+02",  # another offset than the session's: read back as the same instant in UTC
]


def _read(cursor) -> list[datetime]:
    cursor.execute("SELECT t::timestamptz FROM unnest(%s::text[]) AS t", [TEXTS])
    return [row[0] for row in cursor.fetchall()]


def test_connections_use_the_compiled_loader():
    from psycopg.types.datetime import TimestamptzLoader as PythonLoader

    from registry.postgresql.base import TIMESTAMPTZ_OID, UtcTimestamptzLoader

    connection.ensure_connection()
    assert connection.settings_dict["ENGINE"] == "registry.postgresql"
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, 0)
    assert loader is UtcTimestamptzLoader
    with connection.cursor() as cursor:
        _read(cursor)
        # Django's cursor factory left the connection's loader in place (it would register its own, pure Python one,
        # on a cursor whose connection disagreed about the zone).
        assert not issubclass(cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, 0), PythonLoader)


def test_values_are_those_djangos_loader_gives():
    with connection.cursor() as cursor:
        ours = _read(cursor)
    with connection.cursor() as cursor:
        register_tzloader(connection.timezone, cursor.cursor)
        djangos = _read(cursor)
    assert ours == djangos
    assert [value.tzinfo for value in ours] == [UTC] * len(TEXTS)
    assert ours[-1] == datetime(2026, 3, 28, 23, 30, tzinfo=UTC)


def test_a_row_reads_back_as_written():
    at = datetime(2026, 12, 5, 3, 15, 19, 833108, tzinfo=UTC) - timedelta(days=400)
    event = AuditEvent.objects.create(action="model_created", actor_name="ada", at=at)
    assert AuditEvent.objects.get(pk=event.pk).at == at
    assert AuditEvent.objects.values_list("at", flat=True).get(pk=event.pk).tzinfo is UTC


def test_another_time_zone_keeps_djangos_loader():
    """With DATABASES' TIME_ZONE set, values must come in that zone: Django's own loader does that."""
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    from registry.postgresql.base import TIMESTAMPTZ_OID, DatabaseWrapper

    wrapper = DatabaseWrapper({**connection.settings_dict, "TIME_ZONE": "Europe/Paris"}, alias="paris")
    try:
        wrapper.ensure_connection()
        assert issubclass(wrapper.connection.adapters.get_loader(TIMESTAMPTZ_OID, 0), BaseTzLoader)
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT %s::timestamptz", [TEXTS[0]])
            assert cursor.fetchone()[0].utcoffset() == timedelta(hours=1)
    finally:
        wrapper.close()
