"""The catalog's refusals: each says what to fix, and the surfaces translate them by kind (registry.lib.errors)."""

from __future__ import annotations

from registry.lib import errors
from registry.lib.errors import Invalid


class CatalogError(Invalid):
    """Input the catalog refuses; the message says what to fix."""


class AlreadyExists(CatalogError, errors.AlreadyExists):
    pass


class InvalidPath(CatalogError):
    """An artifact path that breaks registry.lib.paths: the code every route answers for it."""

    code = "invalid_path"


class NoSuchFolder(CatalogError, errors.NotFound):
    """The run has no files under the folder named: the folder is what is missing (404)."""


class ArtifactTooLarge(CatalogError):
    status = 413
    code = "payload_too_large"


class ChecksumMismatch(CatalogError):
    status = 422
    code = "checksum_mismatch"


class BlobMissing(errors.NotFound):
    """A file row whose bytes the artifact store no longer holds (deleted by hand, a bucket restored from an older
    copy): the file cannot be served. Not the caller's doing, so not a CatalogError; the download views log it."""

    code = "artifact_missing"
