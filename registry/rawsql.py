"""Hand-written SQL for the few paths that run on every API call: token lookup, logging, registration, resolve.

On those paths the ORM spends 0.3-0.7 ms building and compiling each query, several times what SQLite or
PostgreSQL then take to run it. The SQL here stays small and readable: table and column names come from the models'
`_meta`, and rows become model instances through the same converters the ORM applies (datetimes made aware, JSON
decoded, NULL read back as NaN), so callers get ordinary objects and the models stay the one source of truth.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property

from django.db import connections, models, router
from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX
from django.db.models import Field, Model


def connection_for(model: type[Model], *, write: bool = False):
    return connections[router.db_for_write(model) if write else router.db_for_read(model)]


def quote(name: str) -> str:
    # Both supported databases quote identifiers with double quotes.
    return '"' + name.replace('"', '""') + '"'


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


def column(model: type[Model], name: str) -> str:
    return quote(model._meta.get_field(name).column)


class Columns:
    """Some columns of a model: their SELECT list under a table alias, and a loader from rows to instances."""

    def __init__(self, model: type[Model], *names: str):
        self.model = model
        meta = model._meta
        self.fields: tuple[Field, ...] = (
            tuple(meta.get_field(name) for name in names) if names else tuple(meta.concrete_fields)
        )
        self.attnames = [f.attname for f in self.fields]
        self._converters: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def select(self, alias: str) -> str:
        return ", ".join(f"{alias}.{quote(f.column)}" for f in self.fields)

    @cached_property
    def _cols(self):
        return [f.get_col(self.model._meta.db_table) for f in self.fields]

    def _converters_for(self, connection) -> list:
        # Cached per backend: the converters depend on the backend and the settings (time zone), not on which
        # thread's connection first asked, and each is called with the current connection.
        converters = self._converters.get(connection.vendor)
        if converters is None:
            converters = [
                [(c, col) for c in connection.ops.get_db_converters(col) + f.get_db_converters(connection)]
                for f, col in zip(self.fields, self._cols, strict=True)
            ]
            self._converters[connection.vendor] = converters
        return converters

    def values(self, row: Sequence, connection) -> list:
        """The row's values as the ORM would give them."""
        out = []
        for value, converters in zip(row, self._converters_for(connection), strict=True):
            for converter, col in converters:
                value = converter(value, col, connection)
            out.append(value)
        return out

    def load(self, row: Sequence, connection) -> Model:
        """An instance from a row; fields not selected are deferred, as with `.only()`."""
        return self.model.from_db(connection.alias, self.attnames, self.values(row, connection))


def adapt(model: type[Model], name: str, value, connection):
    """A Python value as the database stores it in this field (aware datetimes, JSON, NaN as NULL...)."""
    return model._meta.get_field(name).get_db_prep_save(value, connection)


# Field classes whose values SQLite takes exactly as Python holds them, when they have that type: Django's preparing
# (get_prep_value, then the backend's adapt_*) hands them through unchanged. Exact classes only: a subclass may
# prepare its values its own way.
_SQLITE_AS_IS = {
    models.CharField: str,
    models.TextField: str,
    models.SlugField: str,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.SmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.AutoField: int,
    models.BigAutoField: int,
    models.BooleanField: bool,
}


def _sqlite_as_is(field: Field) -> type | None:
    """The Python type whose values this field stores in SQLite unchanged, or None."""
    if type(field) is models.ForeignKey:
        field = field.target_field
    return _SQLITE_AS_IS.get(type(field))


@functools.cache
def _insert_sql(model: type[Model], with_pk: bool) -> tuple[tuple[Field, ...], str, tuple]:
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if with_pk or f is not meta.pk)
    columns = ", ".join(quote(f.column) for f in fields)
    sql = (
        f"INSERT INTO {table(model)} ({columns}) VALUES ({placeholders(len(fields))}) RETURNING {quote(meta.pk.column)}"
    )
    plain_datetime = tuple(type(f) is models.DateTimeField and not (f.auto_now or f.auto_now_add) for f in fields)
    return fields, sql, tuple(zip(fields, map(_sqlite_as_is, fields), plain_datetime, strict=True))


