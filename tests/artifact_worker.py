"""A stand-in for a server worker, run as its own process by tests/test_artifacts_gc.py: it streams an upload
through `catalog.artifact_files.artifact_store` from a body that stops arriving after a few megabytes, so the test can
`kill -9` it half-way. Settings (database, artifacts storage) come as JSON in argv[1], so that it writes where the
test reads."""

from __future__ import annotations

import json
import os
import sys
import time


class StalledBody:
    """A request body that sends `send` bytes, says so on stdout, then never sends more. Reads are answered in full,
    as a WSGI server's body reader does (boto3 takes a short first read for the whole of a small file)."""

    def __init__(self, send: int):
        self.send = send
        self.sent = 0

    def read(self, n: int = -1) -> bytes:
        if self.sent >= self.send:
            print(f"sent {self.sent}", flush=True)
            while True:
                time.sleep(60)
        n = min(n if n and n > 0 else 1024 * 1024, self.send - self.sent)
        self.sent += n
        return b"x" * n


def main() -> None:
    config = json.loads(sys.argv[1])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
    from django.conf import settings

    settings.DATABASES["default"].update(config["database"])
    settings.STORAGES = {**settings.STORAGES, "artifacts": config["artifacts"]}
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from registry.catalog.artifact_files import artifact_store
    from registry.tracking.models import Run

    run = Run.objects.get(pk=config["run"])
    user = get_user_model().objects.get(pk=config["user"])
    artifact_store(owner=run, path=config["path"], stream=StalledBody(config["send"]), by=user)
    print("finished", flush=True)  # never reached: the body stalls until the test kills this process


if __name__ == "__main__":
    main()
