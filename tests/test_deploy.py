"""deploy/compose.yaml: the cluster topology, and only environment variables the settings read."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
REGISTRY_SERVICES = {name: s for name, s in SERVICES.items() if s.get("image") == "model-registry"}


def settings_variables() -> set[str]:
    """Every variable registry/settings.py reads through its env_* helpers or os.environ."""
    source = (ROOT / "registry" / "settings.py").read_text()
    return set(re.findall(r"""(?:env_(?:str|bool|int|list)|os\.environ\.get)\(\s*["']([A-Z0-9_]+)["']""", source))


def test_the_topology_is_the_cluster_tests():
    assert {"postgres", "minio", "migrate", "webhooks", "app1", "app2"} <= set(SERVICES)
    assert set(REGISTRY_SERVICES) == {"migrate", "app1", "app2", "webhooks", "scanner"}
    app_servers = [name for name, s in REGISTRY_SERVICES.items() if s["command"].startswith("gunicorn registry.wsgi")]
    assert sorted(app_servers) == ["app1", "app2"]
    assert REGISTRY_SERVICES["migrate"]["command"] == "python manage.py migrate --noinput"
    assert REGISTRY_SERVICES["webhooks"]["command"].startswith("python manage.py deliver_webhooks --loop")
    assert REGISTRY_SERVICES["scanner"]["command"].startswith("python manage.py scan_worker --loop")
    # Large files wait for the scanner, not for a thread of whichever app server received them.
    assert {s["environment"]["SCAN_BACKGROUND"] for s in REGISTRY_SERVICES.values()} == {"worker"}
    for name in ("app1", "app2", "webhooks", "scanner"):
        assert REGISTRY_SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # One database and one bucket for every process.
    urls = {s["environment"]["DATABASE_URL"] for s in REGISTRY_SERVICES.values()}
    buckets = {s["environment"]["ARTIFACTS_S3_BUCKET"] for s in REGISTRY_SERVICES.values()}
    assert len(urls) == 1 and "@postgres:5432/" in urls.pop() and len(buckets) == 1


def test_every_variable_set_for_the_registry_is_read_by_its_settings():
    known = settings_variables()
    assert {"DATABASE_URL", "SECRET_KEY", "REGISTRY_LOG_FORMAT", "PROMETHEUS_MULTIPROC_DIR"} <= known  # the parser
    for name, service in REGISTRY_SERVICES.items():
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets {sorted(unknown)}, which registry/settings.py never reads"


def test_the_app_servers_report_ready_through_readyz_and_keep_metrics_on_a_tmpfs():
    for name in ("app1", "app2"):
        service = REGISTRY_SERVICES[name]
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] in service["tmpfs"]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server app1:8000" in nginx and "server app2:8000" in nginx
