"""Running the same work from several threads at once, as several workers or servers would (PostgreSQL tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connections

T = TypeVar("T")


def at_once(work: Callable[[], T], count: int, timeout: float = 60) -> list[T]:
    """Start `count` threads that each run `work()` as soon as all are ready; return what they returned. Each
    thread has its own database connection, closed when it ends; an exception in any thread, or a thread still
    running after `timeout`, fails the caller."""
    results: list[T] = []
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run() -> None:
        try:
            start.wait(timeout=30)
            results.append(work())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), f"a thread still ran after {timeout} s"
    if errors:
        raise errors[0]
    return results
