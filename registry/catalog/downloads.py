"""The HTTP answer that carries a stored file's bytes, one for every surface that serves them: the JSON API, MLflow's
artifact proxy and the dashboard. Each view loads the file through its permission helper first, then answers this.

With presigned downloads on (S3), the answer is a redirect to a short-lived URL of the bucket, which sends the bytes
(and honours Range) itself. Otherwise the blob is opened before the answer starts, so a blob the store has lost is a
404 that says so (`BlobMissing`), not a 200 whose body breaks off; a whole file from a folder goes out as a
`FileResponse`, which lets the server use sendfile, and a byte range or an S3 object is streamed.
"""

from __future__ import annotations

import logging

from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

from registry.catalog import blobs, transfers
from registry.catalog.errors import BlobMissing
from registry.catalog.models import ArtifactFile
from registry.lib.metrics import ARTIFACTS_MISSING

logger = logging.getLogger(__name__)


def file_response(artifact: ArtifactFile, byte_range: tuple[int, int] | None = None) -> HttpResponse:
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
