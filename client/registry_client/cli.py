"""The `registry` command: list models and versions, log a run, upload artifacts, register and pull versions.

Stage changes: `promote` asks for one (or makes it now with --direct), `approvals` lists what waits, `approve` and
`reject` decide, `rollback` puts the previous Production version back.

Access: `access` shows who may do what with a model (or, with --experiment, an experiment), `grant` and `revoke`
change a user's or a group's grant, `set-access` sets everyone's level or hands the object over.

The registry's address and token come from REGISTRY_URL and REGISTRY_TOKEN, or from --url and --token. Expected
failures (the server refusing, a missing file, no connection) end with a one-line message and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from registry_client import __version__
from registry_client.client import Registry
from registry_client.errors import RegistryError

METRIC_COLUMNS = 4


class UsageError(ValueError):
    """A command line that cannot be acted on; reported like argparse's own errors (exit status 2)."""


# --- Formatting -----------------------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, the header first."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in [headers, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def when(text: str | None) -> str:
    if not text:
        return "-"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def number(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value  # "NaN", "Infinity", "-Infinity"
    return f"{value:.4g}"


def numbers(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values) or "-"


# --- Parsing --------------------------------------------------------------------------------------------------------


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def metric_point(text: str) -> tuple[str, float, int]:
    """`loss=0.25` or `loss=0.25@10` (value at step 10); nan and inf are accepted."""
    key, raw = key_value(text)
    value, sep, step = raw.rpartition("@") if "@" in raw else (raw, "", "")
    try:
        return key, float(value), int(step) if sep else 0
    except ValueError:
        raise UsageError(f"expected KEY=NUMBER or KEY=NUMBER@STEP, got {text!r}") from None


# --- Commands -------------------------------------------------------------------------------------------------------


def cmd_models(registry: Registry, args: argparse.Namespace) -> None:
    models = registry.models()
    if not models:
        print("No models.", file=sys.stderr)
        return
    rows = []
    for model in models:
        by_stage = model.get("versions_by_stage") or {}
        aliases = ", ".join(f"{a['alias']}={a['version']}" for a in model.get("aliases", [])) or "-"
        latest = model.get("latest_version")
        rows.append(
            [
                model["name"],
                "-" if latest is None else str(latest),
                numbers(by_stage.get("Production", [])),
                numbers(by_stage.get("Staging", [])),
                aliases,
                when(model.get("updated_at")),
            ]
        )
    print(table(["NAME", "LATEST", "PRODUCTION", "STAGING", "ALIASES", "UPDATED"], rows))


def cmd_versions(registry: Registry, args: argparse.Namespace) -> None:
    versions = registry.versions(args.name, filter=args.filter, order_by=args.order_by)
    if not versions:
        print(f"No versions of {args.name}" + (" match." if args.filter else "."), file=sys.stderr)
        return
    keys = _metric_columns(versions, args.order_by or [])
    rows = [
        [
            str(v["version"]),
            v["stage"],
            ", ".join(v.get("aliases", [])) or "-",
            (v.get("run_id") or "-")[:12],
            when(v.get("created_at")),
            *(number(v.get("metrics", {}).get(key)) for key in keys),
        ]
        for v in versions
    ]
    print(table(["VERSION", "STAGE", "ALIASES", "RUN", "CREATED", *keys], rows))


def _metric_columns(versions: list[dict], order_by: Sequence[str]) -> list[str]:
    """Metrics named in --order-by first, then the ones most versions have, by name; at most a few."""
    wanted = []
    for text in order_by:
        field = text.split()[0] if text.split() else ""
        if field.startswith("metrics."):
            wanted.append(field[len("metrics.") :].strip('`"'))
    counts = Counter(key for v in versions for key in v.get("metrics", {}))
    ranked = sorted(counts, key=lambda key: (-counts[key], key))
    keys = list(dict.fromkeys([k for k in wanted if k in counts] + ranked))
    return keys[:METRIC_COLUMNS]


def cmd_log(registry: Registry, args: argparse.Namespace) -> None:
    params = dict(key_value(p) for p in args.param)
    tags = dict(key_value(t) for t in args.tag)
    points = [metric_point(m) for m in args.metric]
    for path in [*args.artifact, *args.dataset]:
        if not Path(path).exists():
            raise FileNotFoundError(f"No such file or directory: {path}")
    with registry.start_run(experiment=args.experiment, name=args.name, tags=tags) as run:
        run.log_params(params)
        for key, value, step in points:
            run.log_metric(key, value, step=step)
        for csv_path in args.dataset:
            run.log_dataset(csv_path, name=Path(csv_path).stem, context=args.dataset_context)
        for path in args.artifact:
            run.log_artifact(path, args.artifact_path)
    print(run.id)


def cmd_push(registry: Registry, args: argparse.Namespace) -> None:
    if not Path(args.path).exists():
        raise FileNotFoundError(f"No such file or directory: {args.path}")
    stored = registry.run(args.run_id).log_artifact(args.path, args.artifact_path)
    for artifact in stored:
        print(artifact["path"])


def cmd_register(registry: Registry, args: argparse.Namespace) -> None:
    version = registry.register_model(
        args.name, run_id=args.run, artifact_path=args.artifact_path, description=args.description
    )
    print(version["version"])


def cmd_pull(registry: Registry, args: argparse.Namespace) -> None:
    print(registry.pull(args.ref, args.output, allow_unsafe=args.allow_unsafe))


def cmd_promote(registry: Registry, args: argparse.Namespace) -> None:
    if args.direct:
        version = registry.set_stage(
            args.name,
            args.version,
            args.stage,
            comment=args.comment,
            archive_existing=args.archive_existing,
            override_reason=args.override_reason,
        )
        print(f"{version['model']} version {version['version']} is now in {version['stage']}.")
        return
    if args.override_reason:
        raise UsageError("--override-reason goes with --direct (or with `registry approve`)")
    request = registry.request_transition(
        args.name, args.version, args.stage, comment=args.comment, archive_existing=args.archive_existing
    )
    print(
        f"Request {request['id']}: {request['model']} version {request['version']} "
        f"{request['from_stage']} -> {request['to_stage']}, pending approval."
    )
    print(f"Approvals: {request['url']}")


def _gates(request: dict) -> str:
    gates = (request.get("evidence") or {}).get("gates") or []
    if not gates:
        return "-"
    passed = sum(1 for gate in gates if gate.get("passed"))
    return f"{passed}/{len(gates)} pass"


def cmd_approvals(registry: Registry, args: argparse.Namespace) -> None:
    requests = registry.pending(args.model)
    if not requests:
        print("No pending requests.", file=sys.stderr)
        return
    rows = [
        [
            str(r["id"]),
            r["model"],
            str(r["version"]),
            f"{r['from_stage']} -> {r['to_stage']}",
            r.get("requested_by") or "-",
            when(r.get("created_at")),
            _gates(r),
            " ".join((r.get("comment") or "-").split())[:60],
        ]
        for r in requests
    ]
    print(table(["ID", "MODEL", "VERSION", "MOVE", "REQUESTED BY", "CREATED", "GATES", "COMMENT"], rows))


def cmd_approve(registry: Registry, args: argparse.Namespace) -> None:
    request = registry.approve(args.request_id, comment=args.comment, override_reason=args.override_reason)
    print(
        f"Approved request {request['id']}: {request['model']} version {request['version']} "
        f"is now in {request['to_stage']}."
    )


def cmd_reject(registry: Registry, args: argparse.Namespace) -> None:
    request = registry.reject(args.request_id, comment=args.comment)
    print(f"Rejected request {request['id']}: {request['model']} version {request['version']} stays in place.")


def cmd_rollback(registry: Registry, args: argparse.Namespace) -> None:
    version = registry.rollback(args.name, comment=args.comment)
    print(f"Rolled back {version['model']}: version {version['version']} is in Production again.")


def _target(args: argparse.Namespace) -> dict:
    return {"experiment": args.experiment}


def cmd_access(registry: Registry, args: argparse.Namespace) -> None:
    access = registry.access(args.name, **_target(args))
    everyone = access["default_level"] or f"{access['registry_default']} (the registry's default)"
    print(f"Owner: {access['owner'] or '-'}    Everyone signed in: {everyone}    You: {access['your_level']}")
    rows = [
        [
            f"user {g['user']}" if g["user"] else f"group {g['group']}",
            g["level"],
            ",".join(g.get("request_stages") or []) or "-",
            ",".join(g.get("approve_stages") or []) or "-",
            g.get("granted_by") or "-",
        ]
        for g in access["grants"]
    ]
    if rows:
        print(table(["WHO", "LEVEL", "MAY REQUEST", "MAY APPROVE", "GRANTED BY"], rows))
    else:
        print("No grants.", file=sys.stderr)


def _grantee(args: argparse.Namespace) -> dict:
    if bool(args.user) == bool(args.group):
        raise UsageError("name either --user or --group")
    return {"user": args.user} if args.user else {"group": args.group}


def cmd_grant(registry: Registry, args: argparse.Namespace) -> None:
    if args.experiment and (args.request or args.approve):
        raise UsageError("--request and --approve are for models, not experiments")
    grant = registry.grant(
        args.name,
        args.level,
        request_stages=args.request or [],
        approve_stages=args.approve or [],
        **_grantee(args),
        **_target(args),
    )
    who = f"user {grant['user']}" if grant["user"] else f"group {grant['group']}"
    print(f"{who} now has {grant['level']} on {args.name}.")


def cmd_revoke(registry: Registry, args: argparse.Namespace) -> None:
    grantee = _grantee(args)
    registry.revoke(args.name, **grantee, **_target(args))
    print(f"Revoked the grant of {next(iter(grantee))} {next(iter(grantee.values()))} on {args.name}.")


def cmd_set_access(registry: Registry, args: argparse.Namespace) -> None:
    if not (args.everyone or args.owner):
        raise UsageError("give --everyone LEVEL and/or --owner USER")
    access = registry.set_access(args.name, everyone=args.everyone, owner=args.owner, **_target(args))
    print(f"Owner: {access['owner'] or '-'}    Everyone signed in: {access['default_level'] or 'the registry default'}")


# --- Entry point ----------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # Connection options are accepted before or after the command name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="registry address (default: $REGISTRY_URL)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (default: $REGISTRY_TOKEN)")
    common.add_argument(
        "--no-progress", action="store_true", default=argparse.SUPPRESS, help="never draw progress bars"
    )

    parser = argparse.ArgumentParser(prog="registry", description=__doc__.split("\n")[0], parents=[common])
    parser.add_argument("--version", action="version", version=f"registry-client {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", parents=[common], help="list registered models")
    models.set_defaults(handler=cmd_models)

    versions = commands.add_parser("versions", parents=[common], help="list a model's versions")
    versions.add_argument("name")
    versions.add_argument("--filter", help="e.g. \"metrics.auc > 0.9 AND params.max_depth = '6'\"")
    versions.add_argument("--order-by", action="append", help="e.g. 'metrics.auc DESC' (repeatable)")
    versions.set_defaults(handler=cmd_versions)

    log = commands.add_parser("log", parents=[common], help="log a finished run; prints its id")
    log.add_argument("--experiment", required=True)
    log.add_argument("--name", default="")
    log.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    log.add_argument("--metric", action="append", default=[], metavar="KEY=VALUE[@STEP]")
    log.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    log.add_argument("--artifact", action="append", default=[], metavar="PATH", help="file or directory")
    log.add_argument("--artifact-path", default=None, help="folder of the run that receives the artifacts")
    log.add_argument("--dataset", action="append", default=[], metavar="CSV", help="named after the file")
    log.add_argument("--dataset-context", default="training", metavar="CONTEXT")
    log.set_defaults(handler=cmd_log)

    push = commands.add_parser("push", parents=[common], help="upload a file or directory to a run")
    push.add_argument("run_id", metavar="RUN_ID")
    push.add_argument("path", metavar="PATH")
    push.add_argument("--artifact-path", default=None)
    push.set_defaults(handler=cmd_push)

    register = commands.add_parser("register", parents=[common], help="register a run's folder as a new version")
    register.add_argument("name", metavar="NAME")
    register.add_argument("--run", required=True, metavar="RUN_ID")
    register.add_argument("--artifact-path", default="model")
    register.add_argument("--description", default="")
    register.set_defaults(handler=cmd_register)

    pull = commands.add_parser("pull", parents=[common], help="download a version's files: NAME/3, NAME@ALIAS")
    pull.add_argument("ref", metavar="REF")
    pull.add_argument("-o", "--output", default=None, metavar="DIR", help="default: ./NAME-vVERSION")
    pull.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="download a version even though the registry's file safety scan found an unsafe file",
    )
    pull.set_defaults(handler=cmd_pull)

    promote = commands.add_parser(
        "promote", parents=[common], help="request a stage change (or make it now with --direct)"
    )
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", metavar="VERSION", type=int)
    promote.add_argument("stage", metavar="STAGE", help="Staging, Production, Archived or None")
    promote.add_argument("--comment", default="", help="why; the approver reads it")
    promote.add_argument(
        "--archive-existing", action="store_true", help="archive the version that holds the stage when this moves"
    )
    promote.add_argument("--direct", action="store_true", help="move now, where the policy allows it")
    promote.add_argument("--override-reason", default="", help="with --direct, superusers: pass failing gates")
    promote.set_defaults(handler=cmd_promote)

    approvals = commands.add_parser("approvals", parents=[common], help="list pending stage change requests")
    approvals.add_argument("--model", default=None, metavar="NAME", help="only this model's requests")
    approvals.set_defaults(handler=cmd_approvals)

    approve = commands.add_parser("approve", parents=[common], help="approve a pending request: the version moves")
    approve.add_argument("request_id", metavar="ID", type=int)
    approve.add_argument("--comment", default="")
    approve.add_argument("--override-reason", default="", help="superusers: approve although gates fail")
    approve.set_defaults(handler=cmd_approve)

    reject = commands.add_parser("reject", parents=[common], help="reject a pending request")
    reject.add_argument("request_id", metavar="ID", type=int)
    reject.add_argument("--comment", default="")
    reject.set_defaults(handler=cmd_reject)

    rollback = commands.add_parser(
        "rollback", parents=[common], help="put the previous Production version back, archiving the current one"
    )
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument("--comment", default="")
    rollback.set_defaults(handler=cmd_rollback)

    def access_target(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("name", metavar="NAME", help="a model (or, with --experiment, an experiment's name or id)")
        sub.add_argument("--experiment", action="store_true", help="NAME is an experiment")

    access = commands.add_parser("access", parents=[common], help="show who may do what with a model or experiment")
    access_target(access)
    access.set_defaults(handler=cmd_access)

    grant = commands.add_parser("grant", parents=[common], help="give a user or group access (needs MANAGE)")
    access_target(grant)
    grant.add_argument("--user", default=None)
    grant.add_argument("--group", default=None)
    grant.add_argument("--level", required=True, type=str.upper, choices=["READ", "EDIT", "MANAGE"])
    grant.add_argument("--request", action="append", metavar="STAGE", help="models: a stage they may request")
    grant.add_argument("--approve", action="append", metavar="STAGE", help="models: a stage they may approve")
    grant.set_defaults(handler=cmd_grant)

    revoke = commands.add_parser("revoke", parents=[common], help="take a user's or group's grant away")
    access_target(revoke)
    revoke.add_argument("--user", default=None)
    revoke.add_argument("--group", default=None)
    revoke.set_defaults(handler=cmd_revoke)

    set_access = commands.add_parser(
        "set-access", parents=[common], help="set everyone's level or hand over a model or experiment"
    )
    access_target(set_access)
    set_access.add_argument(
        "--everyone", type=str.upper, choices=["NONE", "READ", "EDIT", "DEFAULT"], help="NONE makes it private"
    )
    set_access.add_argument("--owner", default=None, metavar="USER")
    set_access.set_defaults(handler=cmd_set_access)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    url = getattr(args, "url", None) or os.environ.get("REGISTRY_URL", "")
    token = getattr(args, "token", None) or os.environ.get("REGISTRY_TOKEN", "")
    if not url:
        parser.error("set REGISTRY_URL or pass --url")
    try:
        registry = Registry(url, token or None, progress=False if getattr(args, "no_progress", False) else None)
        args.handler(registry, args)
    except UsageError as exc:
        parser.error(str(exc))
    except (RegistryError, OSError, ValueError) as exc:
        print(f"registry: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("registry: interrupted", file=sys.stderr)
        return 130
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
