"""Status progress and signed status callbacks, sent from background threads.

Each accepted message walks its statuses (queued → sent → delivered, or → undelivered/failed
with an ErrorCode). The next step is scheduled only after the previous callback finished, so
one message's callbacks always arrive in order; different messages proceed in parallel on a
small pool so a slow receiver does not hold up everyone else.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .addresses import mask, split_address
from .state import API_VERSION, MessageStore
from .transport import post_signed_form

log = logging.getLogger(__name__)


class Scheduler:
    """Runs jobs after a delay on a thread pool. `stop` drops what has not started yet."""

    def __init__(self, workers: int = 8) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()  # tie-breaker: jobs are not comparable
        self._cond = threading.Condition()
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emulator-cb")
        self._thread = threading.Thread(target=self._run, name="emulator-timer", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, job: Callable[[], None]) -> None:
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._counter), job))
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                due = self._heap[0][0] - time.monotonic()
                if due > 0:
                    self._cond.wait(due)
                    continue
                _, _, job = heapq.heappop(self._heap)
                self._pool.submit(self._guard, job)

    @staticmethod
    def _guard(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:  # a broken job must not kill the pool worker silently
            log.exception("emulator background job failed")

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class DeliverySettings:
    auth_token: str
    step_delay: float = 0.05
    retries: int = 2
    retry_delay: float = 0.1
    timeout: float = 10.0


class Delivery:
    """Moves accepted messages through their statuses and reports each step."""

    def __init__(self, store: MessageStore, settings: DeliverySettings) -> None:
        self.store = store
        self.settings = settings
        self.scheduler = Scheduler()
        self._stop = threading.Event()

    def start(self, sid: str, error_code: int | None, final: str = "delivered") -> None:
        """Begin the walk for a just-created (queued) message."""
        steps = ["queued", "sent", final] if final != "failed" else ["queued", final]
        self.scheduler.call_later(0, lambda: self._step(sid, steps, 0, error_code))

    def _step(self, sid: str, steps: list[str], i: int, error_code: int | None) -> None:
        status = steps[i]
        last = i == len(steps) - 1
        code = error_code if last else None
        # Step 0 is the status the message was created with; later steps move it on.
        record = self.store.get(sid) if i == 0 else self.store.set_status(sid, status, code)
        if record is None:
            return
        if record["status_callback"]:
            self._report(record, status, code)
        if not last and not self.scheduler.stopped:
            self.scheduler.call_later(
                self.settings.step_delay, lambda: self._step(sid, steps, i + 1, error_code)
            )

    def _report(self, record: dict[str, object], status: str, error_code: int | None) -> None:
        url = str(record["status_callback"])
        params = {
            "MessageSid": str(record["sid"]),
            "SmsSid": str(record["sid"]),
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": str(record["account_sid"]),
            "From": str(record["from"] or ""),
            "To": str(record["to"]),
            "ApiVersion": API_VERSION,
        }
        if record["messaging_service_sid"]:
            params["MessagingServiceSid"] = str(record["messaging_service_sid"])
        if split_address(str(record["to"]))[0] == "whatsapp":
            params["ChannelPrefix"] = "whatsapp"
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        attempts = 1 + self.settings.retries
        for attempt in range(1, attempts + 1):
            try:
                result = post_signed_form(
                    url, params, self.settings.auth_token, timeout=self.settings.timeout
                )
            except (OSError, ValueError) as err:
                outcome = type(err).__name__
            else:
                outcome = str(result.status)
                # Like Twilio, only transport failures and 5xx are worth another try.
                if result.status < 500:
                    log.info(
                        "status callback %s %s to %s -> %s",
                        record["sid"], status, mask(str(record["to"])), outcome,
                    )
                    return
            log.warning(
                "status callback %s %s attempt %d/%d failed: %s",
                record["sid"], status, attempt, attempts, outcome,
            )
            if attempt < attempts and self._stop.wait(self.settings.retry_delay * attempt):
                return

    def stop(self) -> None:
        self._stop.set()
        self.scheduler.stop()
