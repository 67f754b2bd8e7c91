"""Owners, grants and the level for everyone on experiments; who registered a dataset."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def owners_and_grants(apps, schema_editor):
    """The Default experiment stays open to everyone's runs; every other experiment is owned by whoever logged its
    first run, and everyone else who logged runs there keeps EDIT."""
    Experiment = apps.get_model("tracking", "Experiment")
    Run = apps.get_model("tracking", "Run")
    Grant = apps.get_model("tracking", "ExperimentGrant")
    Experiment.objects.filter(name="Default").update(default_level=2)
    grants = []
    for experiment in Experiment.objects.exclude(name="Default").filter(owner__isnull=True):
        users = list(
            Run.objects.filter(experiment=experiment).exclude(user=None).order_by("start_time").values_list("user_id", flat=True)
        )
        if not users:
            continue
        Experiment.objects.filter(pk=experiment.pk).update(owner_id=users[0])
        grants += [Grant(experiment_id=experiment.pk, user_id=u, level=2) for u in dict.fromkeys(users[1:]) if u != users[0]]
    Grant.objects.bulk_create(grants, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('tracking', '0005_foreign_keys_indexed_by_composites'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ExperimentGrant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('level', models.PositiveSmallIntegerField(choices=[(1, 'Read'), (2, 'Edit'), (3, 'Manage')])),
                ('granted_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['experiment', '-level', 'id'],
                'abstract': False,
            },
        ),
        migrations.AddField(
            model_name='dataset',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='experiment',
            name='default_level',
            field=models.PositiveSmallIntegerField(blank=True, choices=[(0, 'None'), (1, 'Read'), (2, 'Edit')], help_text="The level of every signed-in user without a grant; empty for the registry's default (REGISTRY_DEFAULT_PERMISSION). Edit lets everyone log runs here (the Default experiment has it).", null=True),
        ),
        migrations.AddField(
            model_name='experiment',
            name='owner',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='owned_experiments', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='experiment',
            constraint=models.CheckConstraint(condition=models.Q(('default_level__isnull', True), ('default_level__in', [0, 1, 2]), _connector='OR'), name='experiment_default_level_valid'),
        ),
        migrations.AddField(
            model_name='experimentgrant',
            name='experiment',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='grants', to='tracking.experiment'),
        ),
        migrations.AddField(
            model_name='experimentgrant',
            name='granted_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='experimentgrant',
            name='group',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='auth.group'),
        ),
        migrations.AddField(
            model_name='experimentgrant',
            name='user',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='experimentgrant',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('user__isnull', False), ('group__isnull', True)), models.Q(('user__isnull', True), ('group__isnull', False)), _connector='OR'), name='tracking_experimentgrant_one_grantee'),
        ),
        migrations.AddConstraint(
            model_name='experimentgrant',
            constraint=models.CheckConstraint(condition=models.Q(('level__in', [1, 2, 3])), name='tracking_experimentgrant_level'),
        ),
        migrations.AddConstraint(
            model_name='experimentgrant',
            constraint=models.UniqueConstraint(fields=('experiment', 'user'), name='experiment_grant_user_unique'),
        ),
        migrations.AddConstraint(
            model_name='experimentgrant',
            constraint=models.UniqueConstraint(fields=('experiment', 'group'), name='experiment_grant_group_unique'),
        ),
        migrations.RunPython(owners_and_grants, migrations.RunPython.noop),
    ]
