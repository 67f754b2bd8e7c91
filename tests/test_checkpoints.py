"""registry.checkpoints: the background thread that copies SQLite's WAL into the database file."""

from __future__ import annotations

import sqlite3
import time

from registry import checkpoints

SQLITE = "django.db.backends.sqlite3"


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_only_sqlite_files_are_checkpointed(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    assert checkpoints.sqlite_file({"ENGINE": SQLITE, "NAME": path}) == path
    assert checkpoints.sqlite_file({"ENGINE": SQLITE, "NAME": ":memory:"}) is None
    assert checkpoints.sqlite_file({"ENGINE": "django.db.backends.postgresql", "NAME": "test"}) is None


def test_the_thread_copies_what_writers_leave_in_the_wal(tmp_path):
    path = tmp_path / "db.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # this writer never checkpoints: only the thread can
    writer.execute("CREATE TABLE t (x TEXT)")
    checkpoints.checkpoint(writer)
    size_before = path.stat().st_size
    writer.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,) for _ in range(200)])
    assert path.stat().st_size == size_before  # the rows are in the WAL only

    checkpointer = checkpoints.start(str(path), interval=0.01)
    try:
        assert wait_for(lambda: path.stat().st_size >= size_before + 200 * 1000)
    finally:
        checkpointer.stop()
    assert not checkpointer.is_alive()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (200,)
    writer.close()


def test_a_missing_database_is_waited_for_not_created(tmp_path):
    path = tmp_path / "later.sqlite3"
    checkpointer = checkpoints.start(str(path), interval=0.01)
    try:
        time.sleep(0.1)
        assert not path.exists()
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("CREATE TABLE t (x TEXT)")
        writer.executemany("INSERT INTO t VALUES (?)", [("y" * 1000,) for _ in range(100)])
        assert wait_for(lambda: path.stat().st_size >= 100 * 1000)
        writer.close()
    finally:
        checkpointer.stop()
