import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_healthz_answers_ok(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_default_experiment_exists_after_migrations():
    from registry.tracking.models import Experiment

    assert Experiment.objects.filter(name=Experiment.DEFAULT_NAME).exists()
