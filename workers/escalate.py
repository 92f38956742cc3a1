"""Escalation work outside the webhook: email alerts, and the periodic climb.

    deliver_alerts([12, 13])     # RQ job (queue "default"): email these alerts now
    check_job()                  # RQ job: one `check_escalations` pass
    python -m workers.escalate   # a loop: a pass every 15 seconds, until stopped

Jobs carry alert ids only. Nothing here is needed for correctness beyond the periodic pass:
every state lives in the database, so a lost job or a killed worker only delays an alert
until the next pass picks it up (`bot.escalation.check_escalations`). Each pass also pages
the escalations that were waiting: routine ones held until business hours, and unrouted
ones, as soon as someone is on call. The scheduler loop (workers/scheduler.py) can run that
pass on its own tick instead of this loop.
"""

from __future__ import annotations

import argparse
import threading
from datetime import datetime

from bot import escalation, logs
from bot.config import Settings
from bot.store.db import dispose_engines
from bot.store.types import utcnow

_log = logs.get_logger("escalate")

INTERVAL_S = 15.0


def deliver_alerts(ids: list[int]) -> dict[str, int]:
    """RQ job: send these email alerts if they are due and unsent (each at most once)."""
    counts = escalation.deliver_email_alerts(Settings.from_env(), utcnow(),
                                             [int(i) for i in ids])
    return {"sent": counts.sent, "retrying": counts.retrying, "failed": counts.failed}


def check_job() -> dict[str, int]:
    """RQ job: page waiting escalations, climb overdue ones, send due email alerts."""
    return summary(escalation.check_escalations(Settings.from_env(), utcnow()))


def summary(result: escalation.CheckResult) -> dict[str, int]:
    """What one pass did, as counts for a log line or a job result."""
    return {"paged": len(result.paged), "climbed": len(result.climbed),
            "unanswered": len(result.unanswered),
            "emails_sent": result.emails.sent, "emails_retrying": result.emails.retrying,
            "emails_failed": result.emails.failed}


class EscalationLoop:
    """`check_escalations` every `every` seconds on a thread, until `stop()`."""

    def __init__(self, settings: Settings, every: float = INTERVAL_S) -> None:
        self.settings, self.every = settings, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="escalations", daemon=True)

    def start(self) -> EscalationLoop:
        self._thread.start()
        return self

    def tick(self, now: datetime | None = None) -> dict[str, int]:
        counts = summary(escalation.check_escalations(self.settings, now or utcnow()))
        if any(counts.values()):
            logs.event(_log, "escalations_checked", **counts)
        return counts

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - try again next round; say so loudly
                logs.event(_log, "escalation_check_failed", level=40,
                           error=type(exc).__name__)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every + 30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Climb overdue escalations and send "
                                     "email alerts, every few seconds.")
    parser.add_argument("--every", type=float, default=INTERVAL_S, metavar="SECONDS")
    parser.add_argument("--once", action="store_true", help="One pass, then exit.")
    args = parser.parse_args(argv)
    if not logs.is_configured():
        logs.configure()
    loop = EscalationLoop(Settings.from_env(), args.every)
    try:
        if args.once:
            loop.tick()
        else:
            loop.run()
    except KeyboardInterrupt:
        pass
    finally:
        dispose_engines(close=True)


if __name__ == "__main__":
    main()