def _prepared(obj: Model, fields: tuple[Field, ...], shortcuts: tuple, connection) -> list:
    """The values `obj.save()` would send, as `get_db_prep_save(pre_save(...))` makes them.

    On SQLite, plain text, integer and boolean values (and None) go as they are and aware datetimes straight to the
    backend's adapter, skipping ~4 µs of checks a field that give the same answer; a registration inserts three
    rows of ~12 fields. Anything else takes Django's own path. tests/test_rawsql.py compares both ways.
    """
    if connection.vendor != "sqlite":
        return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    values = []
    for field, as_is, plain_datetime in shortcuts:
        value = getattr(obj, field.attname)
        if value is None and (as_is is not None or plain_datetime):
            values.append(None)
        elif as_is is not None and type(value) is as_is:
            values.append(value)
        elif plain_datetime and type(value) is datetime and value.tzinfo is not None:
            values.append(connection.ops.adapt_datetimefield_value(value))
        else:
            values.append(field.get_db_prep_save(field.pre_save(obj, True), connection))
    return values


def insert(obj: Model) -> Model:
    """`obj.save(force_insert=True)` in one INSERT ... RETURNING, without compiling it each time. The models it is
    used for have no save() override and no signal receivers."""
    model = type(obj)
    connection = connection_for(model, write=True)
    fields, sql, shortcuts = _insert_sql(model, obj.pk is not None)
    row = fetchone(connection, sql, _prepared(obj, fields, shortcuts, connection))
    return _saved(obj, row[0], connection)


