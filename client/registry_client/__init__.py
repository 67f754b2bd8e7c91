"""Python client for the model registry.

This package is installed on training machines, so it must never import Django (or anything of the server).
numpy and pandas are optional: modules that can use them import them lazily.

    from registry_client import Registry

    registry = Registry.from_env()
    with registry.start_run(experiment="fraud-detection") as run:
        run.log_params({"max_depth": 6})
        run.log_metric("loss", 0.25, step=1)
"""

from __future__ import annotations

__version__ = "0.1.0"

from registry_client.client import Registry  # noqa: E402  (needs __version__ above)
from registry_client.errors import RegistryError  # noqa: E402
from registry_client.run import Run  # noqa: E402

__all__ = ["Registry", "RegistryError", "Run", "__version__"]
