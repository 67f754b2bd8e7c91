"""Is a model file safe to load? A verdict for one file, from its bytes, without loading it.

- **Pickles** (pickle, joblib, cloudpickle, PyTorch's legacy `.pt`/`.bin`, gzip/bz2/xz/lzma-compressed joblib):
  every global the pickle imports must be on the reviewed allowlist (`scan_allowlist.py`); the opcodes are walked by
  `pickle_walk` (joblib's raw arrays stepped over). Imports on picklescan's list of dangerous globals are named as
  such ("calls posix.system (os.system: runs commands or touches files)"); others as "not on the allowlist".
- **Zip containers**: PyTorch (`data.pkl` and any other pickle inside), NumPy `.npz`, Keras 3 `.keras` (its
  `config.json`: a `Lambda` layer holds Python code that runs when the model loads), skops (`schema.json`: every type
  it would construct must be on the allowlist, as skops' own trusted-types check asks). Members that only hold data
  (tensor storages, weights, text) are not code.
- **Keras `.h5`** (HDF5): the model config stored in the file is searched for `Lambda` layers.
- **NumPy `.npy`**: plain arrays are data; an object array is a pickle (NumPy loads it only with `allow_pickle=True`):
  its imports are checked, and a clean one is still `unknown`.
- **Data-only formats**: safetensors (its JSON header checked), ONNX, HDF5 without a Lambda, images, Parquet, text.
- Anything else is `unknown` with the reason, as is a file that claims a format and does not parse, or a scan past
  its time limit. Never `safe` by default.

No Django here.
"""

from __future__ import annotations

import ast
import bz2
import functools
import gzip
import json
import lzma
import struct
import time
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import BinaryIO

from registry.lib import pickle_walk
from registry.lib.scan_allowlist import DANGEROUS_MEANING, is_allowed

SAFE, UNSAFE, UNKNOWN, PENDING = "safe", "unsafe", "unknown", "pending"
RULES_VERSION = "1"


def _picklescan_version() -> str:
    try:
        return version("picklescan")
    except PackageNotFoundError:  # pragma: no cover - installed with the server
        return "0"


SCANNER = "registry-filescan"
# Stored with every verdict: a change in either part (our rules, picklescan's list) means old verdicts are rescanned.
SCANNER_VERSION = f"{RULES_VERSION}+picklescan-{_picklescan_version()}"

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".dat", ".sav", ".p", ".pck", ".cpkl"}
MAX_ZIP_MEMBERS = 100_000
MAX_CONFIG_BYTES = 64 * 1024 * 1024
KERAS_LAMBDA = ("Lambda", "TFOpLambda")


@dataclass
class Verdict:
    verdict: str
    format: str
    findings: list[str] = field(default_factory=list)
    reason: str = ""
    seconds: float | None = None

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "format": self.format, "findings": self.findings, "reason": self.reason}


class _Unreadable(Exception):
    """The file claims a format and does not parse as it."""


@dataclass
class _Context:
    extra_allowed: dict[str, frozenset[str]]
    deadline: float

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise pickle_walk.ScanTimeout


def scan(
    stream: BinaryIO, name: str, *, extra_allowed: dict[str, frozenset[str]] | None = None, timeout: float = 300
) -> Verdict:
    """The verdict for one file. `stream` must be seekable; `name` is its path (its suffix is a hint, the bytes
    decide). Never raises for what the file holds: a file that cannot be read is `unknown` with the reason."""
    context = _Context(extra_allowed or {}, time.monotonic() + timeout)
    try:
        return _scan(stream, name, context, depth=0)
    except pickle_walk.ScanTimeout:
        return Verdict(UNKNOWN, "", reason=f"the scan took longer than its {timeout:g}-second limit")
    except RecursionError:
        return Verdict(UNKNOWN, "", reason="the file nests deeper than the scanner follows")
    except MemoryError:
        return Verdict(UNKNOWN, "", reason="the file needed more memory than the scanner may use")


def _suffix(name: str) -> str:
    base = name.rsplit("/", 1)[-1].lower()
    return "." + base.rsplit(".", 1)[-1] if "." in base else ""


