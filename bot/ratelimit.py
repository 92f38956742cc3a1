"""Send-rate limits per sender, shared by every worker on every machine through Redis.

Twilio counts segments per second per sending number (long code 1/s, toll-free 3/s, short
code 100/s) and messages per second per WhatsApp sender (80/s). Whatever goes faster waits
in Twilio's queue, and a queue over 10 hours fails (21611/30001), so the workers throttle
themselves. RQ's own RateLimit caps concurrency, not rate.

The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one
timestamp): the key holds the "theoretical arrival time" (TAT) at which the sender's bucket
will be full again. One Lua script reads and updates it atomically and takes the time from
Redis, so workers' clocks never matter. Times are integer microseconds: Lua numbers are
doubles and would lose precision as seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from redis import Redis

#: KEYS[1] the sender's key. ARGV: emission interval (microseconds per unit), burst (units),
#: cost (units). Returns 0 when allowed (and records it), else microseconds to wait.
_GCRA: Final = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then
  tat = math.max(tonumber(stored), now)
end
-- A request bigger than the burst goes through once the bucket is full and leaves a debt
-- that later requests wait out, so the long-run rate holds for any message length.
local allow_at = tat + (math.min(cost, burst) - burst) * interval
if allow_at > now then
  return math.ceil(allow_at - now)
end
local new_tat = tat + cost * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
           'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
"""


@dataclass(frozen=True)
class SenderLimit:
    """How fast one sender may go: `rate_per_s` units a second, `burst` units at once.

    The unit is a segment, or a whole message when `per_message` (WhatsApp).
    """

    rate_per_s: float
    burst: int
    per_message: bool = False

    def __post_init__(self) -> None:
        if not self.rate_per_s > 0:
            raise ValueError(f"a send rate must be above 0 per second, not {self.rate_per_s}")
        if self.burst < 1:
            raise ValueError(f"a burst must be at least 1, not {self.burst}")

    def cost(self, segments: int) -> int:
        return 1 if self.per_message else max(1, segments)


#: Twilio's published sender rates. A burst of a few units lets workers that wake a little
#: late catch up without ever beating the rate over time.
DEFAULT_LIMITS: Final[Mapping[str, SenderLimit]] = {
    "long_code": SenderLimit(rate_per_s=1, burst=3),
    "toll_free": SenderLimit(rate_per_s=3, burst=6),
    "short_code": SenderLimit(rate_per_s=100, burst=20),
    "whatsapp": SenderLimit(rate_per_s=80, burst=20, per_message=True),
}


class Throttled(Exception):
    """The sender is busy for longer than the caller would wait: retry after `retry_after` s."""

    def __init__(self, sender_key: str, retry_after: float) -> None:
        super().__init__(f"sender {sender_key} is throttled; retry in {retry_after:.2f} s")
        self.sender_key = sender_key
        self.retry_after = retry_after


class RateLimiter:
    """Shared per-sender rate limits. One instance per process is enough; it holds no state
    besides the Redis client and the limits.
    """

    def __init__(
        self,
        redis: Redis,
        key_prefix: str = "trialbot:rate",
        limits: Mapping[str, SenderLimit] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.redis = redis
        self.key_prefix = key_prefix
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self._script = redis.register_script(_GCRA)
        self._sleep = sleep  # a seam for tests

    def key(self, sender_key: str) -> str:
        return f"{self.key_prefix}:{sender_key}"

    def limit_for(self, kind: str) -> SenderLimit:
        try:
            return self.limits[kind]
        except KeyError:
            known = ", ".join(sorted(self.limits))
            raise ValueError(f"no rate limit for sender kind `{kind}`; known: {known}") from None

    def acquire(self, sender_key: str, cost: int = 1, *, rate_per_s: float, burst: int) -> float:
        """Take `cost` units from the sender's budget if it has them.

        Returns 0.0 when the send may go now (and the units are spent), otherwise the
        seconds to wait before asking again (nothing is spent).
        """
        if cost < 1:
            raise ValueError(f"a send costs at least 1 unit, not {cost}")
        limit = SenderLimit(rate_per_s=rate_per_s, burst=burst)  # validates both
        interval_us = 1_000_000 / limit.rate_per_s
        wait_us = self._script(keys=[self.key(sender_key)],
                                 args=[repr(interval_us), limit.burst, cost])
        return int(wait_us) / 1_000_000

    def acquire_for(self, kind: str, sender_key: str, segments: int = 1) -> float:
        """`acquire` with the limits of a sender kind ("long_code", "whatsapp", ...)."""
        limit = self.limit_for(kind)
        return self.acquire(sender_key, limit.cost(segments),
                            rate_per_s=limit.rate_per_s, burst=limit.burst)

    def wait_for(
        self,
        sender_key: str,
        cost: int = 1,
        *,
        rate_per_s: float,
        burst: int,
        max_wait: float,
    ) -> float:
        """Block until the units are taken; return the seconds spent waiting.

        Raise Throttled without sleeping once the wait would pass `max_wait`, so a worker
        can hand the job back to RQ (`enqueue_in(retry_after)`) instead of idling.
        """
        started = time.monotonic()
        while True:
            wait = self.acquire(sender_key, cost, rate_per_s=rate_per_s, burst=burst)
            spent = time.monotonic() - started
            if wait == 0.0:
                return spent
            if spent + wait > max_wait:
                raise Throttled(sender_key, wait)
            # Others may take the slot first; then we ask again with the new wait.
            self._sleep(wait)

    def wait_for_kind(
        self, kind: str, sender_key: str, segments: int = 1, *, max_wait: float
    ) -> float:
        """`wait_for` with the limits of a sender kind."""
        limit = self.limit_for(kind)
        return self.wait_for(sender_key, limit.cost(segments), rate_per_s=limit.rate_per_s,
                             burst=limit.burst, max_wait=max_wait)
