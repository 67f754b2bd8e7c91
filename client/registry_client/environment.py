"""What a run records about where it ran: Python, platform, installed packages, git state and entry point.

Everything here is best effort: a missing git, a directory outside a repository or a broken package's metadata give
empty values, never an error, because none of it is worth failing a training job for.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from urllib.parse import urlsplit, urlunsplit

# The server's column sizes (registry/api/schemas.py CodeIn and EnvironmentIn).
_REMOTE_MAX = 1024
_COMMIT_MAX = 64
_BRANCH_MAX = 256
_ENTRY_POINT_MAX = 1024
_PYTHON_MAX = 64
_PLATFORM_MAX = 256
_GIT_TIMEOUT_SECONDS = 5


def environment() -> dict:
    """{"python_version", "platform", "packages": {name: version}} of the running interpreter."""
    return {
        "python_version": platform.python_version()[:_PYTHON_MAX],
        "platform": platform.platform()[:_PLATFORM_MAX],
        "packages": installed_packages(),
    }


def installed_packages() -> dict[str, str]:
    packages: dict[str, str] = {}
    for distribution in metadata.distributions():
        try:
            name = distribution.metadata["Name"]
            version = distribution.version
        except Exception:  # a half-installed package must not stop the run
            continue
        if name and version and name not in packages:
            packages[name] = version
    return dict(sorted(packages.items(), key=lambda item: item[0].lower()))


def code(cwd: str | os.PathLike[str] | None = None) -> dict:
    """Git state of `cwd` (default: the current directory) and the entry point, as the server's CodeIn.

    Outside a git repository, or without git, the git fields are empty and `git_dirty` is None.
    """
    state = {
        "git_remote": "",
        "git_commit": "",
        "git_branch": "",
        "git_dirty": None,
        "entry_point": (sys.argv[0] if sys.argv else "")[:_ENTRY_POINT_MAX],
    }
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return state
    state["git_commit"] = commit[:_COMMIT_MAX]
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or ""
    state["git_branch"] = "" if branch == "HEAD" else branch[:_BRANCH_MAX]  # "HEAD" means a detached head
    state["git_remote"] = strip_credentials(_git(["config", "--get", "remote.origin.url"], cwd) or "")[:_REMOTE_MAX]
    status = _git(["status", "--porcelain"], cwd)
    state["git_dirty"] = None if status is None else bool(status)
    return state


def strip_credentials(url: str) -> str:
    """The remote URL without any user:token@ part, which must never be sent anywhere."""
    if "://" not in url:
        return url  # scp-like git@host:path holds no secret
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _git(args: list[str], cwd: str | os.PathLike[str] | None) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd or os.getcwd(),
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip()
