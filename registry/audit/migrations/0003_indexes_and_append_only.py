"""Indexes (their names were the old tables' until governance 0004 dropped them), and the database refusing to
change audit events: UPDATE on both databases, DELETE too on PostgreSQL (whose TRUNCATE, for the test suite's
flush, fires no row trigger; SQLite's flush is a DELETE, so there Python refuses deletes: AuditEvent.delete)."""

from django.db import migrations, models


SQLITE = [
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent"
    " BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
]
POSTGRESQL = [
    "CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$",
    "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent"
    " FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()",
]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS audit_event_no_update"]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_event_append_only()",
]


def _run(statements):
    def run(apps, schema_editor):
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


append_only = _run({"sqlite": SQLITE, "postgresql": POSTGRESQL})
allow_changes = _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE})


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_copy_from_governance'),
        ('governance', '0004_stage_requests_move_here'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['model_id', '-at'], name='audit_model_at'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['experiment_id', '-at'], name='audit_experiment_at'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['actor_name', '-at'], name='audit_actor_at'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['action', '-at'], name='audit_action_at'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['-at', '-id'], name='audit_at'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(fields=['status', 'next_attempt_at'], name='webhook_delivery_due'),
        ),
        migrations.RunPython(append_only, allow_changes),
    ]
