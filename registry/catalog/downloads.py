"""The HTTP answer that carries a stored file's bytes, one for every surface that serves them: the JSON API, MLflow's
artifact proxy and the dashboard. Each view loads the file through its permission helper first, then answers this.

`download(request, artifact)` honours one `Range: bytes=a-b` (206), as MLflow's server does, so a browser or a client
can resume a large model where it broke off; an `If-Range` naming another version of the file gets the whole file.
A range that cannot be served raises RangeNotSatisfiable (416), which each surface words in its own way.

With presigned downloads on (S3), the answer is a redirect to a short-lived URL of the bucket, which sends the bytes
(and honours Range) itself. Otherwise the blob is opened before the answer starts, so a blob the store has lost is a
404 that says so (`BlobMissing`), not a 200 whose body breaks off; a whole file from a folder goes out as a
`FileResponse`, which lets the server use sendfile, and a byte range or an S3 object is streamed.
"""

from __future__ import annotations

import logging
import re

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

from registry.catalog import blobs, transfers
from registry.catalog.errors import BlobMissing
from registry.catalog.models import ArtifactFile
from registry.lib.errors import DomainError
from registry.lib.metrics import ARTIFACTS_MISSING

logger = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(DomainError):
    """A Range header that names no part of the file, or more than one part; `content_range` is the header a 416
    carries (`bytes */SIZE`)."""

    status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, size: int):
        super().__init__(message)
        self.content_range = f"bytes */{size}"


def download(request: HttpRequest, artifact: ArtifactFile) -> HttpResponse:
    """The answer to a GET of `artifact` (loaded through a permission helper): the whole file, or the range asked
    for. Raises RangeNotSatisfiable and BlobMissing."""
    return _file_response(artifact, _requested_range(request, artifact))


def _requested_range(request: HttpRequest, artifact: ArtifactFile) -> tuple[int, int] | None:
    """The first and last byte (inclusive) that `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` asks for; None for the
    whole file (no Range, or an If-Range that is not this file's ETag)."""
    header = request.headers.get("Range", "").strip()
    if not header:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != f'"{artifact.sha256}"':
        return None  # the client holds part of another version of the file (or names a date): start again
    size = artifact.size
    match = _RANGE.match(header)
    if not match or match.groups() == ("", ""):
        raise RangeNotSatisfiable("Send one range as 'Range: bytes=START-END'.", size)
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start > end or start >= size:
        raise RangeNotSatisfiable(f"The range {header!r} is outside the file's {size} bytes.", size)
    return start, end


def _file_response(artifact: ArtifactFile, byte_range: tuple[int, int] | None = None) -> HttpResponse:
    """`artifact`'s bytes as an attachment named after the file: all of them (200), or `byte_range`, first and last
    byte inclusive and within the file (206). Raises BlobMissing when the store has no blob for the row."""
    url = transfers.download_url(artifact)
    if url is not None:
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"  # the URL expires; a cached redirect would outlive it
        response["X-Checksum-Sha256"] = artifact.sha256
        return response
    start, end = byte_range if byte_range is not None else (0, artifact.size - 1)
    try:
        if byte_range is None and getattr(blobs.artifact_storage(), "bucket", None) is None:
            # FileResponse sets Content-Length from the file itself: a blob damaged to another size is sent as it
            # is (the client's sha256 check then fails) rather than promised at the recorded size and cut short.
            response = FileResponse(blobs.artifact_open(artifact), as_attachment=True, filename=artifact.filename)
        else:
            response = StreamingHttpResponse(blobs.artifact_read(artifact, start, end))
            response["Content-Disposition"] = content_disposition_header(True, artifact.filename)
            response["Content-Length"] = str(end - start + 1 if artifact.size else 0)
    except FileNotFoundError:
        logger.error("The artifact store has no blob %s for %s", artifact.storage_key, _described(artifact))
        ARTIFACTS_MISSING.inc()
        raise BlobMissing(
            f"The bytes of {artifact.path!r} are missing from the artifact store; an administrator can restore them "
            "from a backup, or upload the file again."
        ) from None
    response["Content-Type"] = artifact.content_type or "application/octet-stream"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = f'"{artifact.sha256}"'
    response["X-Checksum-Sha256"] = artifact.sha256
    if byte_range is not None:
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{artifact.size}"
    return response


def _described(artifact: ArtifactFile) -> str:
    if artifact.run_id:
        return f"{artifact.path!r} of run {artifact.run_id}"
    return f"{artifact.path!r} of version id {artifact.version_id}"
