"""Model names become unique ignoring case (a unique index on LOWER(name)).

A registry that already holds names differing only in case ("M1" and "m1") cannot take the index: the migration
stops and names them, and nothing is renamed behind anyone's back. Rename one of each pair (dashboard, API or admin,
with the previous release), then migrate again. `manage.py check_names` lists these and other names that break the
rules.
"""

from django.db import migrations, models
from django.db.models.functions import Lower


def refuse_case_clashes(apps, schema_editor):
    RegisteredModel = apps.get_model("catalog", "RegisteredModel")
    clashes = (
        RegisteredModel.objects.using(schema_editor.connection.alias)
        .order_by()  # the default ordering by name would split the groups
        .values(folded=Lower("name"))
        .annotate(count=models.Count("id"))
        .filter(count__gt=1)
        .values_list("folded", flat=True)
    )
    groups = []
    for folded in clashes:
        rows = (
            RegisteredModel.objects.using(schema_editor.connection.alias)
            .annotate(folded=Lower("name"))
            .filter(folded=folded)
            .values_list("name", flat=True)
        )
        groups.append(" / ".join(repr(name) for name in sorted(rows)))
    if groups:
        raise RuntimeError(
            "Model names are now unique ignoring case, and these models differ only in case: "
            + "; ".join(groups)
            + ". Rename one of each, then run migrate again (nothing was changed)."
        )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_grants_and_default_level")]

    operations = [
        migrations.RunPython(refuse_case_clashes, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="registeredmodel",
            constraint=models.UniqueConstraint(
                Lower("name"),
                name="registered_model_name_unique_ignoring_case",
                violation_error_message="A model with this name in other letter case exists; names are unique "
                "ignoring case. Use that model or choose another name.",
            ),
        ),
    ]
