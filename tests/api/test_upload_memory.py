"""A large upload through a real HTTP server streams to storage: the server's Python memory stays flat.

The live server runs in a thread of this process, so tracemalloc sees its allocations.
"""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc

import pytest
import requests

from registry.accounts.models import ApiToken
from registry.catalog.models import ArtifactFile
from tests.factories import RunFactory, UserFactory

SIZE = 200 * 1024 * 1024
MEMORY_BUDGET = 64 * 1024 * 1024


class GeneratedFile:
    """A `SIZE`-byte body made on the fly, hashed as it is read; `len` lets requests send a Content-Length."""

    def __init__(self, size: int):
        self.len = size
        self.remaining = size
        self.block = os.urandom(1024 * 1024)
        self.counter = 0
        self.sha256 = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        n = self.remaining if n is None or n < 0 else min(n, self.remaining)
        n = min(n, len(self.block))
        # Vary the bytes so that a server that mixed up chunks would get the checksum wrong.
        self.counter += 1
        chunk = self.counter.to_bytes(8, "big") + self.block[8:n] if n >= 8 else self.block[:n]
        self.remaining -= len(chunk)
        self.sha256.update(chunk)
        return chunk


@pytest.mark.django_db(transaction=True)
def test_a_200_mb_upload_keeps_server_memory_flat(live_server, artifact_storage_in_tmp):
    user = UserFactory(username="uploader")
    raw = ApiToken.issue(user=user, name="big upload")[1]
    run = RunFactory(user=user)
    body = GeneratedFile(SIZE)
    url = f"{live_server.url}/api/v1/runs/{run.pk}/artifacts/model/weights.bin"

    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        started = time.monotonic()
        response = requests.put(
            url,
            data=body,
            headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/octet-stream"},
            timeout=120,
        )
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 201, response.text
    growth = peak - baseline
    assert growth < MEMORY_BUDGET, f"server memory grew by {growth / 2**20:.0f} MB during the upload"
    stored = response.json()
    assert stored["size"] == SIZE
    assert stored["sha256"] == body.sha256.hexdigest()
    row = ArtifactFile.objects.get(run=run, path="model/weights.bin")
    assert (row.size, row.sha256) == (SIZE, body.sha256.hexdigest())
    on_disk = artifact_storage_in_tmp / row.storage_key
    assert on_disk.stat().st_size == SIZE
    assert elapsed < 60, f"the upload took {elapsed:.0f} s"
