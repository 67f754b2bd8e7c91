"""Moving artifact bytes: streamed uploads, multipart uploads straight to the registry's bucket, and resumable
downloads (which follow the registry's redirect to the bucket when it sends one), all checked against sha256.

Files are never read whole into memory: uploads hand requests a reader it pulls from in small blocks, downloads are
written chunk by chunk to a temporary file next to the target, which is renamed into place once its checksum holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import requests

from registry_client.errors import RegistryError
from registry_client.http import Http, backoff, quote_path
from registry_client.progress import Progress

CHUNK_SIZE = 1024 * 1024


def local_files(local_path: Path, artifact_path: str | None) -> list[tuple[Path, str]]:
    """(local file, artifact path) pairs for a file or a directory tree, in a stable order.

    A file goes to `artifact_path/<file name>` (the root if None). A directory's contents keep their relative paths
    under `artifact_path`, which defaults to the directory's own name.
    """
    prefix = (artifact_path or "").strip("/")
    if local_path.is_file():
        return [(local_path, f"{prefix}/{local_path.name}" if prefix else local_path.name)]
    if local_path.is_dir():
        if artifact_path is None:
            prefix = local_path.resolve().name
        pairs = []
        for file in sorted(p for p in local_path.rglob("*") if p.is_file()):
            relative = file.relative_to(local_path).as_posix()
            pairs.append((file, f"{prefix}/{relative}" if prefix else relative))
        return pairs
    raise FileNotFoundError(f"No file or directory at {local_path}.")


class _UploadBody:
    """A file as a request body: read in blocks by the HTTP library, hashed and counted on the way."""

    def __init__(self, path: Path, size: int, progress: Progress):
        self.handle = path.open("rb")
        self.size = size
        self.progress = progress
        self.hash = hashlib.sha256()
        self.sent = 0

    def __len__(self) -> int:  # requests sends Content-Length from this instead of chunked encoding
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_SIZE):
            yield chunk

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        if chunk:
            self.hash.update(chunk)
            self.sent += len(chunk)
            self.progress.update(len(chunk))
        return chunk

    def close(self) -> None:
        self.handle.close()


def upload_file(http: Http, run_id: str, local: Path, artifact_path: str, progress: Progress) -> dict:
    """PUT one file to the run at `artifact_path`; return the server's artifact dict after checking its sha256."""
    size = local.stat().st_size
    bodies: list[_UploadBody] = []

    def fresh_body():
        if bodies:  # a retry: what the failed attempt counted is sent again
            progress.update(-bodies[-1].sent)
            bodies[-1].close()
        if size == 0:
            return b""  # an empty stream would make requests switch to chunked encoding
        bodies.append(_UploadBody(local, size, progress))
        return bodies[-1]

    try:
        response = http.request(
            "PUT",
            f"/runs/{run_id}/artifacts/{quote_path(artifact_path)}",
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            body=fresh_body,
        )
    finally:
        if bodies:
            bodies[-1].close()
    artifact = response.json()
    local_sha256 = bodies[-1].hash.hexdigest() if bodies else hashlib.sha256(b"").hexdigest()
    if artifact.get("sha256") != local_sha256 or artifact.get("size") != size:
        raise RegistryError(
            None,
            "checksum_mismatch",
            f"The registry stored {artifact_path!r} as {artifact.get('size')} bytes with sha256 "
            f"{artifact.get('sha256')}, but {local} is {size} bytes with sha256 {local_sha256}; upload it again.",
        )
    return artifact


MULTIPART_THRESHOLD = 64 * 1024 * 1024


class _PartBody:
    """`size` bytes of a file from `offset`, as a request body read in blocks; counted into the progress bar and the
    file's running sha256 (parts go in order, so one pass hashes the whole file)."""

    def __init__(self, path: Path, offset: int, size: int, progress: Progress, digest):
        self.handle = path.open("rb")
        self.handle.seek(offset)
        self.left = self.size = size
        self.progress = progress
        self.digest = digest.copy()  # committed only once the part is stored, so a retried part hashes once
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(min(self.left, CHUNK_SIZE if size is None or size < 0 else size))
        self.left -= len(chunk)
        self.sent += len(chunk)
        self.digest.update(chunk)
        self.progress.update(len(chunk))
        return chunk

    def close(self) -> None:
        self.handle.close()