def _scan(stream: BinaryIO, name: str, context: _Context, depth: int) -> Verdict:
    head = stream.read(16)
    stream.seek(0)
    suffix = _suffix(name)
    if not head:
        return Verdict(SAFE, "empty")
    if head.startswith(b"\x93NUMPY"):
        return _scan_npy(stream, context)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _scan_zip(stream, name, context, depth)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return _scan_hdf5(stream, context)
    if _is_binary_pickle(head):
        return _scan_pickle(stream, "pickle", context)
    compressed = _decompressor(head)
    if compressed is not None:
        kind, opener = compressed
        return _scan_pickle(opener(stream), f"{kind}-compressed pickle (joblib)", context)
    if _is_safetensors(stream, head):
        return Verdict(SAFE, "safetensors")
    if suffix in PICKLE_SUFFIXES:
        return _scan_pickle(stream, "pickle", context)  # protocol 0 or 1: text opcodes
    if suffix == ".onnx":
        if head[:1] == b"\x08":  # field 1 (ir_version), varint: a ModelProto
            return Verdict(SAFE, "ONNX")
        return Verdict(UNKNOWN, "ONNX", reason="the file does not start as an ONNX model does")
    if head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")):
        return Verdict(SAFE, "image")
    if head.startswith(b"PAR1"):
        return Verdict(SAFE, "Parquet")
    if _looks_like_text(stream):
        return _scan_text(stream, suffix, context)
    return Verdict(
        UNKNOWN, "binary", reason="not a format the scanner reads (pickle, zip, HDF5, NumPy, safetensors, ONNX, text)"
    )


