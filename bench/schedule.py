"""Plan one day of check-ins for 100,000 participants; print time and peak memory.

Run: .venv/bin/python bench/schedule.py [participants]

The participants come from a generator, as rows streamed from the database would, and
the plan is consumed as it is produced, so peak memory stays small. Timing and memory are
measured in separate runs because tracemalloc slows the code it watches.
"""

from __future__ import annotations

import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.schedule import daily_plan  # noqa: E402

GOAL_SECONDS = 10.0
GOAL_MB = 300.0

ZONES = [
    "America/Los_Angeles", "America/Denver", "America/Phoenix", "America/Chicago",
    "America/New_York", "America/Puerto_Rico", "America/Anchorage", "Pacific/Honolulu",
    "America/Mexico_City", "America/Bogota", "America/Sao_Paulo", "America/Santiago",
    "America/St_Johns", "Europe/London", "Europe/Madrid", "Europe/Paris", "Europe/Istanbul",
    "Africa/Lagos", "Africa/Nairobi", "Africa/Johannesburg", "Africa/Casablanca",
    "Asia/Kolkata", "Asia/Kathmandu", "Asia/Manila", "Asia/Ho_Chi_Minh", "Asia/Shanghai",
    "Asia/Tokyo", "Australia/Adelaide", "Australia/Sydney", "Australia/Lord_Howe",
    "Pacific/Auckland", "Pacific/Chatham", "UTC",
]
#: Check-in times a coordinator would offer: every 5 minutes from 06:00 to 22:00.
TIMES = [f"{m // 60:02d}:{m % 60:02d}" for m in range(6 * 60, 22 * 60 + 1, 5)]


def participants(count: int, seed: int = 1) -> Iterator[tuple[int, str | None, str]]:
    rng = random.Random(seed)
    for pid in range(count):
        # About 1 in 20 has no daily check-in.
        hhmm = None if rng.random() < 0.05 else rng.choice(TIMES)
        yield pid, hhmm, rng.choice(ZONES)


def plan_day(count: int, day_start: datetime) -> int:
    planned = 0
    for _pid, _due in daily_plan(participants(count), day_start, day_start + timedelta(days=1)):
        planned += 1
    return planned


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    # 2026-03-08 (US spring forward) exercises the gap handling too.
    day_start = datetime(2026, 3, 8, tzinfo=UTC)

    started = time.perf_counter()
    planned = plan_day(count, day_start)
    elapsed = time.perf_counter() - started

    tracemalloc.start()
    plan_day(count, day_start)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_mb = peak / 1e6

    print(f"participants: {count}, check-ins planned: {planned}")
    print(f"elapsed: {elapsed:.3f} s (goal <= {GOAL_SECONDS:.0f} s)")
    print(f"peak traced memory: {peak_mb:.2f} MB (goal <= {GOAL_MB:.0f} MB)")
    # Linux reports kilobytes; this includes the interpreter and the tz database.
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS: {rss_mb:.1f} MB")
    return 0 if elapsed <= GOAL_SECONDS and peak_mb <= GOAL_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
