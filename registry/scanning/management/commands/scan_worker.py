"""Scan the files waiting for a verdict: once (for cron), or with --loop as a long-running worker."""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from registry.scanning import services

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Queue again the verdicts of an older scanner version, scan every pending file, print a summary and exit; "
        "with --loop, keep going every --interval seconds until SIGTERM or Ctrl-C (the scan in flight finishes first)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep scanning until interrupted.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between polls with --loop.")
        parser.add_argument("--limit", type=int, default=100, help="Most files scanned per round.")

    def handle(self, *args, loop: bool, interval: float, limit: int, **options):
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        if interval < 0:
            raise CommandError("--interval cannot be negative.")
        if not loop:
            self._round(limit)
            return
        stop = threading.Event()

        def request_stop(signum, frame):
            self.stdout.write(f"{signal.Signals(signum).name} received; stopping after the scan in flight.")
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.stdout.write(f"Scanning pending files every {interval:g} s; stop with Ctrl-C or SIGTERM.")
        try:
            while not stop.is_set():
                close_old_connections()
                try:
                    done = self._round(limit, stop=stop.is_set)
                except Exception:  # noqa: BLE001 - the worker outlives a bad round (database down, a bug)
                    logger.exception("Scan round failed; retrying in %s s", interval)
                    done = 0
                if done < limit:
                    stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Stopped.")

    def _round(self, limit: int, *, stop=None) -> int:
        outdated = services.queue_outdated()
        done = services.scan_pending(limit, stop=stop)
        if done or outdated:
            self.stdout.write(f"Scanned {done} file(s); {outdated} verdict(s) of an older scanner queued again.")
        return done
