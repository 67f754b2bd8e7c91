"""Version registrations in alternating rounds against this checkout and, optionally, another one.

    .venv/bin/python benchmarks/registration.py [--postgres postgres://postgres@127.0.0.1:5432] [--clients 4]
    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/registration.py --baseline /tmp/before [--postgres ...]

On a shared VM whose speed swings within minutes, two figures taken minutes apart do not compare two versions of the
code: this script starts one gunicorn per checkout (each on its own scratch database), then alternates rounds of
registrations between them, so both see the same stretches. Prints every round and the medians. With --clients N,
each round's registrations come from N clients at once (each its own connection), all numbering the same model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

from registry_client.http import Http

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ROOT, database_kind, registry_server, scratch_postgres  # noqa: E402

OCTETS = {"Content-Type": "application/octet-stream"}


class Target:
    """A running server with one model and a run folder to register from."""

    def __init__(self, label: str, url: str, token: str, clients: int):
        self.label = label
        self.clients = [Http(url, token, retries=0, timeout=600) for _ in range(max(clients, 1))]
        self.client = self.clients[0]
        run_id = self.client.post("/runs", {"experiment": "bench", "name": "to-register"})["id"]
        model_file = f"/runs/{run_id}/artifacts/model/model.bin"
        self.client.request("PUT", model_file, headers=OCTETS, body=lambda: b"x" * 1024)
        self.client.post("/models", {"name": "bench-model"})
        self.body = {"run_id": run_id, "artifact_path": "model"}
        self.rates: list[float] = []

    def round(self, count: int, *, keep: bool = True) -> None:
        share = count // len(self.clients)

        def register(client: Http) -> None:
            for _ in range(share):
                client.post("/models/bench-model/versions", self.body)

        threads = [threading.Thread(target=register, args=(client,)) for client in self.clients]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if keep:
            self.rates.append(share * len(self.clients) / (time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout of the registry to alternate with")
    parser.add_argument("--postgres", metavar="SERVER_URL", help="scratch databases on this PostgreSQL server")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--count", type=int, default=200, help="registrations per round")
    parser.add_argument("--clients", type=int, default=1, help="clients registering at once (default: one)")
    args = parser.parse_args()

    checkouts = [("this checkout", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    with ExitStack() as stack:
        targets = []
        for index, (label, root) in enumerate(checkouts):
            database_url = stack.enter_context(
                scratch_postgres(args.postgres, f"registry_bench_registration_{index}")
                if args.postgres
                else nullcontext(None)
            )
            url, token, _env, _pid = stack.enter_context(registry_server(database_url=database_url, root=root))
            targets.append(Target(f"{label} ({root})", url, token, args.clients))
        print(
            f"{database_kind(database_url)}; {args.rounds} rounds of {args.count} registrations"
            f" from {args.clients} client(s), alternating"
        )
        for target in targets:
            target.round(50, keep=False)  # warm the connections and the prepared statements
        for _ in range(args.rounds):
            for target in targets:
                target.round(args.count)
        for target in targets:
            rounds = ", ".join(f"{rate:.0f}" for rate in target.rates)
            print(f"{target.label}: median {statistics.median(target.rates):.1f} registrations/s (rounds: {rounds})")


if __name__ == "__main__":
    main()
