"""Management commands that work in rounds: once (for cron), or with --loop as a long-running worker that polls every
--interval seconds until SIGTERM or Ctrl-C, letting the item in flight finish. deliver_webhooks and scan_worker."""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

logger = logging.getLogger(__name__)


class PollingCommand(BaseCommand):
    """Subclasses set `doing` ("Delivering webhooks"), `in_flight` ("the delivery") and `items` ("deliveries") and
    define `run_round(limit, stop=None) -> int`, the number of items handled."""

    doing = "Working"
    in_flight = "the item"
    items = "items"

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep going until interrupted.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between polls with --loop.")
        parser.add_argument("--limit", type=int, default=100, help=f"Most {self.items} per round.")

    def run_round(self, limit: int, *, stop=None) -> int:
        raise NotImplementedError

    def handle(self, *args, loop: bool, interval: float, limit: int, **options):
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        if interval < 0:
            raise CommandError("--interval cannot be negative.")
        if not loop:
            self.run_round(limit)
            return
        stop = threading.Event()

        def request_stop(signum, frame):
            self.stdout.write(f"{signal.Signals(signum).name} received; stopping after {self.in_flight} in flight.")
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.stdout.write(f"{self.doing} every {interval:g} s; stop with Ctrl-C or SIGTERM.")
        try:
            while not stop.is_set():
                close_old_connections()  # a worker lives for days: drop connections the database has closed
                try:
                    done = self.run_round(limit, stop=stop.is_set)
                except Exception:  # noqa: BLE001 - the worker outlives a bad round (database down, a bug)
                    logger.exception("%s: round failed; retrying in %s s", self.doing, interval)
                    done = 0
                if done < limit:  # a full round means more may be waiting: go again at once
                    stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Stopped.")
