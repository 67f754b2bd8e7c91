"""Read a pickle stream without loading it: which globals it imports and which of them it calls.

A pickle runs code when loaded only through the globals it imports (`GLOBAL`, `STACK_GLOBAL`, `INST`) and the calls
it makes on them (`REDUCE`, `NEWOBJ`, `OBJ`, `INST`, `BUILD` through `__setstate__`). This walks the opcodes with
`pickletools.genops` and a symbolic stack (never importing or calling anything), so names built at load time
(`STACK_GLOBAL` on strings fetched from the memo) resolve as they would, and joblib's NumPy arrays, which joblib
writes as raw bytes *between* opcodes after each `NumpyArrayWrapper`, are stepped over instead of being misread as
opcodes. Several pickles in a row (PyTorch's legacy format, joblib's object arrays) are all read; bytes after the
last pickle that do not start a new one are data (PyTorch's legacy storages) and are not read.

No Django here.
"""

from __future__ import annotations

import contextlib
import io
import pickletools
import time
from dataclasses import dataclass, field
from typing import BinaryIO

JOBLIB_WRAPPERS = {("joblib.numpy_pickle", "NumpyArrayWrapper")}
MAX_PICKLES = 10_000


class PickleError(Exception):
    """The stream is not a pickle this walk can read; the message says where and why."""


class ScanTimeout(Exception):
    pass


@dataclass(frozen=True)
class Global:
    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


class _Unknown:
    """A value the walk cannot know (a persistent id, an out-of-band buffer, an extension code)."""


UNKNOWN = _Unknown()


@dataclass
class _Call:
    func: object
    args: object
    state: object = None


@dataclass
class _Bytes:
    size: int


@dataclass
class PickleReport:
    imports: set[Global] = field(default_factory=set)
    calls: set[Global] = field(default_factory=set)
    pickles: int = 0
    unresolved: list[str] = field(default_factory=list)  # imports whose names are computed: never safe
    arrays_skipped: int = 0


class _Raw(io.RawIOBase):
    """A stream without `peek` (Django's File, django-storages' S3 file) as a raw stream for io.BufferedReader."""

    def __init__(self, stream):
        self.stream = stream
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position


def _buffered(stream: BinaryIO):
    """A reader with C-speed read/readline (genops calls them for every opcode) and `peek` (to see whether another
    pickle follows). Buffered files, gzip/bz2/lzma files and zip members already are; others are wrapped."""
    if hasattr(stream, "peek"):
        return stream
    inner = getattr(stream, "file", None)  # django.core.files.File around a buffered file
    if inner is not None and hasattr(inner, "peek") and hasattr(inner, "tell"):
        return inner
    return io.BufferedReader(_Raw(stream), buffer_size=1 << 20)


class _WithoutTell:
    """genops asks the stream's position before every opcode when it can (a tenth of the walk's time); it cannot
    through this, which hands it the reader's own read and readline."""

    __slots__ = ("read", "readline")

    def __init__(self, reader):
        self.read = reader.read
        self.readline = reader.readline


class _Source:
    """What the walk reads from: the buffered reader, plus look-ahead, skipping and a position for messages."""

    def __init__(self, stream: BinaryIO):
        self.reader = _buffered(stream)

    @property
    def position(self) -> int | str:
        try:
            return self.reader.tell()
        except (OSError, ValueError):
            return "?"

    def peek(self) -> bytes:
        return self.reader.peek(1)[:1]

    def read(self, n: int) -> bytes:
        return self.reader.read(n)

    def skip(self, n: int) -> None:
        while n > 0:
            chunk = self.reader.read(min(n, 1 << 20))
            if not chunk:
                raise PickleError(f"the file ends inside a {n}-byte array at byte {self.position}")
            n -= len(chunk)


