"""Reading a stream ahead in a thread: the next chunks are read (and looked at) while the caller writes the last ones.

An upload is three steps a megabyte: receive it from the socket, hash it, write it to the storage. One after another
they add up; with the first two in a thread of their own, a chunk is written while the next one is received and
hashed. Socket reads, hashing and file or network writes all release the GIL, so the two threads overlap. At most
`depth` chunks wait between them, so memory stays bounded whatever the stream's size.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import BinaryIO

_END = b""


class ReadAhead:
    """A reader over `stream` that a thread fills `chunk_size` bytes at a time, calling `on_chunk(chunk)` on each in
    stream order (it may raise: the reader then raises that error where the chunk would have come).

    `read(n)` returns exactly `n` bytes until the stream ends, as a file does (uploaders such as S3's cut parts by
    it). Use it as a context manager, or call `close()`: that stops the thread however far it got.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        chunk_size: int = 1024 * 1024,
        depth: int = 4,
        on_chunk: Callable[[bytes], None] | None = None,
    ):
        self._stream = stream
        self._chunk_size = chunk_size
        self._on_chunk = on_chunk
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._pending = b""  # what the last chunk taken still holds
        self._ended = False
        self._thread = threading.Thread(target=self._fill, name="read-ahead", daemon=True)
        self._thread.start()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _fill(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._stream.read(self._chunk_size)
                if chunk and self._on_chunk is not None:
                    self._on_chunk(chunk)
                self._put(chunk or _END)
                if not chunk:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _next(self) -> bytes:
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        if not item:
            self._ended = True
        return item

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._pending]
            self._pending = b""
            while not self._ended:
                parts.append(self._next())
            return b"".join(parts)
        if not self._pending and not self._ended:
            chunk = self._next()
            if len(chunk) == n:  # the usual case: whole chunks asked for, handed over without a copy
                return chunk
            self._pending = chunk
        parts, wanted = [], n
        while wanted > 0:
            if not self._pending:
                if self._ended:
                    break
                self._pending = self._next()
                continue
            part, self._pending = self._pending[:wanted], self._pending[wanted:]
            parts.append(part)
            wanted -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        """Stop the thread (it ends at its next chunk) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # room for the thread's last put, so it sees the stop
                self._queue.get(timeout=0.1)
        self._ended = True
