"""registry.lib.readahead: a stream read in a thread gives back exactly its bytes, in order, with file semantics."""

from __future__ import annotations

import io
import threading

import pytest

from registry.lib.readahead import ReadAhead

DATA = bytes(range(256)) * 1000  # 256,000 bytes


class Trickle(io.RawIOBase):
    """A stream that answers every read with fewer bytes than asked, as a socket may."""

    def __init__(self, data: bytes, most: int):
        self.data, self.most, self.at = data, most, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        part = self.data[self.at : self.at + min(n, self.most)]
        self.at += len(part)
        return part


@pytest.mark.parametrize("ask", [1, 1000, 4096, 65536, 100_000, 1 << 20])
@pytest.mark.parametrize("chunk_size", [1000, 65536])
def test_reads_give_exactly_what_was_asked_until_the_end(ask, chunk_size):
    seen = []
    with ReadAhead(io.BytesIO(DATA), chunk_size=chunk_size, on_chunk=seen.append) as reader:
        parts = []
        while part := reader.read(ask):
            assert len(part) == ask or len(b"".join(parts)) + len(part) == len(DATA)
            parts.append(part)
        assert reader.read(ask) == b""
    assert b"".join(parts) == DATA
    assert b"".join(seen) == DATA  # on_chunk saw every byte once, in order


def test_short_reads_of_the_stream_still_fill_each_read():
    with ReadAhead(Trickle(DATA, most=777), chunk_size=4096) as reader:
        first = reader.read(10_000)
        rest = reader.read()
    assert len(first) == 10_000 and first + rest == DATA


def test_an_error_in_on_chunk_is_raised_where_that_chunk_would_come():
    def refuse_past(limit):
        total = [0]

        def check(chunk):
            total[0] += len(chunk)
            if total[0] > limit:
                raise ValueError("too large")

        return check

    with ReadAhead(io.BytesIO(DATA), chunk_size=1000, on_chunk=refuse_past(5000)) as reader:
        assert reader.read(5000) == DATA[:5000]
        with pytest.raises(ValueError, match="too large"):
            reader.read(1000)


def test_an_error_reading_the_stream_reaches_the_reader():
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            raise OSError("connection reset")

    with ReadAhead(Broken()) as reader, pytest.raises(OSError, match="connection reset"):
        reader.read(10)


def test_closing_early_stops_the_thread_and_reads_no_further():
    """A reader closed after one chunk of a long stream: the thread ends, having read at most the chunks that fit
    in its queue, not the rest of the stream."""
    stream = io.BytesIO(DATA * 40)  # about 10 MB
    with ReadAhead(stream, chunk_size=1000, depth=4) as reader:
        reader.read(1000)
    assert not any(t.name == "read-ahead" for t in threading.enumerate())
    assert stream.tell() <= 1000 * 7  # the chunk taken, the queue's four, one being put, one being read
