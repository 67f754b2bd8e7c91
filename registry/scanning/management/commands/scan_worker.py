"""Scan the files waiting for a verdict: once (for cron), or with --loop as a long-running worker."""

from __future__ import annotations

from registry.scanning import services
from registry.worker import PollingCommand


class Command(PollingCommand):
    help = (
        "Queue again the verdicts of an older scanner version, scan every pending file, print a summary and exit; "
        "with --loop, keep going every --interval seconds until SIGTERM or Ctrl-C (the scan in flight finishes first)."
    )

    doing = "Scanning pending files"
    in_flight = "the scan"
    items = "files scanned"

    def run_round(self, limit: int, *, stop=None) -> int:
        outdated = services.queue_outdated()
        done = services.scan_pending(limit, stop=stop)
        if done or outdated:
            self.stdout.write(f"Scanned {done} file(s); {outdated} verdict(s) of an older scanner queued again.")
        return done
