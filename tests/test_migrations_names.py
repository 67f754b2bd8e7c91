"""Upgrading to names unique ignoring case: a registry holding `M1` and `m1` is told which, and nothing is renamed."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("app", "before", "model", "pair"),
    [
        ("catalog", "0003_grants_and_default_level", "RegisteredModel", ("M1", "m1")),
        ("tracking", "0006_owners_and_grants", "Experiment", ("Fraud", "fraud")),
    ],
)
def test_names_differing_only_in_case_stop_the_upgrade_and_are_named(app, before, model, pair):
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = migrate([(app, before)])
    try:
        Old = old.get_model(app, model)
        for name in pair:
            Old.objects.create(name=name)
        with pytest.raises(RuntimeError) as caught:
            migrate(latest)
        message = str(caught.value)
        assert "'M1' / 'm1'" in message if app == "catalog" else "'Fraud' / 'fraud'" in message
        assert "Rename one of each" in message
        assert sorted(Old.objects.values_list("name", flat=True)) == sorted(pair)  # nothing renamed
        Old.objects.filter(name=pair[1]).update(name=f"{pair[1]}-2")
        new = migrate(latest)
        assert sorted(new.get_model(app, model).objects.values_list("name", flat=True)) == sorted(
            [pair[0], f"{pair[1]}-2"]
        )
    finally:
        migrate(latest)
