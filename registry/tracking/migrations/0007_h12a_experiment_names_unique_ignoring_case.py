"""Experiment names become unique ignoring case (a unique index on LOWER(name)).

A registry that already holds names differing only in case ("Fraud" and "fraud") cannot take the index: the migration
stops and names them, and nothing is renamed behind anyone's back. Rename one of each pair (dashboard, API or admin,
with the previous release), then migrate again. `manage.py check_names` lists these and other names that break the
rules.
"""

from django.db import migrations, models
from django.db.models.functions import Lower

import registry.tracking.models


def refuse_case_clashes(apps, schema_editor):
    Experiment = apps.get_model("tracking", "Experiment")
    clashes = (
        Experiment.objects.using(schema_editor.connection.alias)
        .order_by()  # the default ordering by name would split the groups
        .values(folded=Lower("name"))
        .annotate(count=models.Count("id"))
        .filter(count__gt=1)
        .values_list("folded", flat=True)
    )
    groups = []
    for folded in clashes:
        rows = (
            Experiment.objects.using(schema_editor.connection.alias)
            .annotate(folded=Lower("name"))
            .filter(folded=folded)
            .values_list("name", flat=True)
        )
        groups.append(" / ".join(repr(name) for name in sorted(rows)))
    if groups:
        raise RuntimeError(
            "Experiment names are now unique ignoring case, and these experiments differ only in case: "
            + "; ".join(groups)
            + ". Rename one of each, then run migrate again (nothing was changed)."
        )


class Migration(migrations.Migration):
    dependencies = [("tracking", "0006_owners_and_grants")]

    operations = [
        migrations.AlterField(
            model_name="experiment",
            name="name",
            field=models.CharField(
                max_length=256, unique=True, validators=[registry.tracking.models.validate_experiment_name]
            ),
        ),
        migrations.RunPython(refuse_case_clashes, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="experiment",
            constraint=models.UniqueConstraint(
                Lower("name"),
                name="experiment_name_unique_ignoring_case",
                violation_error_message="An experiment with this name in other letter case exists; names are "
                "unique ignoring case. Use that experiment or choose another name.",
            ),
        ),
    ]
