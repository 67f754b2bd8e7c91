from django.db import migrations

GROUPS = {
    "Model requesters": ["request_transition"],
    "Staging approvers": ["request_transition", "approve_none", "approve_staging", "approve_archived"],
    "Production approvers": [
        "request_transition",
        "approve_none",
        "approve_staging",
        "approve_production",
        "approve_archived",
    ],
}


def forwards(apps, schema_editor):
    # Permissions are normally created after migrations; create them now so the groups can hold them.
    from django.contrib.auth.management import create_permissions

    config = apps.get_app_config("governance")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="governance", codename__in=codenames)
        )
    StagePolicy = apps.get_model("governance", "StagePolicy")
    if not StagePolicy.objects.filter(model__isnull=True).exists():
        StagePolicy.objects.create(
            model=None, approval_required_for=["Production"], allow_self_approval=False, allow_direct_changes=True
        )


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_governance"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
