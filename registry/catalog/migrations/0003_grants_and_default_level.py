"""Grants on registered models and the level for everyone; the transition requests and stage history now live in
governance (whose 0004 copied them before these tables are dropped)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def grant_version_authors(apps, schema_editor):
    """Who registered versions of someone else's model keeps being able to: EDIT on that model."""
    Version = apps.get_model("catalog", "ModelVersion")
    Grant = apps.get_model("catalog", "ModelGrant")
    pairs = (
        Version.objects.exclude(created_by=None)
        .values_list("model_id", "created_by_id", "model__owner_id")
        .distinct()
    )
    Grant.objects.bulk_create(
        [Grant(model_id=m, user_id=u, level=2) for m, u, owner in pairs if u != owner], ignore_conflicts=True
    )


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('catalog', '0002_foreign_keys_indexed_by_composites'),
        ('governance', '0004_stage_requests_move_here'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ModelGrant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('level', models.PositiveSmallIntegerField(choices=[(1, 'Read'), (2, 'Edit'), (3, 'Manage')])),
                ('granted_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('request_stages', models.JSONField(blank=True, default=list, help_text='Stages they may request, e.g. ["Staging"].')),
                ('approve_stages', models.JSONField(blank=True, default=list, help_text='Stages they may approve moves to, e.g. ["Production"].')),
            ],
            options={
                'ordering': ['model', '-level', 'id'],
                'abstract': False,
            },
        ),
        migrations.AddField(
            model_name='registeredmodel',
            name='default_level',
            field=models.PositiveSmallIntegerField(blank=True, choices=[(0, 'None'), (1, 'Read'), (2, 'Edit')], help_text="The level of every signed-in user without a grant; empty for the registry's default (REGISTRY_DEFAULT_PERMISSION). None makes the model private to its owner and grantees.", null=True),
        ),
        migrations.AddConstraint(
            model_name='registeredmodel',
            constraint=models.CheckConstraint(condition=models.Q(('default_level__isnull', True), ('default_level__in', [0, 1, 2]), _connector='OR'), name='registered_model_default_level_valid'),
        ),
        migrations.AddField(
            model_name='modelgrant',
            name='granted_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='modelgrant',
            name='group',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='auth.group'),
        ),
        migrations.AddField(
            model_name='modelgrant',
            name='model',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='grants', to='catalog.registeredmodel'),
        ),
        migrations.AddField(
            model_name='modelgrant',
            name='user',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.DeleteModel(
            name='StageChange',
        ),
        migrations.DeleteModel(
            name='StageTransitionRequest',
        ),
        migrations.AddConstraint(
            model_name='modelgrant',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('user__isnull', False), ('group__isnull', True)), models.Q(('user__isnull', True), ('group__isnull', False)), _connector='OR'), name='catalog_modelgrant_one_grantee'),
        ),
        migrations.AddConstraint(
            model_name='modelgrant',
            constraint=models.CheckConstraint(condition=models.Q(('level__in', [1, 2, 3])), name='catalog_modelgrant_level'),
        ),
        migrations.AddConstraint(
            model_name='modelgrant',
            constraint=models.UniqueConstraint(fields=('model', 'user'), name='model_grant_user_unique'),
        ),
        migrations.AddConstraint(
            model_name='modelgrant',
            constraint=models.UniqueConstraint(fields=('model', 'group'), name='model_grant_group_unique'),
        ),
        migrations.RunPython(grant_version_authors, migrations.RunPython.noop),
    ]