_PUSH_ARG = {
    "INT",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG",
    "LONG1",
    "LONG4",
    "FLOAT",
    "BINFLOAT",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "BINUNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE8",
}
_PUSH_BYTES = {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"}
_PUSH_CONST = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


def walk(stream: BinaryIO, *, deadline: float | None = None) -> PickleReport:
    """Walk every pickle in `stream` (read sequentially, never seeked). Raises PickleError when the first bytes are
    not a pickle or a pickle is cut short, ScanTimeout past `deadline` (a time.monotonic() value)."""
    source = _Source(stream)
    report = PickleReport()
    while report.pickles < MAX_PICKLES:
        if report.pickles and not _starts_pickle(source.peek()):
            break  # data after the last pickle: not read by pickle.load
        if not source.peek():
            break
        _walk_one(source, report, deadline)
    if report.pickles == 0:
        raise PickleError("the file is empty")
    return report


def _starts_pickle(first: bytes) -> bool:
    return first == b"\x80"


def _walk_one(source: _Source, report: PickleReport, deadline: float | None, depth: int = 0) -> None:
    if depth > 8:
        raise PickleError("joblib arrays nested more than 8 deep")
    memo: dict = {}
    stack: list = []
    marks: list[int] = []
    count = 0

    def pop():
        if not stack:
            raise PickleError(f"the pickle pops an empty stack at byte {source.position}")
        return stack.pop()

    def pop_mark() -> list:
        if not marks:
            raise PickleError(f"the pickle closes a mark it never opened at byte {source.position}")
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def note_call(func) -> None:
        if isinstance(func, Global):
            report.calls.add(func)

    def import_(module, name) -> Global | _Unknown:
        if isinstance(module, str) and isinstance(name, str):
            found = Global(module, name)
            report.imports.add(found)
            return found
        report.unresolved.append(f"an import whose name is computed at load time (byte {source.position})")
        return UNKNOWN

    # genops reads lazily, one opcode per next(): after a joblib array's BUILD the raw bytes are skipped on
    # `source` and the next opcode is read from there.
    opcodes = pickletools.genops(_WithoutTell(source.reader))
    while True:
        try:
            opcode, arg, _ = next(opcodes)
        except StopIteration:
            raise PickleError(f"the pickle ends without STOP at byte {source.position}") from None
        except Exception as exc:  # noqa: BLE001 - genops' argument readers raise ValueError and decoding errors
            if report.pickles == 0 and count == 0:
                raise PickleError("not a pickle: " + str(exc)) from None
            raise PickleError(f"unreadable pickle opcode at byte {source.position}: {exc}") from None
        count += 1
        if deadline is not None and count % 4096 == 0 and time.monotonic() > deadline:
            raise ScanTimeout
        name = opcode.name
        if name in _PUSH_ARG:
            stack.append(arg)
        elif name in _PUSH_BYTES:
            stack.append(_Bytes(len(arg)))
        elif name in _PUSH_CONST:
            stack.append(_PUSH_CONST[name])
        elif name == "STOP":
            report.pickles += 1
            return
        elif name in ("PROTO", "FRAME"):
            pass
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "POP":
            if stack:
                stack.pop()
            else:
                pop_mark()
        elif name == "POP_MARK":
            pop_mark()
        elif name == "DUP":
            stack.append(stack[-1] if stack else UNKNOWN)
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            size = int(name[-1])
            items = [pop() for _ in range(size)][::-1]
            stack.append(tuple(items))
        elif name == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "LIST":
            stack.append(pop_mark())
        elif name == "APPEND":
            value = pop()
            target = stack[-1] if stack else None
            if isinstance(target, list):
                target.append(value)
        elif name == "APPENDS":
            items = pop_mark()
            if stack and isinstance(stack[-1], list):
                stack[-1].extend(items)
        elif name in ("EMPTY_DICT",):
            stack.append({})
        elif name == "DICT":
            items = pop_mark()
            stack.append(_as_dict(items))
        elif name == "SETITEM":
            value, key = pop(), pop()
            if stack and isinstance(stack[-1], dict):
                _set(stack[-1], key, value)
        elif name == "SETITEMS":
            items = pop_mark()
            if stack and isinstance(stack[-1], dict):
                stack[-1].update(_as_dict(items))
        elif name == "EMPTY_SET":
            stack.append(UNKNOWN)
        elif name in ("ADDITEMS",):
            pop_mark()
        elif name == "FROZENSET":
            pop_mark()
            stack.append(UNKNOWN)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1] if stack else UNKNOWN
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else UNKNOWN
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(arg, UNKNOWN))
        elif name == "GLOBAL":
            module, _, attr = arg.partition(" ")
            stack.append(import_(module, attr))
        elif name == "STACK_GLOBAL":
            attr, module = pop(), pop()
            stack.append(import_(module, attr))
        elif name == "INST":
            module, _, attr = arg.partition(" ")
            func = import_(module, attr)
            note_call(func)
            stack.append(_Call(func, tuple(pop_mark())))
        elif name == "OBJ":
            items = pop_mark()
            func = items[0] if items else UNKNOWN
            note_call(func)
            stack.append(_Call(func, tuple(items[1:])))
        elif name in ("REDUCE", "NEWOBJ"):
            args, func = pop(), pop()
            note_call(func)
            stack.append(_Call(func, args))
        elif name == "NEWOBJ_EX":
            _kwargs, args, func = pop(), pop(), pop()
            note_call(func)
            stack.append(_Call(func, args))
        elif name == "BUILD":
            state = pop()
            target = stack[-1] if stack else UNKNOWN
            if isinstance(target, _Call):
                target.state = state
                # Setting state calls the class's __setstate__ when it has one: the class was imported and
                # called already, so nothing new is reached here.
                if _is_joblib_array(target):
                    if _skip_joblib_array(source, target.state):
                        # An object array: joblib pickled it right here, as a pickle of its own.
                        _walk_one(source, report, deadline, depth + 1)
                        report.pickles -= 1
                    report.arrays_skipped += 1
                    stack[-1] = UNKNOWN
        elif name in ("PERSID", "BINPERSID"):
            if name == "BINPERSID":
                pop()
            stack.append(UNKNOWN)
        elif name in ("EXT1", "EXT2", "EXT4"):
            report.unresolved.append(f"an import through the copyreg extension registry (code {arg})")
            stack.append(UNKNOWN)
        elif name in ("NEXT_BUFFER",):
            stack.append(UNKNOWN)
        elif name == "READONLY_BUFFER":
            pass
        else:  # an opcode pickletools knows and this walk does not model: it pushes something unknown
            stack.append(UNKNOWN)


