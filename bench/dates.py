"""Date-reply understanding speed: median parse time over the test corpus, once warm.

Run: .venv/bin/python bench/dates.py [--rounds N]

Goal: median <= 2 ms per reply after ``warm_up``. Exits non-zero when the goal is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.engine.understand.dates import parse_when, warm_up  # noqa: E402

GOAL_MS = 2.0


def load_corpus() -> ModuleType:
    # The corpus lives with its expected answers in the tests; time exactly those replies.
    path = ROOT / "tests" / "understand" / "test_dates.py"
    spec = importlib.util.spec_from_file_location("date_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()

    corpus = load_corpus()
    replies = [(lang, text) for lang, items in corpus.CORPUS.items() for text, _ in items]
    replies += [(lang, text) for lang in corpus.ZONES for text in corpus.NEGATIVE]
    nows = {lang: corpus.now_in(lang) for lang in corpus.ZONES}

    started = time.perf_counter()
    warm_up(corpus.ZONES)
    print(f"warm-up ({len(corpus.ZONES)} languages): {time.perf_counter() - started:.2f} s")

    samples: list[float] = []
    by_lang: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for lang, text in replies:
            t0 = time.perf_counter()
            parse_when(text, lang, nows[lang])
            elapsed = (time.perf_counter() - t0) * 1000
            samples.append(elapsed)
            by_lang.setdefault(lang, []).append(elapsed)

    samples.sort()
    median = statistics.median(samples)
    p95 = samples[int(len(samples) * 0.95)]
    print(f"{len(replies)} replies x {args.rounds} rounds")
    for lang, times in sorted(by_lang.items()):
        print(f"  {lang}: median {statistics.median(times):.3f} ms")
    print(f"median {median:.3f} ms, p95 {p95:.3f} ms, max {samples[-1]:.3f} ms "
          f"(goal <= {GOAL_MS} ms)")
    return 0 if median <= GOAL_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
