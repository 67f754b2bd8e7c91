"""`Registry`: the entry point of the client. Start runs, look up models and versions, move aliases, pull models,
request and approve stage changes, and manage who may do what."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from registry_client import environment, rules, transfer
from registry_client.checks import checked, checked_tags
from registry_client.errors import RegistryError
from registry_client.http import Http, quote_path
from registry_client.progress import Progress, wanted
from registry_client.run import Run
from registry_client.signature import as_signature


def _name(value: str) -> str:
    return quote(value, safe="")


class Registry:
    """A connection to the registry at `url` with an API token (create one on your profile page).

    Errors from the server are raised as `RegistryError`. Connection failures and 502/503/504 answers are retried
    with backoff (`retries` times); a 4xx never is. `progress` draws transfer progress on stderr: True always,
    False never, None (the default) when stderr is a terminal. Files of `multipart_threshold` bytes or more (64 MiB)
    are uploaded in parts straight to the registry's bucket when it offers that, else streamed through it.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 30,
        retries: int = 4,
        progress: bool | None = None,
        multipart_threshold: int | None = transfer.MULTIPART_THRESHOLD,
    ):
        self.http = Http(url, token, timeout=timeout, retries=retries)
        self.progress = progress
        # Files of at least this many bytes go to the bucket in parts when the registry offers it (S3 storage with
        # multipart uploads on); None streams every file through the registry.
        self.multipart_threshold = multipart_threshold

    @classmethod
    def from_env(cls, **kwargs: Any) -> Registry:
        """A Registry for `REGISTRY_URL` and `REGISTRY_TOKEN`; keyword arguments go to the constructor."""
        url = os.environ.get("REGISTRY_URL", "")
        if not url:
            raise ValueError("Set REGISTRY_URL to the registry's address, e.g. https://registry.example.com.")
        return cls(url, os.environ.get("REGISTRY_TOKEN") or None, **kwargs)

    @property
    def url(self) -> str:
        return self.http.url

    def __repr__(self) -> str:
        return f"<Registry {self.url}>"

    # --- Runs -------------------------------------------------------------------------------------------------------

    def start_run(
        self,
        experiment: str | None = None,
        name: str = "",
        tags: Mapping[str, str] | None = None,
        *,
        image: str | None = None,
    ) -> Run:
        """Create a run in `experiment` (created if missing; the default experiment if None) and return it.

        The run records this interpreter's Python version, platform and installed packages, the git state of the
        current directory and the entry point (`sys.argv[0]`). `image` (default: `REGISTRY_IMAGE`) names the
        container image it runs in. Use it as a context manager so that it ends with the right status.
        """
        payload = {
            "experiment": experiment,
            "name": name,
            "start_time": datetime.now(UTC).isoformat(),
            "code": environment.code(),
            "environment": environment.environment(),
            "image": os.environ.get("REGISTRY_IMAGE", "") if image is None else image,
            "tags": checked_tags(tags),
        }
        return Run(self, self.http.post("/runs", payload))

    def run(self, run_id: str) -> Run:
        """A handle on an existing run, to log more to it (it is not ended unless you end it)."""
        return Run(self, self.get_run(run_id))

    def get_run(self, run_id: str) -> dict:
        """The run with its params, latest metrics, inputs and environment."""
        return self.http.get(f"/runs/{_name(run_id)}")

    def search_runs(
        self,
        experiment: str | None = None,
        filter: str | None = None,
        order_by: str | Sequence[str] | None = None,
        status: str | None = None,
        max_results: int | None = None,
    ) -> list[dict]:
        """Runs matching `filter` (e.g. "metrics.f1 > 0.9 AND params.optimizer = 'adam'"), newest first unless
        `order_by` (e.g. "metrics.f1 DESC") says otherwise."""
        params: dict[str, Any] = {
            "experiment": experiment or "",
            "filter": filter or "",
            "status": status or "",
            "order_by": _as_list(order_by),
        }
        return self.http.pages("/runs", params, limit=max_results)

    # --- Models, versions, aliases ----------------------------------------------------------------------------------

    def models(self) -> list[dict]:
        """Every registered model, by name, with its latest version, staged versions and aliases."""
        return self.http.pages("/models")

    def create_model(self, name: str, description: str = "", tags: Mapping[str, str] | None = None) -> dict:
        """Register a model name; RegistryError 409 `already_exists` if it is taken (names are unique ignoring case),
        400 before sending if it breaks the naming rule (registry_client.rules)."""
        checked(rules.check_model_name, name)
        return self.http.post("/models", {"name": name, "description": description, "tags": checked_tags(tags)})

    def versions(self, name: str, filter: str | None = None, order_by: str | Sequence[str] | None = None) -> list[dict]:
        """The versions of model `name`, newest first unless `order_by` says otherwise; `filter` is a search over
        their runs, e.g. "metrics.auc > 0.9"."""
        params = {"filter": filter or "", "order_by": _as_list(order_by)}
        return self.http.pages(f"/models/{_name(name)}/versions", params)

    def register_model(
        self,
        name: str,
        *,
        run_id: str,
        artifact_path: str = "model",
        description: str = "",
        tags: Mapping[str, str] | None = None,
        signature: Any = None,
        input_example: Any = None,
    ) -> dict:
        """Make the files of run `run_id` under `artifact_path` the next version of `name`, creating the model if
        needed. Returns the version (with "version" and "artifacts").

        `signature` is a dict (`{"inputs": [{"name", "type"}], "outputs": [...]}`), or a pandas DataFrame or numpy
        array to infer it from (a pair `(input, output)` for both sides); without it, an MLmodel file in the folder
        gives it. `input_example` replaces the inferred example."""
        checked(rules.check_model_name, name)
        checked(rules.check_artifact_path, artifact_path, folder=True)
        tags = checked_tags(tags)
        try:
            self.create_model(name)
        except RegistryError as exc:
            if exc.code != "already_exists":
                raise
        payload = {
            "run_id": run_id,
            "artifact_path": artifact_path,
            "description": description,
            "tags": tags,
        }
        inferred = as_signature(signature, input_example)
        if inferred is not None:
            payload["signature"] = inferred
        return self.http.post(f"/models/{_name(name)}/versions", payload)

    def set_alias(self, name: str, alias: str, version: int) -> dict:
        """Point `name@alias` at `version` (creating the alias or moving it)."""
        checked(rules.check_alias, alias)
        return self.http.put(f"/models/{_name(name)}/aliases/{_name(alias)}", {"version": int(version)})

    def resolve(self, ref: str) -> dict:
        """The version a reference names (`name/3`, `name@champion`, `name@production`, `name@latest`), with its
        files (path, size, sha256, url)."""
        return self.http.get("/resolve", {"ref": ref})

    def pull(
        self,
        ref: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        progress: bool | None = None,
        allow_unsafe: bool = False,
    ) -> Path:
        """Download the files of the version `ref` names into `dest` (default `./<name>-v<version>`); return it.

        Each file is streamed to a temporary file, checked against its sha256 and renamed into place, so `dest` never
        holds a partial file; files already present with the right checksum are not downloaded again.

        A version whose file safety scan found an unsafe file (a pickle that calls os.system, a Keras Lambda layer)
        is refused before anything is downloaded, unless `allow_unsafe` is set.
        """
        version = self.resolve(ref)
        scan = version.get("scan") or {}
        if scan.get("verdict") == "unsafe" and not allow_unsafe:
            findings = [
                {"field": f["path"], "message": "; ".join(f.get("findings") or [])}
                for f in scan.get("files", [])
                if f.get("verdict") == "unsafe"
            ]
            raise RegistryError(
                None,
                "unsafe",
                f"{version['model']}/{version['version']} has files the registry's safety scan found unsafe to load; "
                "nothing was downloaded (pass allow_unsafe=True, or --allow-unsafe, to download it anyway).",
                findings,
            )
        target = Path(dest) if dest is not None else Path(f"{version['model']}-v{version['version']}")
        files = [(transfer.safe_target(target, a["path"]), a) for a in version["artifacts"]]
        target.mkdir(parents=True, exist_ok=True)
        enabled = wanted(self.progress if progress is None else progress)
        total = sum(a["size"] for _, a in files)
        # Download paths are built from the API's own routes rather than taken from each file's `url`, which is
        # server-relative and would be wrong behind a proxy that serves the API under a path prefix.
        base = f"/models/{_name(version['model'])}/versions/{version['version']}/artifacts/"
        with Progress(total, f"Pulling {version['model']}/{version['version']}", enabled=enabled) as bar:
            for path, artifact in files:
                transfer.download_file(
                    self.http,
                    base + quote_path(artifact["path"]),
                    path,
                    sha256=artifact["sha256"],
                    size=artifact["size"],
                    progress=bar,
                )
        return target

    # --- Governance: stage requests, approvals, timeline, rollback --------------------------------------------------

    def request_transition(
        self, name: str, version: int, stage: str, *, comment: str = "", archive_existing: bool = False
    ) -> dict:
        """Ask for version `version` of `name` to move to `stage`; an approver decides. Returns the request (with
        "id", "status", the frozen "evidence" and "url", its place on the Approvals page)."""
        payload = {"to_stage": stage, "comment": comment, "archive_existing": bool(archive_existing)}
        return self.http.post(f"/models/{_name(name)}/versions/{int(version)}/transition-requests", payload)

    def transition_request(self, request_id: int) -> dict:
        """One transition request, whatever its status."""
        return self.http.get(f"/transition-requests/{int(request_id)}")

    def pending(self, name: str | None = None, *, status: str = "pending") -> list[dict]:
        """Transition requests waiting for a decision (of model `name` only, if given), newest first; `status`
        ("approved", "rejected", "cancelled", "all") lists others."""
        return self.http.pages("/transition-requests", {"status": status, "model": name or ""})

    def approve(self, request_id: int, *, comment: str = "", override_reason: str = "") -> dict:
        """Approve a pending request: the version moves now. RegistryError 409 `already_decided` if someone decided
        first, 409 `gates_failed` (failing gates in `details`) unless a superuser gives `override_reason`."""
        payload = {"comment": comment, "override_reason": override_reason}
        return self.http.post(f"/transition-requests/{int(request_id)}/approve", payload)

    def reject(self, request_id: int, *, comment: str = "") -> dict:
        return self.http.post(f"/transition-requests/{int(request_id)}/reject", {"comment": comment})

    def cancel(self, request_id: int, *, comment: str = "") -> dict:
        """Withdraw your own pending request."""
        return self.http.post(f"/transition-requests/{int(request_id)}/cancel", {"comment": comment})

    def set_stage(
        self,
        name: str,
        version: int,
        stage: str,
        *,
        comment: str = "",
        archive_existing: bool = False,
        override_reason: str = "",
    ) -> dict:
        """Move a version now, without a request, where the policy lets you (RegistryError 403 where it needs an
        approved request). Returns the version."""
        payload = {
            "to_stage": stage,
            "comment": comment,
            "archive_existing": bool(archive_existing),
            "override_reason": override_reason,
        }
        return self.http.post(f"/models/{_name(name)}/versions/{int(version)}/stage", payload)

    def timeline(self, name: str, stage: str = "Production") -> list[dict]:
        """Which version held `stage` from when to when, oldest first: [{"version", "from", "to"}]; "to" is None
        while the version still holds it. Times are ISO 8601 strings."""
        return self.http.get(f"/models/{_name(name)}/timeline", {"stage": stage})["intervals"]

    def stage_at(self, name: str, at: datetime | str, stage: str = "Production") -> list[int]:
        """The versions that held `stage` at `at` (a datetime, or an ISO 8601 string; naive means UTC)."""
        moment = at.isoformat() if isinstance(at, datetime) else str(at)
        return self.http.get(f"/models/{_name(name)}/stage-at", {"stage": stage, "at": moment})["versions"]

    def rollback(self, name: str, *, comment: str = "") -> dict:
        """Put the previous Production version back and archive the current one; returns the restored version."""
        return self.http.post(f"/models/{_name(name)}/rollback", {"comment": comment})

    def audit(self, name: str, *, limit: int | None = None) -> list[dict]:
        """The model's audit log, newest first (all of it, or the newest `limit` events)."""
        return self.http.pages(f"/models/{_name(name)}/audit", limit=limit)

    def registry_audit(self, *, limit: int | None = None, **filters: str) -> list[dict]:
        """The registry's audit log, newest first, filtered by model, experiment, actor, action or since."""
        query = {key: value for key, value in filters.items() if value}
        return self.http.pages("/audit", query, limit=limit)

    # --- Access -----------------------------------------------------------------------------------------------------

    def access(self, name: str, *, experiment: bool = False) -> dict:
        """Who may do what with a model (or, with experiment=True, an experiment named or numbered `name`): its
        owner, everyone's level, the grants, and your own level."""
        return self.http.get(f"{_access_path(name, experiment)}")

    def grant(
        self,
        name: str,
        level: str,
        *,
        user: str | None = None,
        group: str | None = None,
        request_stages: Sequence[str] = (),
        approve_stages: Sequence[str] = (),
        experiment: bool = False,
    ) -> dict:
        """Give a user or a group READ, EDIT or MANAGE on a model (with the stages they may request and approve) or
        an experiment; replaces the grant they had. Needs MANAGE."""
        body = {"level": level.upper(), "request_stages": list(request_stages), "approve_stages": list(approve_stages)}
        return self.http.put(_grantee_path(name, user, group, experiment), body)

    def revoke(self, name: str, *, user: str | None = None, group: str | None = None, experiment: bool = False) -> None:
        """Take a user's or a group's grant away. Needs MANAGE."""
        self.http.delete(_grantee_path(name, user, group, experiment))

    def set_access(
        self, name: str, *, everyone: str | None = None, owner: str | None = None, experiment: bool = False
    ) -> dict:
        """Set everyone's level (NONE, READ, EDIT or DEFAULT for the registry's) or hand the object over to `owner`
        (you keep MANAGE through a grant). Needs MANAGE."""
        body = {key: value for key, value in {"default_level": everyone, "owner": owner}.items() if value}
        return self.http.patch(_access_path(name, experiment), body)


def _access_path(name: str, experiment: bool) -> str:
    return f"/{'experiments' if experiment else 'models'}/{_name(str(name))}/access"


def _grantee_path(name: str, user: str | None, group: str | None, experiment: bool) -> str:
    if (user is None) == (group is None):
        raise ValueError("Name either a user or a group.")
    kind, who = ("users", user) if user is not None else ("groups", group)
    return f"{_access_path(name, experiment)}/{kind}/{_name(who)}"


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)
