"""A registered version's signature (its inputs and outputs): checked when given, read from the MLflow MLmodel among
its files when not, and recorded in the audit log when set. The version services call these inside their
transactions; the format itself is registry.lib.signature's."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from registry import rawsql
from registry.audit import services as audit
from registry.audit.models import AuditAction
from registry.catalog import blobs
from registry.catalog.errors import CatalogError
from registry.catalog.models import ArtifactFile, ModelVersion
from registry.lib import signature as signatures

logger = logging.getLogger(__name__)


class SignatureInvalid(CatalogError):
    """A signature that cannot be stored; `field` names where, as the message does."""

    def __init__(self, error: signatures.SignatureError):
        super().__init__(f"Invalid signature at {error.field}: {error.message}", [{"field": error.field}])
        self.field = error.field


def checked_signature(signature: Mapping | None, source: str) -> dict | None:
    try:
        return signatures.normalise(signature, source=source)
    except signatures.SignatureError as exc:
        raise SignatureInvalid(exc) from None


def record_signature(version: ModelVersion, by, signature: dict | None) -> None:
    data = {"inputs": len(signature["inputs"]), "outputs": len(signature["outputs"])} if signature else {}
    audit.record(
        AuditAction.VERSION_SIGNATURE_SET,
        actor=by,
        version=version,
        to_value=(signature or {}).get("source", "removed"),
        data=data,
    )


# What of a version's files the signature is read from: MLflow's MLmodel at the version's root, and the input
# example it names.
MLMODEL_PATH = "MLmodel"


def _read_small(file: ArtifactFile, limit: int) -> bytes | None:
    if file.size > limit:
        return None
    try:
        return b"".join(blobs.artifact_read(file))
    except OSError:
        logger.warning("Could not read %s of version %s", file.path, file.version_id, exc_info=True)
        return None


def read_mlmodel_signature(files: list[ArtifactFile]) -> dict | None:
    """The signature the MLmodel among `files` declares (with its input example when stored too), or None: no
    MLmodel, none declared, or a file that cannot be read or parsed (logged; registration does not fail over it)."""
    by_path = {f.path: f for f in files}
    mlmodel = by_path.get(MLMODEL_PATH)
    if mlmodel is None:
        return None
    text = _read_small(mlmodel, signatures.MLMODEL_MAX)
    if text is None:
        return None
    try:
        document = signatures.read_mlmodel(text)
    except signatures.SignatureError as exc:
        logger.info("Version %s: MLmodel cannot be read (%s)", mlmodel.version_id, exc)
        return None
    if not document.get("signature"):
        return None
    example = None
    example_file = by_path.get(signatures.example_path(document) or "")
    if example_file is not None:
        raw = _read_small(example_file, signatures.EXAMPLE_MAX)
        try:
            example = json.loads(raw) if raw else None
        except ValueError:
            example = None
    try:
        return signatures.from_mlmodel(document, input_example=example)
    except signatures.SignatureError as exc:
        if exc.field.endswith("input_example"):
            return signatures.from_mlmodel(document)
        logger.info("Version %s: MLmodel has no usable signature (%s)", mlmodel.version_id, exc)
        return None


def signature_from_files(version: ModelVersion, files: list[ArtifactFile]) -> None:
    """Store the signature of the version's MLmodel, if it has one (inside the registering transaction). One
    hand-written UPDATE: registration is a hot path, and most MLflow versions carry an MLmodel."""
    found = read_mlmodel_signature(files)
    if found is not None:
        connection = rawsql.connection_for(ModelVersion, write=True)
        rawsql.executemany(
            connection,
            f"UPDATE {rawsql.table(ModelVersion)} SET {rawsql.column(ModelVersion, 'signature')} = %s"
            f" WHERE {rawsql.quote('id')} = %s",
            [[rawsql.adapt(ModelVersion, "signature", found, connection), version.pk]],
        )
        version.signature = found


def file_stored(version: ModelVersion, path: str, by) -> None:
    """After `path` is stored among the version's files: an MLmodel gives the version its signature, unless someone
    set one explicitly."""
    if path != MLMODEL_PATH:
        return
    current = ModelVersion.objects.filter(pk=version.pk).values_list("signature", flat=True).first()
    if current is not None and current.get("source") != "MLmodel":
        return
    signature_from_files(version, version.files())
    if version.signature is not None:
        record_signature(version, by, version.signature)
