"""Send due webhook deliveries: once (for cron), or with --loop as a long-running worker."""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from registry.audit import webhooks

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Send the webhook deliveries that are due, print a summary and exit; with --loop, keep going every "
        "--interval seconds until SIGTERM or Ctrl-C (the delivery in flight finishes first)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep delivering until interrupted.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between polls with --loop.")
        parser.add_argument("--limit", type=int, default=100, help="Most deliveries sent per round.")

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
            self.stdout.write(f"{signal.Signals(signum).name} received; stopping after the delivery in flight.")
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.stdout.write(f"Delivering webhooks every {interval:g} s; stop with Ctrl-C or SIGTERM.")
        try:
            while not stop.is_set():
                close_old_connections()  # a worker lives for days: drop connections the database has closed
                try:
                    sent = self._round(limit, stop=stop.is_set)
                except Exception:  # noqa: BLE001 - the worker outlives a bad round (database down, a bug)
                    logger.exception("Webhook delivery round failed; retrying in %s s", interval)
                    sent = 0
                if sent < limit:  # a full round means more may be waiting: go again at once
                    stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Stopped.")

    def _round(self, limit: int, *, stop=None) -> int:
        attempts = webhooks.deliver_due_attempts(limit, stop=stop)
        if attempts or stop is None:  # the loop stays quiet when idle
            succeeded = sum(1 for a in attempts if a.status_code is not None and 200 <= a.status_code < 300)
            failed = len(attempts) - succeeded
            self.stdout.write(f"Sent {len(attempts)} webhook deliveries: {succeeded} succeeded, {failed} failed.")
            for attempt in attempts:
                if attempt.error:
                    self.stdout.write(f"  delivery {attempt.delivery_id}: {attempt.error}")
        return len(attempts)
