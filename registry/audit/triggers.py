"""The database refuses to change audit events: UPDATE on both databases, DELETE too on PostgreSQL.

(PostgreSQL's TRUNCATE, which the test suite's flush uses, fires no row trigger; SQLite's flush is a DELETE, so
there the application refuses deletes itself: AuditEvent.delete and its queryset.)

Installed by migration audit 0003 and again after every `migrate` (`post_migrate`): SQLite drops a table's triggers
when a migration rebuilds the table, as altering a constraint does.
"""

from __future__ import annotations

from django.db import connections

TABLE = "audit_auditevent"

INSTALL = {
    "sqlite": [
        f"CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON {TABLE}"
        " BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$",
        f"DROP TRIGGER IF EXISTS audit_event_append_only ON {TABLE}",
        f"CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON {TABLE}"
        " FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()",
    ],
}
REMOVE = {
    "sqlite": ["DROP TRIGGER IF EXISTS audit_event_no_update"],
    "postgresql": [
        f"DROP TRIGGER IF EXISTS audit_event_append_only ON {TABLE}",
        "DROP FUNCTION IF EXISTS audit_event_append_only()",
    ],
}


def install(connection) -> None:
    with connection.cursor() as cursor:
        for statement in INSTALL.get(connection.vendor, []):
            cursor.execute(statement)


def remove(connection) -> None:
    with connection.cursor() as cursor:
        for statement in REMOVE.get(connection.vendor, []):
            cursor.execute(statement)


def after_migrate(sender, using: str = "default", **kwargs) -> None:
    connection = connections[using]
    if TABLE in connection.introspection.table_names():
        install(connection)
