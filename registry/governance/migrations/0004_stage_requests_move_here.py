"""Transition requests and the stage history move here from the catalog (their workflow is governance's); requests
can ask for protected aliases too. The audit log and webhooks left for the audit app (audit 0002 copied them)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def _reset_sequences(schema_editor, *models):
    """Rows were copied with their ids: move PostgreSQL's sequences past them (SQLite does it by itself)."""
    from django.core.management.color import no_style

    for statement in schema_editor.connection.ops.sequence_reset_sql(no_style(), list(models)):
        schema_editor.execute(statement)


def protect_default_aliases(apps, schema_editor):
    apps.get_model("governance", "StagePolicy").objects.update(protected_aliases=["champion", "production"])


def move_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for name in ("stagetransitionrequest", "stagechange"):
        if not ContentType.objects.filter(app_label="governance", model=name).exists():
            ContentType.objects.filter(app_label="catalog", model=name).update(app_label="governance")


def copy_requests_and_changes(apps, schema_editor):
    OldRequest = apps.get_model("catalog", "StageTransitionRequest")
    OldChange = apps.get_model("catalog", "StageChange")
    Request = apps.get_model("governance", "StageTransitionRequest")
    Change = apps.get_model("governance", "StageChange")
    fields = ["from_stage", "to_stage", "archive_existing", "requested_by_id", "comment", "evidence", "status",
              "decided_by_id", "decided_at", "decision_comment", "created_at"]
    rows = [
        Request(id=r.id, model_id=r.version.model_id, version_id=r.version_id, action="stage", alias="",
                **{f: getattr(r, f) for f in fields})
        for r in OldRequest.objects.select_related("version").order_by("id").iterator(chunk_size=2000)
    ]
    Request.objects.bulk_create(rows, batch_size=2000)
    fields = ["model_id", "version_id", "from_stage", "to_stage", "kind", "changed_by_id", "changed_at", "comment",
              "request_id"]
    rows = [Change(id=c.id, **{f: getattr(c, f) for f in fields}) for c in OldChange.objects.order_by("id").iterator(chunk_size=2000)]
    Change.objects.bulk_create(rows, batch_size=2000)
    _reset_sequences(schema_editor, Request, Change)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_copy_from_governance'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('catalog', '0002_foreign_keys_indexed_by_composites'),
        ('governance', '0003_foreign_keys_indexed_by_composites'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='stagepolicy',
            name='protected_aliases',
            field=models.JSONField(blank=True, default=list, help_text='Aliases moved or deleted only as a Production move is (a request, its gates, an approver), e.g. ["champion", "production"].'),
        ),
        migrations.RunPython(protect_default_aliases, migrations.RunPython.noop),
        migrations.CreateModel(
            name='StageTransitionRequest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('stage', 'Move to a stage'), ('alias_set', 'Point a protected alias'), ('alias_delete', 'Delete a protected alias')], default='stage', max_length=16)),
                ('alias', models.CharField(blank=True, max_length=256)),
                ('from_stage', models.CharField(choices=[('None', 'None'), ('Staging', 'Staging'), ('Production', 'Production'), ('Archived', 'Archived')], max_length=16)),
                ('to_stage', models.CharField(choices=[('None', 'None'), ('Staging', 'Staging'), ('Production', 'Production'), ('Archived', 'Archived')], max_length=16)),
                ('archive_existing', models.BooleanField(default=False)),
                ('comment', models.TextField(blank=True)),
                ('evidence', models.JSONField(blank=True, default=dict, help_text='Frozen when the request is made.')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('cancelled', 'Cancelled')], default='pending', max_length=16)),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('decision_comment', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.registeredmodel')),
                ('requested_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='transition_requests', to=settings.AUTH_USER_MODEL)),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='transition_requests', to='catalog.modelversion')),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='StageChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('from_stage', models.CharField(choices=[('None', 'None'), ('Staging', 'Staging'), ('Production', 'Production'), ('Archived', 'Archived')], max_length=16)),
                ('to_stage', models.CharField(choices=[('None', 'None'), ('Staging', 'Staging'), ('Production', 'Production'), ('Archived', 'Archived')], max_length=16)),
                ('kind', models.CharField(choices=[('direct', 'Direct change'), ('approval', 'Approved request'), ('archive_existing', 'Archived by a newer version'), ('rollback', 'Rollback')], default='direct', max_length=16)),
                ('changed_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('comment', models.TextField(blank=True)),
                ('changed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='stage_changes', to='catalog.registeredmodel')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='stage_changes', to='catalog.modelversion')),
                ('request', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='changes', to='governance.stagetransitionrequest')),
            ],
            options={
                'ordering': ['-changed_at', '-id'],
            },
        ),
        migrations.RunPython(copy_requests_and_changes, migrations.RunPython.noop),
        migrations.RunPython(move_content_types, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='DeliveryAttempt',
        ),
        migrations.DeleteModel(
            name='WebhookDelivery',
        ),
        migrations.DeleteModel(
            name='OutboxEvent',
        ),
        migrations.DeleteModel(
            name='Webhook',
        ),
        migrations.DeleteModel(
            name='AuditEvent',
        ),
    ]