def _as_dict(items: list) -> dict:
    result: dict = {}
    for i in range(0, len(items) - 1, 2):
        _set(result, items[i], items[i + 1])
    return result


def _set(target: dict, key, value) -> None:
    with contextlib.suppress(TypeError):  # an unhashable symbolic key: irrelevant to what is imported
        target[key] = value


def _is_joblib_array(call: _Call) -> bool:
    func = call.func
    return isinstance(func, Global) and (func.module, func.name) in JOBLIB_WRAPPERS


def _skip_joblib_array(source: _Source, state) -> bool:
    """Step over the raw bytes joblib wrote after a NumpyArrayWrapper (see joblib's `write_array`): an optional
    padding-length byte and padding, then shape × itemsize bytes. An object array is a nested pickle instead: answers
    True and leaves it to the caller."""
    if not isinstance(state, dict):
        raise PickleError("a joblib array without its shape and dtype")
    shape, dtype = state.get("shape"), state.get("dtype")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise PickleError("a joblib array whose shape cannot be read")
    itemsize, is_object = _dtype_itemsize(dtype)
    if is_object:
        return True
    if state.get("numpy_array_alignment_bytes") is not None:
        padding = source.read(1)
        if not padding:
            raise PickleError("the file ends before a joblib array")
        source.skip(padding[0])
    count = 1
    for n in shape:
        count *= n
    source.skip(count * itemsize)
    return False


def _dtype_itemsize(dtype) -> tuple[int, bool]:
    """numpy.dtype pickles as dtype(descr, False, True) with state (3, order, subdtype, names, fields, itemsize, …)."""
    if not isinstance(dtype, _Call) or not isinstance(dtype.args, tuple) or not dtype.args:
        raise PickleError("a joblib array whose dtype cannot be read")
    descr = dtype.args[0]
    if not isinstance(descr, str) or not descr:
        raise PickleError("a joblib array whose dtype cannot be read")
    kind, digits = descr[0], descr[1:]
    if kind == "O":
        return 8, True
    state = dtype.state
    if isinstance(state, tuple) and len(state) >= 6 and isinstance(state[5], int) and state[5] > 0:
        if isinstance(state[4], dict) and state[4]:
            raise PickleError("a joblib array of a structured dtype")
        return state[5], False
    if not digits.isdigit():
        raise PickleError(f"a joblib array of dtype {descr!r}")
    size = int(digits)
    return (size * 4 if kind == "U" else size), False