def upload_file_in_parts(http: Http, run_id: str, local: Path, artifact_path: str, progress: Progress) -> dict:
    """Upload one file in parts straight to the registry's bucket (presigned part URLs), then have the registry
    assemble, hash and record it; the sha256 computed here is sent along and the registry refuses a mismatch.

    A registry that cannot take direct uploads (not on S3, or switched off) answers 409 `direct_transfers_off`: the
    file is then streamed through it as usual, and this Http does not ask again.
    """
    size = local.stat().st_size
    if getattr(http, "direct_uploads_off", False) or size == 0:
        return upload_file(http, run_id, local, artifact_path, progress)
    base = f"/runs/{run_id}/multipart-uploads"
    try:
        upload = http.post(base, {"path": artifact_path, "size": size})
    except RegistryError as exc:
        if exc.code != "direct_transfers_off":
            raise
        http.direct_uploads_off = True
        return upload_file(http, run_id, local, artifact_path, progress)
    digest = hashlib.sha256()
    parts = []
    bucket = requests.Session()  # no registry token may reach the bucket: the URLs carry their own signature
    bucket.trust_env = False
    try:
        for part in upload["parts"]:
            offset = (part["part_number"] - 1) * upload["part_size"]
            length = min(upload["part_size"], size - offset)
            etag, digest = _put_part(http, bucket, part["url"], local, offset, length, progress, digest)
            parts.append({"part_number": part["part_number"], "etag": etag})
        local_sha256 = digest.hexdigest()
        artifact = http.post(
            base + "/complete",
            {"path": upload["path"], "upload_id": upload["upload_id"], "parts": parts, "sha256": local_sha256},
        )
    except BaseException:
        # If this fails too, the bucket's lifecycle rule drops the parts of uploads nobody finished.
        with contextlib.suppress(RegistryError):
            http.post(base + "/abort", {"path": upload["path"], "upload_id": upload["upload_id"]})
        raise
    finally:
        bucket.close()
    if artifact.get("sha256") != local_sha256 or artifact.get("size") != size:
        raise RegistryError(
            None,
            "checksum_mismatch",
            f"The registry stored {artifact_path!r} as {artifact.get('size')} bytes with sha256 "
            f"{artifact.get('sha256')}, but {local} is {size} bytes with sha256 {local_sha256}; upload it again.",
        )
    return artifact


def _put_part(http: Http, bucket: requests.Session, url: str, local: Path, offset: int, length: int, progress, digest):
    """PUT one part, retried like the registry's own calls; (S3's ETag for it, the file's sha256 so far)."""
    for attempt in range(http.retries + 1):
        body = _PartBody(local, offset, length, progress, digest)
        try:
            response = bucket.put(
                url, data=body, timeout=http.timeout, proxies=http.proxies_for(url), verify=http._verify
            )
        except requests.ConnectionError as exc:
            progress.update(-body.sent)
            if attempt == http.retries:
                raise RegistryError(None, "connection_failed", f"Cannot reach the bucket: {exc}") from exc
            time.sleep(backoff(attempt))
            continue
        finally:
            body.close()
        if response.status_code >= 500 and attempt < http.retries:
            progress.update(-body.sent)
            time.sleep(backoff(attempt))
            continue
        if not response.ok:
            text = " ".join(response.text.split())[:300]
            raise RegistryError(response.status_code, "part_upload_failed", f"The bucket refused a part: {text}")
        return response.headers.get("ETag", ""), body.digest
    raise AssertionError("unreachable: the last attempt returns or raises")


def safe_target(dest: Path, artifact_path: str) -> Path:
    """Where an artifact goes under `dest`; a path that would leave `dest` is refused."""
    parts = PurePosixPath(artifact_path).parts
    if not parts or artifact_path.startswith("/") or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise RegistryError(None, "invalid_path", f"Refusing to write the artifact path {artifact_path!r}.")
    return dest.joinpath(*parts)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(http: Http, url: str, target: Path, *, sha256: str, size: int, progress: Progress) -> None:
    """Stream `url` into `target` through a temporary file, resuming with a Range request if the stream breaks."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and target.stat().st_size == size and file_sha256(target) == sha256:
        progress.update(size)  # already there from an earlier pull
        return
    # Not tempfile.mkstemp: its files are private (0600); this one gets the permissions the umask gives.
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with temp.open("xb") as handle:
            digest = _stream_into(http, url, handle, progress)
        got = digest.hexdigest()
        if got != sha256:
            raise RegistryError(
                None,
                "checksum_mismatch",
                f"{target.name}: downloaded bytes have sha256 {got}, the registry lists {sha256}; pull again.",
            )
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _stream_into(http: Http, url: str, handle, progress: Progress):
    digest = hashlib.sha256()
    written = 0
    attempt = 0
    while True:
        headers = {"Range": f"bytes={written}-"} if written else {}
        response = http.request("GET", url, headers=headers, stream=True)
        try:
            if written and response.status_code != 206:  # the range was ignored: start over
                progress.update(-written)
                handle.seek(0)
                handle.truncate()
                digest, written = hashlib.sha256(), 0
            for chunk in response.iter_content(CHUNK_SIZE):
                handle.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                progress.update(len(chunk))
            return digest
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            if attempt >= http.retries:
                raise RegistryError(None, "connection_failed", f"Downloading {url} broke off: {exc}") from exc
        finally:
            response.close()
        time.sleep(backoff(attempt))
        attempt += 1
