"""Indexes and unique constraints of the moved tables, once catalog 0003 dropped the old tables and their names."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0004_stage_requests_move_here'),
        ('catalog', '0003_grants_and_default_level'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='stagetransitionrequest',
            index=models.Index(fields=['status', '-created_at'], name='transition_status_created'),
        ),
        migrations.AddIndex(
            model_name='stagetransitionrequest',
            index=models.Index(fields=['model', 'status'], name='transition_model_status'),
        ),
        migrations.AddConstraint(
            model_name='stagetransitionrequest',
            constraint=models.CheckConstraint(condition=models.Q(('from_stage__in', ['None', 'Staging', 'Production', 'Archived'])), name='transition_from_valid'),
        ),
        migrations.AddConstraint(
            model_name='stagetransitionrequest',
            constraint=models.CheckConstraint(condition=models.Q(('to_stage__in', ['None', 'Staging', 'Production', 'Archived'])), name='transition_to_valid'),
        ),
        migrations.AddConstraint(
            model_name='stagetransitionrequest',
            constraint=models.CheckConstraint(condition=models.Q(('action__in', ['stage', 'alias_set', 'alias_delete'])), name='transition_action_valid'),
        ),
        migrations.AddConstraint(
            model_name='stagetransitionrequest',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('action', 'stage'), _negated=True), models.Q(('from_stage', models.F('to_stage')), _negated=True), _connector='OR'), name='transition_moves'),
        ),
        migrations.AddConstraint(
            model_name='stagetransitionrequest',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('action', 'stage'), ('alias', '')), models.Q(models.Q(('action', 'stage'), _negated=True), models.Q(('alias', ''), _negated=True)), _connector='OR'), name='transition_alias_iff_alias_action'),
        ),
        migrations.AddConstraint(
            model_name='stagetransitionrequest',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'approved', 'rejected', 'cancelled'])), name='transition_status_valid'),
        ),
        migrations.AddConstraint(
            model_name='stagetransitionrequest',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'pending'), ('decided_at__isnull', True)), models.Q(models.Q(('status', 'pending'), _negated=True), ('decided_at__isnull', False)), _connector='OR'), name='transition_decided_when_not_pending'),
        ),
        migrations.AddConstraint(
            model_name='stagetransitionrequest',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'pending'), ('action', 'stage')), fields=('version', 'to_stage'), name='transition_one_pending_per_target'),
        ),
        migrations.AddConstraint(
            model_name='stagetransitionrequest',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'pending'), models.Q(('action', 'stage'), _negated=True)), fields=('model', 'alias'), name='transition_one_pending_per_alias'),
        ),
        migrations.AddIndex(
            model_name='stagechange',
            index=models.Index(fields=['model', 'to_stage', 'changed_at'], name='stage_change_timeline'),
        ),
        migrations.AddConstraint(
            model_name='stagechange',
            constraint=models.CheckConstraint(condition=models.Q(('from_stage__in', ['None', 'Staging', 'Production', 'Archived'])), name='stage_change_from_valid'),
        ),
        migrations.AddConstraint(
            model_name='stagechange',
            constraint=models.CheckConstraint(condition=models.Q(('to_stage__in', ['None', 'Staging', 'Production', 'Archived'])), name='stage_change_to_valid'),
        ),
        migrations.AddConstraint(
            model_name='stagechange',
            constraint=models.CheckConstraint(condition=models.Q(('from_stage', models.F('to_stage')), _negated=True), name='stage_change_moves'),
        ),
        migrations.AddConstraint(
            model_name='stagechange',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['direct', 'approval', 'archive_existing', 'rollback'])), name='stage_change_kind_valid'),
        ),
    ]
