"""What a model version's `source` names, as MLflow's create_model_version sends it.

Three kinds, decided from the text alone plus a lookup by primary key (nothing is read from disk or the network):

- **stored**: files this registry stores: a run's artifact folder (`runs:/<run id>/<path>`,
  `mlflow-artifacts:/runs/<run id>/artifacts/<path>` or that URL on this server) or a logged model with a run
  (`models:/<logged model id>`). The version gets the folder's files (same blobs).
- **copy**: another registered version (`models:/<name>/<version>`, `models:/<name>@<alias>`): what
  `copy_model_version` sends. The version gets the original's files and lineage.
- **external**: anything else (`s3://…`, another server's URL, a run this registry has never seen, a logged model
  without files). Recorded as text and never read, fetched, listed or resolved, so none of the path-traversal shapes
  that MLflow's server has had to defend against can reach a file here. Downloads of such a version answer 404
  naming the source; the default policy keeps it out of Production (the "files stored in the registry" gate).

Refused as MLflow refuses them, with MLflow's messages: local paths (this registry has no local artifact folders),
`..` segments, encoded `..`, NUL, and non-normalised paths in any URI.
"""

from __future__ import annotations

import posixpath
import re
import string
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus, urlsplit

from registry.catalog.models import ModelVersion
from registry.lib.paths import PathError, normalise_artifact_path
from registry.lib.references import ReferenceError_, parse_reference
from registry.mlflow_compat.errors import MlflowError, invalid, not_found
from registry.mlflow_compat.models import LoggedModel
from registry.tracking.models import Run

ARTIFACTS_PATH = "/api/2.0/mlflow-artifacts/artifacts/"
LOGGED_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
_LOGGED_MODEL_IN_PATH = re.compile(r"(?:^|/)logged-models/(m-[0-9a-f]{32})(?:/|$)")


@dataclass(frozen=True, slots=True)
class Stored:
    run: Run
    folder: str
    logged_model: LoggedModel | None = None


@dataclass(frozen=True, slots=True)
class Copy:
    version: ModelVersion


@dataclass(frozen=True, slots=True)
class External:
    location: str
    logged_model_id: str = ""


def _message(source: str, rest: str) -> MlflowError:
    return invalid(f"Invalid model version source: '{source}'. {rest}")


def _relative_paths_refused(source: str) -> MlflowError:
    return _message(
        source,
        "If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an "
        "absolute path must be provided without relative path references present. Please provide an absolute path.",
    )


def id_must_match(source: str, name: str) -> MlflowError:
    return _message(source, f"The {name} request parameter must identify the resource that contains the source.")


def is_local(source: str) -> bool:
    """MLflow's is_local_uri: no scheme, `file:` without a remote host, or a drive letter."""
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme == "":
        return True
    if scheme == "file":
        host = parts.hostname
        if host and host not in ("localhost", "127.0.0.1"):
            raise invalid(
                f"{source} is not a valid remote uri. For remote access on windows, please consider using a "
                "different scheme such as SMB (e.g. smb://<hostname>/<path>)."
            )
        return True
    return len(scheme) == 1 and scheme in string.ascii_lowercase


def check_relative_paths(source: str) -> None:
    """MLflow's _validate_non_local_source_contains_relative_paths, without touching the file system: no `..`
    segment (also percent-encoded, however often), no NUL, and an absolute, normalised path."""
    text = source
    while (unquoted := unquote_plus(text)) != text:
        text = unquoted
    path = re.sub(r"/+", "/", urlsplit(text).path.rstrip("/"))
    if "\x00" in path or any(part == ".." for part in text.split("/")):
        raise _relative_paths_refused(source)
    if not path.startswith("/") or posixpath.normpath(path) != path:
        raise _relative_paths_refused(source)


def classify(source: str, *, host: str, user) -> Stored | Copy | External:
    """What `source` names (see the module's docstring); refusals are MLflow's INVALID_PARAMETER_VALUE."""
    if is_local(source):
        raise _message(
            source,
            "To use a local path as a model version source, the run_id request parameter has to be specified and the "
            "local path has to be contained within the artifact directory of the run specified by the run_id. This "
            "registry has no local artifact directories: upload the files to a run and register runs:/<run id>/<path>.",
        )
    check_relative_paths(source)
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    ours = scheme == "mlflow-artifacts" and (not parts.netloc or parts.netloc.lower() == host.lower())
    ours = ours or (
        scheme in ("http", "https") and parts.netloc.lower() == host.lower() and parts.path.startswith(ARTIFACTS_PATH)
    )
    resolved_here = scheme in ("runs", "models") or ours
    if resolved_here and (parts.query or parts.fragment or "?" in source or "#" in source):
        raise _message(source, "Query strings and fragments are not allowed in sources this registry resolves.")
    if scheme == "models":
        return _models_source(source, parts, user)
    if scheme == "runs":
        if parts.netloc:
            raise id_must_match(source, "run_id")
        run_id, _, folder = parts.path.lstrip("/").partition("/")
        return _run_folder(source, run_id, folder)
    if ours:
        path = parts.path[len(ARTIFACTS_PATH) :] if scheme in ("http", "https") else parts.path.lstrip("/")
        head, run_id, rest = (path.split("/", 2) + ["", ""])[:3]
        artifacts, _, folder = rest.partition("/")
        if head == "runs" and artifacts == "artifacts":
            return _run_folder(source, run_id, folder)
    found = _LOGGED_MODEL_IN_PATH.search(parts.path) if ours else None
    return External(source, logged_model_id=found.group(1) if found else "")


def _run_folder(source: str, run_id: str, folder: str) -> Stored | External:
    # With its experiment: registering checks the right on it.
    run = Run.objects.select_related("experiment").filter(pk=run_id.lower()).first() if run_id else None
    if run is None:
        # A run this registry has never seen: the source is recorded, not resolved.
        return External(source)
    try:
        return Stored(run, normalise_artifact_path(unquote(folder), allow_empty=True))
    except PathError as exc:
        raise _message(source, str(exc)) from None


def _models_source(source: str, parts, user) -> Stored | Copy | External:
    if parts.netloc:
        raise _message(source, "Registered model sources must use the active model registry.")
    target = parts.path.lstrip("/")
    if LOGGED_MODEL_ID.fullmatch(target):
        logged = LoggedModel.objects.active().select_related("run").filter(pk=target).first()
        if logged is None:
            raise not_found(f"Logged model with ID '{target}' not found.")
        if logged.run is None:
            return External(source, logged_model_id=logged.pk)
        return Stored(logged.run, logged.artifact_folder, logged)
    try:
        reference = parse_reference(target)
    except ReferenceError_:
        raise id_must_match(source, "model_id") from None
    try:
        return Copy(ModelVersion.objects.resolve(reference, user))
    except ModelVersion.DoesNotExist:
        raise not_found(f"Model Version ({reference}) not found: the source {source!r} names no version.") from None
