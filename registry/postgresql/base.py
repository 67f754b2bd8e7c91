"""Django's PostgreSQL backend, reading `timestamptz` columns with psycopg's compiled loader.

Django registers its own loader for `timestamptz` on every connection: a subclass of psycopg's pure-Python one (the
compiled loader cannot be subclassed), so every datetime read from PostgreSQL is parsed by a regular expression in
Python. That costs ~12 µs a value against ~0.6 µs, and a list of 500 model versions reads 3,000 of them (Django
ticket #36960, psycopg issue #1273). Django's loader exists to give values the connection's time zone; when that zone
is UTC, PostgreSQL's session is set to UTC too (DatabaseWrapper.ensure_timezone) and psycopg's own loader already
returns datetimes in `datetime.timezone.utc`: the same values, so the compiled loader is used instead. With any
other zone, or without psycopg's compiled extension, nothing changes.
"""

from __future__ import annotations

import datetime

from django.db.backends.postgresql import base
from psycopg import adapters, postgres
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.types.datetime import TimestamptzLoader as PythonTimestamptzLoader

TIMESTAMPTZ_OID = postgres.types["timestamptz"].oid
# psycopg's global map hands out its compiled class when psycopg[binary] or psycopg[c] is installed.
COMPILED_LOADER = adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


class UtcTimestamptzLoader(Loader):
    """psycopg's compiled timestamptz loader, labelled with the zone Django expects of it: Django's cursor factory
    compares a loader's `timezone` with the connection's and registers its own loader where they differ."""

    timezone = datetime.UTC

    def __init__(self, oid: int, context=None):
        super().__init__(oid, context)
        self._compiled = COMPILED_LOADER(oid, context)
        self.load = self._compiled.load  # psycopg calls `loader.load` per value: the compiled method, unwrapped

    def load(self, data):  # replaced per instance in __init__; here because Loader declares it abstract
        return self._compiled.load(data)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if self.timezone is datetime.UTC and COMPILED_LOADER is not PythonTimestamptzLoader:
            connection.adapters.register_loader(TIMESTAMPTZ_OID, UtcTimestamptzLoader)
        return connection
