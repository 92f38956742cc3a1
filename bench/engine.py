"""Engine benchmarks: resume throughput on the daily check-in, and date-reply understanding.

Run: .venv/bin/python bench/engine.py [--sessions N]

Goals: >= 10,000 resume steps per second; median date understanding <= 2 ms once warm.
The resume figure is steady state: replies repeat across participants and the engine
memoises its (pure) reply parsers. The figure without the memo is printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.engine import understand  # noqa: E402
from bot.engine.loader import load_flow  # noqa: E402
from bot.engine.runner import Reply, clear_parse_cache, resume, start  # noqa: E402
from bot.engine.session import Participant  # noqa: E402
from bot.i18n import catalogs  # noqa: E402

RESUME_GOAL = 10_000  # steps per second
DATE_GOAL_MS = 2.0

#: Replies to the daily check-in, cycled over sessions: numbers, words, yes/no in two languages.
CHECKIN_REPLIES = {
    "en": [("7", "yes", "no"), ("I feel like a 7", "yes I did", "nope"), ("2", "no", "1", "yes")],
    "es": [("siete", "sí, ya me la tomé", "no"), ("8", "si", "no"), ("3", "no", "2", "sí")],
}

DATE_REPLIES = {
    "en": ["tomorrow at 3pm", "next tuesday at 10", "friday at 5", "March 12 at 9:30",
           "in 2 days", "Monday morning"],
    "es": ["el martes a las 3pm", "mañana a las 3", "pasado mañana", "el 12 de marzo a las 9",
           "mañana por la tarde", "el viernes a las 5"],
}


def bench_resume(sessions: int, memo: bool = True) -> float:
    """Resume calls per second; with `memo=False` every reply is parsed afresh."""
    flow = load_flow(ROOT / "flows" / "daily_checkin.yaml")
    people = {lang: Participant(id=f"p-{lang}", language=lang, timezone="America/New_York")
              for lang in CHECKIN_REPLIES}
    now = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)
    plans = [(lang, replies) for lang, options in CHECKIN_REPLIES.items() for replies in options]
    for i, (lang, replies) in enumerate(plans):  # warm catalogs and word tables
        session, _ = start(flow, people[lang], now, catalogs, session_id=f"w{i}")
        for text in replies:
            session, _ = resume(flow, session, people[lang], Reply(text), now, catalogs)
    steps = 0
    elapsed = 0.0
    for i in range(sessions):
        lang, replies = plans[i % len(plans)]
        session, _ = start(flow, people[lang], now, catalogs, session_id=f"s{i}")
        for text in replies:
            if not memo:
                clear_parse_cache()
            begin = time.perf_counter()
            session, _ = resume(flow, session, people[lang], Reply(text), now, catalogs)
            elapsed += time.perf_counter() - begin
            steps += 1
        assert session.status == "completed", (lang, replies, session)
    return steps / elapsed


def bench_dates(rounds: int) -> tuple[float, float]:
    now = datetime(2026, 3, 2, 8, 30, tzinfo=ZoneInfo("America/New_York"))
    for lang, texts in DATE_REPLIES.items():  # warm-up: first parse per language is slow
        for text in texts:
            understand.parse_when(text, lang, now)
    times: list[float] = []
    for r in range(rounds):
        at = now + timedelta(minutes=r)  # vary `now` so nothing is cached on it
        for lang, texts in DATE_REPLIES.items():
            for text in texts:
                begin = time.perf_counter()
                understand.parse_when(text, lang, at)
                times.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times), max(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--date-rounds", type=int, default=50)
    args = parser.parse_args()
    rate = bench_resume(args.sessions)
    cold = bench_resume(max(args.sessions // 4, 1), memo=False)
    median_ms, worst_ms = bench_dates(args.date_rounds)
    ok_rate, ok_date = rate >= RESUME_GOAL, median_ms <= DATE_GOAL_MS
    print(f"resume: {rate:,.0f} steps/s (goal >= {RESUME_GOAL:,}) "
          f"{'ok' if ok_rate else 'BELOW GOAL'}")
    print(f"        {cold:,.0f} steps/s with every reply parsed afresh (no memo)")
    print(f"dates:  median {median_ms:.3f} ms, worst {worst_ms:.3f} ms "
          f"(goal median <= {DATE_GOAL_MS} ms) {'ok' if ok_date else 'ABOVE GOAL'}")
    return 0 if ok_rate and ok_date else 1


if __name__ == "__main__":
    raise SystemExit(main())
