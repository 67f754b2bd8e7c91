"""Send due webhook deliveries: once (for cron), or with --loop as a long-running worker."""

from __future__ import annotations

from registry.audit import webhooks
from registry.worker import PollingCommand


class Command(PollingCommand):
    help = (
        "Send the webhook deliveries that are due, print a summary and exit; with --loop, keep going every "
        "--interval seconds until SIGTERM or Ctrl-C (the delivery in flight finishes first)."
    )

    doing = "Delivering webhooks"
    in_flight = "the delivery"
    items = "deliveries"

    def run_round(self, limit: int, *, stop=None) -> int:
        attempts = webhooks.deliver_due_attempts(limit, stop=stop)
        if attempts or stop is None:  # the loop stays quiet when idle
            succeeded = sum(1 for a in attempts if a.status_code is not None and 200 <= a.status_code < 300)
            failed = len(attempts) - succeeded
            self.stdout.write(f"Sent {len(attempts)} webhook deliveries: {succeeded} succeeded, {failed} failed.")
            for attempt in attempts:
                if attempt.error:
                    self.stdout.write(f"  delivery {attempt.delivery_id}: {attempt.error}")
        return len(attempts)
