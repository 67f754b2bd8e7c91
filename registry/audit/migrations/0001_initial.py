"""The audit log and webhook tables, created empty beside the governance ones they replace (0002 copies the rows;
indexes come in 0003, once the old tables and their index names are gone)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ('catalog', '0002_foreign_keys_indexed_by_composites'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='OutboxEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('type', models.CharField(choices=[('version.created', 'Version created'), ('transition.requested', 'Transition requested'), ('transition.approved', 'Transition approved'), ('transition.rejected', 'Transition rejected'), ('stage.changed', 'Stage changed'), ('alias.changed', 'Alias changed')], max_length=32)),
                ('model_id', models.BigIntegerField(blank=True, null=True)),
                ('payload', models.JSONField()),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('model_created', 'Model created'), ('model_renamed', 'Model renamed'), ('model_updated', 'Model description changed'), ('model_tags_changed', 'Model tags changed'), ('model_deleted', 'Model deleted'), ('version_created', 'Version created'), ('version_updated', 'Version description changed'), ('version_tags_changed', 'Version tags changed'), ('version_deleted', 'Version deleted'), ('stage_changed', 'Stage changed'), ('alias_set', 'Alias set'), ('alias_deleted', 'Alias deleted'), ('request_created', 'Transition requested'), ('request_approved', 'Request approved'), ('request_rejected', 'Request rejected'), ('request_cancelled', 'Request cancelled'), ('gate_overridden', 'Failing gate overridden'), ('rollback', 'Production rolled back'), ('policy_changed', 'Stage policy changed'), ('experiment_created', 'Experiment created'), ('experiment_renamed', 'Experiment renamed'), ('experiment_updated', 'Experiment description or tags changed'), ('experiment_deleted', 'Experiment deleted'), ('experiment_restored', 'Experiment restored'), ('run_deleted', 'Run deleted'), ('run_restored', 'Run restored'), ('artifact_stored', 'Artifact stored'), ('artifact_deleted', 'Artifact deleted'), ('access_granted', 'Access granted'), ('access_revoked', 'Access revoked'), ('owner_changed', 'Owner changed'), ('default_level_changed', 'Access for everyone changed'), ('user_created', 'User created'), ('user_changed', 'User changed'), ('user_deleted', 'User deleted')], max_length=40)),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ('actor_id', models.BigIntegerField(blank=True, help_text="The user's id when it was recorded.", null=True)),
                ('actor_name', models.CharField(help_text="The username (or a system actor such as 'system:migration'), kept for ever.", max_length=150)),
                ('model_id', models.BigIntegerField(blank=True, null=True)),
                ('model_name', models.CharField(blank=True, max_length=256)),
                ('version_number', models.PositiveIntegerField(blank=True, null=True)),
                ('alias', models.CharField(blank=True, max_length=256)),
                ('experiment_id', models.BigIntegerField(blank=True, null=True)),
                ('experiment_name', models.CharField(blank=True, max_length=256)),
                ('run_id', models.CharField(blank=True, max_length=32)),
                ('request_id', models.BigIntegerField(blank=True, null=True)),
                ('subject', models.CharField(blank=True, help_text="Whom an access change is about: 'user:alice' or 'group:ml-team'.", max_length=200)),
                ('from_value', models.CharField(blank=True, max_length=256)),
                ('to_value', models.CharField(blank=True, max_length=256)),
                ('comment', models.TextField(blank=True)),
                ('data', models.JSONField(blank=True, default=dict)),
            ],
            options={
                'ordering': ['-at', '-id'],
                'constraints': [models.CheckConstraint(condition=models.Q(('action__in', ['model_created', 'model_renamed', 'model_updated', 'model_tags_changed', 'model_deleted', 'version_created', 'version_updated', 'version_tags_changed', 'version_deleted', 'stage_changed', 'alias_set', 'alias_deleted', 'request_created', 'request_approved', 'request_rejected', 'request_cancelled', 'gate_overridden', 'rollback', 'policy_changed', 'experiment_created', 'experiment_renamed', 'experiment_updated', 'experiment_deleted', 'experiment_restored', 'run_deleted', 'run_restored', 'artifact_stored', 'artifact_deleted', 'access_granted', 'access_revoked', 'owner_changed', 'default_level_changed', 'user_created', 'user_changed', 'user_deleted'])), name='audit_action_valid'), models.CheckConstraint(condition=models.Q(('actor_name', ''), _negated=True), name='audit_has_actor')],
            },
        ),
        migrations.CreateModel(
            name='Webhook',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('url', models.URLField(help_text='http(s) only; private and loopback addresses are refused.', max_length=2048)),
                ('events', models.JSONField(default=list, help_text='Any of: version.created, transition.requested, transition.approved, transition.rejected, stage.changed, alias.changed.')),
                ('secret', models.CharField(help_text='Signs every delivery (X-Registry-Signature).', max_length=256)),
                ('active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model', models.ForeignKey(blank=True, help_text='Only events of this model; empty for all models.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='webhooks', to='catalog.registeredmodel')),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Succeeded'), ('failed', 'Failed (gave up)')], default='pending', max_length=16)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('last_status_code', models.PositiveIntegerField(blank=True, null=True)),
                ('last_latency_ms', models.PositiveIntegerField(blank=True, null=True)),
                ('last_error', models.TextField(blank=True)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='audit.outboxevent')),
                ('webhook', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='audit.webhook')),
            ],
            options={
                'verbose_name_plural': 'webhook deliveries',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='DeliveryAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ('status_code', models.PositiveIntegerField(blank=True, null=True)),
                ('latency_ms', models.PositiveIntegerField(blank=True, null=True)),
                ('error', models.TextField(blank=True)),
                ('replay', models.BooleanField(default=False)),
                ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempt_log', to='audit.webhookdelivery')),
            ],
            options={
                'ordering': ['-at', '-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='webhook',
            constraint=models.CheckConstraint(condition=models.Q(('url__startswith', 'http://'), ('url__startswith', 'https://'), _connector='OR'), name='webhook_url_http'),
        ),
        migrations.AddConstraint(
            model_name='webhook',
            constraint=models.CheckConstraint(condition=models.Q(('secret', ''), _negated=True), name='webhook_secret_not_empty'),
        ),
        migrations.AddConstraint(
            model_name='webhookdelivery',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'succeeded', 'failed'])), name='webhook_delivery_status'),
        ),
    ]