def _is_binary_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _decompressor(head: bytes):
    if head.startswith(b"\x1f\x8b"):
        return "gzip", lambda s: gzip.GzipFile(fileobj=s, mode="rb")
    if head.startswith(b"BZh"):
        return "bz2", lambda s: bz2.BZ2File(s, mode="rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz", lambda s: lzma.LZMAFile(s, mode="rb")
    if head.startswith(b"\x5d\x00\x00"):
        return "lzma", lambda s: lzma.LZMAFile(s, mode="rb", format=lzma.FORMAT_ALONE)
    return None


def _is_safetensors(stream: BinaryIO, head: bytes) -> bool:
    """An 8-byte little-endian header length, then a JSON object of that length."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (length,) = struct.unpack("<Q", head[:8])
    if length > MAX_CONFIG_BYTES:
        return False
    stream.seek(8)
    header = stream.read(length)
    stream.seek(0)
    try:
        return len(header) == length and isinstance(json.loads(header), dict)
    except ValueError:
        return False


def _looks_like_text(stream: BinaryIO) -> bool:
    sample = stream.read(65536)
    stream.seek(0)
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(sample) - 3  # a character cut at the sample's end
    return True


def _scan_text(stream: BinaryIO, suffix: str, context: _Context) -> Verdict:
    if suffix == ".py":
        return Verdict(UNKNOWN, "Python source", reason="Python code runs if a loader imports it: review it by hand")
    if suffix == ".json":
        data = stream.read(MAX_CONFIG_BYTES + 1)
        if len(data) <= MAX_CONFIG_BYTES:
            try:
                lambdas = _keras_lambdas(json.loads(data))
            except ValueError:
                lambdas = []
            if lambdas:
                return Verdict(UNSAFE, "Keras model config", findings=lambdas)
    return Verdict(SAFE, "text")


# --- Pickles --------------------------------------------------------------------------------------------------------


def _scan_pickle(stream: BinaryIO, kind: str, context: _Context) -> Verdict:
    try:
        report = pickle_walk.walk(stream, deadline=context.deadline)
    except pickle_walk.PickleError as exc:
        return Verdict(UNKNOWN, kind, reason=f"not a readable pickle: {exc}")
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        return Verdict(UNKNOWN, kind, reason=f"could not be read: {exc}")
    findings = _pickle_findings(report, context)
    return Verdict(UNSAFE if findings else SAFE, kind, findings=findings)


def _pickle_findings(report: pickle_walk.PickleReport, context: _Context) -> list[str]:
    findings = []
    for imported in sorted(report.imports, key=str):
        if is_allowed(imported.module, imported.name, context.extra_allowed):
            continue
        verb = "calls" if imported in report.calls else "imports"
        meaning = _dangerous(imported)
        if meaning is not None:
            findings.append(f"{verb} {imported} ({meaning})")
        else:
            findings.append(f"{verb} {imported}, which is not on the allowlist")
    findings += [f"uses {what}" for what in report.unresolved]
    return findings


# Used only if picklescan is missing (a broken install): the gravest entries of its list. Either way a global off
# the allowlist is unsafe; the list only decides how the finding is worded.
_FALLBACK_DANGEROUS = {
    module: "*" for module in ("os", "posix", "nt", "subprocess", "socket", "pty", "runpy", "shutil", "sys", "pickle")
} | {"builtins": {"eval", "exec", "compile", "open", "getattr", "breakpoint"}}


@functools.cache
def _dangerous_globals() -> dict:
    try:
        from picklescan import scanner
    except ImportError:  # pragma: no cover - picklescan is a dependency of the server
        return _FALLBACK_DANGEROUS
    return scanner._unsafe_globals


def _dangerous(imported: pickle_walk.Global) -> str | None:
    """picklescan's list of dangerous globals (the list the Hugging Face Hub's scanner grew from)."""
    unsafe = _dangerous_globals()
    parts = imported.module.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        names = unsafe.get(module)
        if names is None:
            continue
        if names == "*" or (i == len(parts) and (names == imported.name or imported.name in names)):
            root = parts[0]
            alias = f"os.{imported.name}: " if root in ("posix", "nt") else ""
            return alias + DANGEROUS_MEANING.get(root, "known to run code when loaded")
    return None


# --- NumPy ----------------------------------------------------------------------------------------------------------


def _scan_npy(stream: BinaryIO, context: _Context) -> Verdict:
    try:
        descr = _npy_descr(stream)
    except _Unreadable as exc:
        return Verdict(UNKNOWN, "NumPy array", reason=str(exc))
    if not _has_object(descr):
        return Verdict(SAFE, "NumPy array")
    verdict = _scan_pickle(stream, "NumPy object array", context)
    if verdict.verdict == SAFE:
        verdict.verdict = UNKNOWN
        verdict.reason = (
            "an object array: NumPy loads it only with allow_pickle=True (its pickle imports only allowlisted names)"
        )
    return verdict


def _npy_descr(stream: BinaryIO):
    prefix = stream.read(8)
    if len(prefix) < 8 or not prefix.startswith(b"\x93NUMPY"):
        raise _Unreadable("the NumPy header is cut short")
    major = prefix[6]
    size_bytes = 2 if major == 1 else 4
    raw = stream.read(size_bytes)
    if len(raw) != size_bytes or major not in (1, 2, 3):
        raise _Unreadable(f"unsupported NumPy format version {major}")
    (length,) = struct.unpack("<H" if size_bytes == 2 else "<I", raw)
    header = stream.read(length)
    try:
        parsed = ast.literal_eval(header.decode("latin-1" if major < 3 else "utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        raise _Unreadable("the NumPy header is not a readable dictionary") from None
    if not isinstance(parsed, dict) or "descr" not in parsed:
        raise _Unreadable("the NumPy header names no dtype")
    return parsed["descr"]


def _has_object(descr) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=")[:1] == "O"
    if isinstance(descr, (list, tuple)):
        return any(_has_object(part) for part in descr if not isinstance(part, (int, str)) or part)
    return True  # a dtype spelled in a way we do not know: treated as possibly objects


# --- Zip containers -------------------------------------------------------------------------------------------------


def _scan_zip(stream: BinaryIO, name: str, context: _Context, depth: int) -> Verdict:
    try:
        archive = zipfile.ZipFile(stream)
        members = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        return Verdict(UNKNOWN, "zip", reason=f"not a readable zip archive: {exc}")
    if len(members) > MAX_ZIP_MEMBERS:
        return Verdict(UNKNOWN, "zip", reason=f"more than {MAX_ZIP_MEMBERS} files in the archive")
    names = {info.filename for info in members}
    kind = _zip_kind(names)
    findings: list[str] = []
    unknowns: list[str] = []
    try:
        if kind == "Keras":
            findings += _keras_lambdas(json.loads(_read_member(archive, "config.json")))
        if kind == "skops":
            findings += _skops_untrusted(json.loads(_read_member(archive, "schema.json")), context)
        for info in members:
            context.check_time()
            verdict = _scan_member(archive, info, context, depth)
            if verdict is None:
                continue
            if verdict.verdict == UNSAFE:
                findings += [f"{info.filename}: {finding}" for finding in verdict.findings]
            elif verdict.verdict == UNKNOWN:
                unknowns.append(f"{info.filename}: {verdict.reason}")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        return Verdict(UNSAFE if findings else UNKNOWN, kind, findings=findings, reason=f"unreadable archive: {exc}")
    if findings:
        return Verdict(UNSAFE, kind, findings=findings)
    if unknowns:
        return Verdict(UNKNOWN, kind, reason="; ".join(unknowns)[:2000])
    return Verdict(SAFE, kind)


def _zip_kind(names: set[str]) -> str:
    if "config.json" in names and ({"metadata.json", "model.weights.h5"} & names):
        return "Keras"
    if "schema.json" in names:
        return "skops"
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        return "PyTorch"
    if names and all(n.endswith(".npy") for n in names):
        return "NumPy .npz"
    return "zip"


def _read_member(archive: zipfile.ZipFile, member: str) -> bytes:
    with archive.open(member) as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"{member} is larger than {MAX_CONFIG_BYTES} bytes")
    return data


def _scan_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, context: _Context, depth: int) -> Verdict | None:
    """The verdict of a member that can carry code (pickles, NumPy arrays, nested archives, Python files); None for
    the members a loader reads as data (tensor storages, weights, configs, text)."""
    with archive.open(info) as handle:
        head = handle.read(8)
    suffix = _suffix(info.filename)
    if _is_binary_pickle(head) or suffix in PICKLE_SUFFIXES - {".bin", ".dat"}:
        with archive.open(info) as handle:
            return _scan_pickle(handle, "pickle", context)
    if head.startswith(b"\x93NUMPY"):
        with archive.open(info) as handle:
            return _scan_npy(handle, context)
    if suffix == ".py":
        return Verdict(UNKNOWN, "Python source", reason="Python code runs if a loader imports it")
    if head.startswith(b"PK\x03\x04") and depth < 2:
        with archive.open(info) as handle:
            return _scan(handle, info.filename, context, depth + 1)  # ZipExtFile seeks (slowly): nested is rare
    return None


# --- Keras ----------------------------------------------------------------------------------------------------------


def _keras_lambdas(config) -> list[str]:
    """Lambda layers anywhere in a Keras model config (nested models and wrappers included)."""
    found: list[str] = []
    todo = [config]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if node.get("class_name") in KERAS_LAMBDA:
                layer = node.get("config", {}).get("name", "?") if isinstance(node.get("config"), dict) else "?"
                found.append(
                    f"Keras {node['class_name']} layer {layer!r} (Python code stored in the file runs when the model "
                    "loads)"
                )
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return sorted(found)


def _scan_hdf5(stream: BinaryIO, context: _Context) -> Verdict:
    """Keras' .h5 keeps the model config as a JSON attribute, stored as plain bytes: look for Lambda layers in it.
    (Reading HDF5 properly needs h5py, which the server does not install.)"""
    needles = [f'"class_name": "{kind}"'.encode() for kind in KERAS_LAMBDA]
    needles += [f'"class_name":"{kind}"'.encode() for kind in KERAS_LAMBDA]
    keep = max(len(n) for n in needles)
    tail = b""
    keras = False
    while True:
        context.check_time()
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        window = tail + chunk
        keras = keras or b"keras_version" in window or b"model_config" in window
        hits = [n for n in needles if n in window]
        if hits:
            kind = hits[0].split(b'"')[-2].decode()
            return Verdict(
                UNSAFE,
                "Keras HDF5",
                findings=[f"Keras {kind} layer (Python code stored in the file runs when the model loads)"],
            )
        tail = window[-keep:]
    return Verdict(SAFE, "Keras HDF5" if keras else "HDF5")


# --- skops ----------------------------------------------------------------------------------------------------------

# What skops constructs without naming a class of the model's (its own node loaders' built-in types).
_SKOPS_BUILTIN_LOADERS = {
    *("NdArrayNode", "SparseMatrixNode", "JsonNode", "ListNode", "TupleNode", "DictNode", "SetNode"),
    *("BytesNode", "BytearrayNode", "SliceNode"),
}


def _skops_untrusted(schema, context: _Context) -> list[str]:
    """Every type a skops file would construct, checked against the allowlist (skops' own `get_untrusted_types`
    answers the same question against skops' defaults; ours is the reviewed list)."""
    types: set[tuple[str, str]] = set()
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            module, cls = node.get("__module__"), node.get("__class__")
            if (
                isinstance(module, str)
                and isinstance(cls, str)
                and node.get("__loader__") not in (_SKOPS_BUILTIN_LOADERS)
            ):
                types.add((module, cls))
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return [
        f"constructs {module}.{cls}, which is not on the allowlist"
        for module, cls in sorted(types)
        if not is_allowed(module, cls, context.extra_allowed)
    ]