def _saved(obj: Model, pk, connection) -> Model:
    """`obj` as a saved row: its new key, and the state the ORM gives an instance it has just inserted."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


def insert_counted(obj: Model, field: str, counter_sql: str, counter_params: Sequence) -> Model | None:
    """`obj` inserted with `field` set from a counter: `counter_sql` is an UPDATE that increments it and returns the
    new value (RETURNING one column), so the row it updates stays locked until the transaction ends. On PostgreSQL
    one statement (`WITH counter(value) AS (UPDATE ...) INSERT ... SELECT ... FROM counter`), elsewhere the UPDATE
    and then the INSERT. None, with nothing written, when the UPDATE matched no row."""
    model = type(obj)
    connection = connection_for(model, write=True)
    if connection.vendor != "postgresql":
        row = fetchone(connection, counter_sql, counter_params)
        if row is None:
            return None
        setattr(obj, model._meta.get_field(field).attname, row[0])
        return insert(obj)
    fields, _, shortcuts = _insert_sql(model, obj.pk is not None)
    counted = model._meta.get_field(field)
    values = _prepared(obj, fields, shortcuts, connection)
    columns = ", ".join(quote(f.column) for f in fields)
    select = ", ".join("counter.value" if f is counted else "%s" for f in fields)
    row = fetchone(
        connection,
        f"WITH counter(value) AS ({counter_sql}) INSERT INTO {table(model)} ({columns})"
        f" SELECT {select} FROM counter RETURNING {quote(model._meta.pk.column)}, {quote(counted.column)}",
        [*counter_params, *(value for f, value in zip(fields, values, strict=True) if f is not counted)],
    )
    if row is None:
        return None
    setattr(obj, counted.attname, row[1])
    return _saved(obj, row[0], connection)


@functools.cache
def _get_sql(model: type[Model], names: tuple[str, ...], defer: tuple[str, ...]) -> tuple[Columns, str]:
    columns = Columns(model, *(f.name for f in model._meta.concrete_fields if f.name not in defer))
    where = " AND ".join(f"t.{column(model, name)} = %s" for name in names)
    return columns, f"SELECT {columns.select('t')} FROM {table(model)} t WHERE {where}"


def get(model: type[Model], *, defer: tuple[str, ...] = (), **equals) -> Model | None:
    """The row whose fields equal the given values (a unique lookup), as an instance; None when there is none.
    Fields named in `defer` are left unread, as with QuerySet.defer(): reading one later costs a query."""
    names = tuple("id" if name == "pk" else name for name in equals)
    columns, sql = _get_sql(model, names, defer)
    connection = connection_for(model)
    params = [adapt(model, name, value, connection) for name, value in zip(names, equals.values(), strict=True)]
    row = fetchone(connection, sql, params)
    return None if row is None else columns.load(row, connection)


def _sqlite(connection):
    """SQLite's own connection, when nothing watches this connection's queries; otherwise None.

    Django's cursor wrapper costs ~25 µs a statement (a new cursor, the execute wrappers, the %s-to-? rewrite by
    regex), four times what SQLite takes for a lookup by key, and a registration runs ten statements. When queries
    are logged (DEBUG, `assertNumQueries`) or wrapped (`connection.execute_wrapper`) they go through Django's
    cursor, so they are seen exactly as before. Errors are still Django's (IntegrityError, DataError...).
    """
    if connection.vendor != "sqlite" or connection.queries_logged or connection.execute_wrappers:
        return None
    connection.validate_no_broken_transaction()
    if connection.connection is None:
        connection.ensure_connection()
    return connection.connection


@functools.lru_cache(maxsize=256)
def _qmark(sql: str) -> str:
    """`%s` placeholders as SQLite's `?`, the rewrite Django's SQLite cursor does on every execute."""
    return FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%")


def fetchone(connection, sql: str, params: Sequence = ()):
    if (sqlite := _sqlite(connection)) is not None:
        with connection.wrap_database_errors:
            return sqlite.execute(_qmark(sql), params).fetchone()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetchall(connection, sql: str, params: Sequence = ()) -> list:
    if (sqlite := _sqlite(connection)) is not None:
        with connection.wrap_database_errors:
            return sqlite.execute(_qmark(sql), params).fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def executemany(connection, sql: str, rows: Sequence[Sequence]) -> None:
    if (sqlite := _sqlite(connection)) is not None:
        with connection.wrap_database_errors:
            sqlite.executemany(_qmark(sql), rows)
        return
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def insert_rows(connection, model: type[Model], names: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Insert many rows of already prepared values into `model`'s table: COPY on PostgreSQL, executemany elsewhere.

    COPY streams the rows in one statement; psycopg's executemany sends one INSERT per row, which for a batch of
    100,000 metric points took several times longer (benchmarks/api_ingest.py --postgres). Counted as one query
    wherever queries are logged, like the executemany it replaces.
    """
    columns = ", ".join(column(model, name) for name in names)
    if connection.vendor != "postgresql":
        executemany(connection, f"INSERT INTO {table(model)} ({columns}) VALUES ({placeholders(len(names))})", rows)
        return
    sql = f"COPY {table(model)} ({columns}) FROM STDIN"
    started = time.monotonic()
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {len(rows)} rows", "time": f"{time.monotonic() - started:.3f}"}
        )


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


# Rows per multi-row VALUES statement: well under both databases' limits on parameters in one statement
# (PostgreSQL 65,535; SQLite 32,766) for the widest row written this way (eight columns).
VALUES_CHUNK = 1000


def chunks(rows: Sequence, size: int = VALUES_CHUNK):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def values_rows(count: int, width: int) -> str:
    """`(%s, %s), (%s, %s)...`: the VALUES list of a multi-row INSERT, one statement and one round trip for
    `count` rows where executemany sends one per row, and which (unlike executemany) can answer with RETURNING."""
    row = f"({placeholders(width)})"
    return ", ".join([row] * count)
