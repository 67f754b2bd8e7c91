"""Indexes (their names were the old tables' until governance 0004 dropped them), and the database refusing to
change audit events: UPDATE on both databases, DELETE too on PostgreSQL (whose TRUNCATE, for the test suite's
flush, fires no row trigger; SQLite's flush is a DELETE, so there Python refuses deletes: AuditEvent.delete)."""

from django.db import migrations, models


def append_only(apps, schema_editor):
    from registry.audit import triggers

    triggers.install(schema_editor.connection)


def allow_changes(apps, schema_editor):
    from registry.audit import triggers

    triggers.remove(schema_editor.connection)


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
