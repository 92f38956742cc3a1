"""CPU per webhook request in one process, through the Flask test client (no HTTP server).

    .venv/bin/python bench/webhook/inprocess.py [--database sqlite|postgresql] [--requests 600]
        [--cprofile out.prof]

Enrols participants like `run.py`, then sends signed check-in answers one by one, each from
another participant, and prints the CPU time per request of this process (not the database
server's) for the webhook and for the bare endpoint. With `--cprofile` the webhook loop runs
under cProfile and the stats are saved (read them with `python -m pstats out.prof`, or print
the top with `--top`).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  - the benchmark's own enrolment and request building
from twilio.request_validator import RequestValidator  # noqa: E402


def requests_for(people: list[tuple[str, str]], count: int) -> list[tuple[dict[str, str], str]]:
    validator = RequestValidator(run.TOKEN)
    out = []
    for n in range(count):
        number, lang = people[n % len(people)]
        r = n // len(people)
        params = {"MessageSid": f"SM{r:04x}{n:06x}" + "ab" * 11, "AccountSid": run.ACCOUNT_SID,
                  "From": number, "To": "+15005550006",
                  "Body": run.ANSWERS[lang][min(r, 4)], "NumMedia": "0", "NumSegments": "1",
                  "SmsStatus": "received", "ApiVersion": "2010-04-01"}
        out.append((params, validator.compute_signature(run.BASE + run.PATH, params)))
    return out


def loop(client: object, reqs: list[tuple[dict[str, str], str]],
         chunk: int = 50) -> tuple[float, float, float]:
    """Best and median CPU ms per request, and median wall ms, over chunks of `chunk`
    requests: on a shared machine the best chunk is the steadiest figure, the median the
    more typical one. Wall time includes waiting for the database server."""
    cpus: list[float] = []
    walls: list[float] = []
    for start in range(0, len(reqs), chunk):
        part = reqs[start:start + chunk]
        cpu, wall = time.process_time(), time.perf_counter()
        for params, sig in part:
            resp = client.post(run.PATH, data=params,  # type: ignore[attr-defined]
                               headers={"X-Twilio-Signature": sig})
            assert resp.status_code == 200, resp.data
        cpus.append((time.process_time() - cpu) * 1000 / len(part))
        walls.append((time.perf_counter() - wall) * 1000 / len(part))
    cpus.sort()
    walls.sort()
    return cpus[0], cpus[len(cpus) // 2], walls[len(walls) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--participants", type=int, default=800)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--cprofile", metavar="FILE")
    parser.add_argument("--top", type=int, default=0, help="print the top N functions")
    args = parser.parse_args()

    import os

    from bot import create_app, logs
    from bot.config import Settings

    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    url = run.fresh_database(args.database, workdir)
    people = run.enrol(url, args.participants)
    settings = Settings(database_url=url, redis_url=os.environ.get(
        "REDIS_URL", "redis://127.0.0.1:6379/13"), twilio_auth_token=run.TOKEN,
        public_base_url=run.BASE, flows_dir=str(run.ROOT / "flows"), secret_key="bench",
        twilio_account_sid=run.ACCOUNT_SID, messaging_service_sid=run.SERVICE_SID)
    # Log lines are formatted as in production, and thrown away.
    logs.configure(open(os.devnull, "w"))  # noqa: SIM115
    app = create_app(settings)
    client = app.test_client()
    reqs = requests_for(people, args.requests + 50)
    loop(client, reqs[:50])  # warm up: connections, caches
    reqs = reqs[50:]
    if args.cprofile or args.top:
        prof = cProfile.Profile()
        prof.enable()
        cpu, median, wall = loop(client, reqs)
        prof.disable()
        if args.cprofile:
            prof.dump_stats(args.cprofile)
        if args.top:
            pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(args.top)
    else:
        cpu, median, wall = loop(client, reqs)

    import bare

    bare_client = bare.create_app().test_client()
    bcpu, bmedian, bwall = loop(bare_client, reqs)
    print(f"{args.database}: CPU ms per request (best chunk / median), wall: webhook "
          f"{cpu:.2f} / {median:.2f}, {wall:.2f}; bare {bcpu:.2f} / {bmedian:.2f}, {bwall:.2f}")


if __name__ == "__main__":
    main()
