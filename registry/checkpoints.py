"""Copy SQLite's write-ahead log into the database file from a background thread, not from a request.

By default the connection whose commit takes the WAL past 1,000 pages runs the checkpoint: it writes those pages
into the database file and syncs both files, 8-10 ms on this kind of disk, inside that request. With WAL and
`synchronous=NORMAL` that is the only time SQLite syncs, so one write request in ~60 pays for everyone's
durability (measured on version registration: 2% of commits, 70% of the time spent committing). A thread in each
server process runs a passive checkpoint every 50 ms instead; SQLite releases the GIL while it copies and syncs,
so request threads carry on, and a passive checkpoint never waits for nor blocks readers and writers. Requests keep
SQLite's automatic checkpoint as the fallback: when this thread has kept up, it finds nothing left to copy.

Started by the gunicorn workers (gunicorn.conf.py); tests, management commands and `runserver` keep SQLite's
default behaviour.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

# Fast enough that the WAL rarely reaches SQLite's 1,000-page threshold between two runs (registering versions
# writes ~5,000 pages a second); when the WAL has not grown, a run costs a few microseconds.
INTERVAL_SECONDS = 0.05


def sqlite_file(database: Mapping) -> str | None:
    """The file of a DATABASES entry when it is an SQLite file; None for other databases and in-memory ones."""
    name = str(database.get("NAME") or "")
    if database.get("ENGINE") != "django.db.backends.sqlite3" or name in ("", ":memory:") or name.startswith("file:"):
        return None
    return name


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int]:
    """One passive checkpoint. Returns SQLite's (busy, frames in the WAL, frames copied into the database)."""
    return connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


class Checkpointer(threading.Thread):
    """Runs a passive checkpoint of the SQLite file at `path` every `interval` seconds until stopped."""

    def __init__(self, path: str, interval: float = INTERVAL_SECONDS):
        super().__init__(name="sqlite-checkpoints", daemon=True)
        self.path, self.interval = path, interval
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        self.join()

    def run(self) -> None:
        connection = None
        try:
            while not self._stopped.wait(self.interval):
                try:
                    if connection is None:
                        # Read-write without creating: a server started before `migrate` must leave no empty file.
                        uri = Path(self.path).resolve().as_uri() + "?mode=rw"
                        connection = sqlite3.connect(uri, uri=True, timeout=0)
                    checkpoint(connection)
                except sqlite3.Error as exc:
                    # Another worker's thread is checkpointing, or the file is not there yet: try again next time.
                    logger.debug("WAL checkpoint of %s skipped: %s", self.path, exc)
        finally:
            if connection is not None:
                connection.close()


def start(path: str | None = None, *, interval: float = INTERVAL_SECONDS) -> Checkpointer | None:
    """Start checkpointing `path` (default: the default database) in a daemon thread that ends with the process;
    None when the database is not an SQLite file."""
    path = path or sqlite_file(settings.DATABASES["default"])
    if path is None:
        return None
    checkpointer = Checkpointer(path, interval)
    checkpointer.start()
    return checkpointer
