"""Load-test the Twilio webhook against a bare Flask endpoint, on PostgreSQL and SQLite.

    bench/webhook/run.sh [--participants 16000] [--rounds 3] [--duration 10] [--slices 3] ...

For each database: a fresh database, `--participants` enrolled participants each with a
waiting daily check-in, and a wrk Lua script holding pre-signed requests (every one with its
own MessageSid) that answer the check-in the way people do, round-robin across participants.
The app and the bare endpoint run side by side under the same gunicorn settings on loopback;
wrk drives them in turns (slices), with the same connections and threads. Afterwards the
database is checked: every request stored exactly once.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))

from proc_cpu import children_of, cpu_seconds, postgres_backends  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

BASE = "https://bench.example.org"
TOKEN = "be0c4b1e2f3a4d5c6b7a8f9e0d1c2b3a"  # noqa: S105 - a throwaway token for the run
#: A throwaway account and sender: the app refuses to start on the placeholders.
ACCOUNT_SID = "AC" + "be" * 16
SERVICE_SID = "MG" + "0" * 32
PATH = "/twilio/messages"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("BENCH_PG_DB", "bench_webhook")

#: What participants send, per language: the check-in's three answers, then chatter that finds
#: no open question (a lighter path, as after a finished check-in). By default (`--rounds 3`)
#: only the answers: the mix then stays the same however far a run gets, so a faster app is
#: not flattered by reaching the cheap requests sooner.
ANSWERS = {
    "en": ["7", "yes", "no", "thanks", "ok 👍"],
    "es": ["7", "sí", "no", "gracias", "vale"],
}


@dataclass
class Result:
    name: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    wrapped: bool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def phone(i: int) -> str:
    return f"+1617555{i:04d}" if i < 10_000 else f"+1508555{i - 10_000:04d}"


# ---- database ---------------------------------------------------------------------------------


def fresh_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {PG_DB}"))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DB}"


def enrol(url: str, count: int) -> list[tuple[str, str]]:
    """`count` participants (70% English, 30% Spanish), each with a waiting check-in."""
    from bot import participants
    from bot.config import Settings
    from bot.conversation import start_flow
    from bot.flow_registry import FlowRegistry
    from bot.store import schema
    from bot.store.db import dispose_engines, session_scope
    from bot.store.types import utcnow

    schema.upgrade(url)
    settings = Settings(database_url=url, flows_dir=str(ROOT / "flows"))
    registry = FlowRegistry(settings.flows_dir)
    rng = random.Random(7)
    people: list[tuple[str, str]] = []
    batch = 250
    for start in range(0, count, batch):
        with session_scope(url) as db:
            for i in range(start, min(start + batch, count)):
                lang = "es" if rng.random() < 0.3 else "en"
                p = participants.add(db, actor="staff:bench", phone=phone(i), code=f"B{i:05d}",
                                     language=lang, timezone="America/New_York")
                start_flow(db, p, "daily_checkin", utcnow(), settings=settings,
                           registry=registry)
                people.append((phone(i), lang))
    dispose_engines()
    return people


def check_database(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    from bot.store.db import dispose_engines, get_engine

    with get_engine(url).connect() as conn:
        out = {
            "inbound": conn.execute(sa.text(
                "SELECT count(*) FROM message WHERE direction = 'in'")).scalar_one(),
            "distinct_sids": conn.execute(sa.text(
                "SELECT count(DISTINCT twilio_sid) FROM message WHERE direction = 'in'"
            )).scalar_one(),
            "replies": conn.execute(sa.text(
                "SELECT count(*) FROM message WHERE direction = 'out' AND status = 'sent'"
            )).scalar_one(),
            "answers": conn.execute(sa.text("SELECT count(*) FROM answer")).scalar_one(),
        }
    dispose_engines()
    return {k: int(v) for k, v in out.items()}


# ---- requests -------------------------------------------------------------------------------


def signed_requests(people: list[tuple[str, str]], rounds: int, port: int) -> list[str]:
    validator = RequestValidator(TOKEN)
    out: list[str] = []
    for r in range(rounds):
        for n, (number, lang) in enumerate(people):
            words = ANSWERS[lang]
            params = {
                "MessageSid": f"SM{r:04x}{n:06x}" + os.urandom(11).hex(),
                "AccountSid": ACCOUNT_SID, "MessagingServiceSid": SERVICE_SID,
                "From": number, "To": "+15005550006", "Body": words[min(r, len(words) - 1)],
                "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
                "FromCountry": "US", "FromState": "MA", "ApiVersion": "2010-04-01",
            }
            body = urllib.parse.urlencode(params)
            sig = validator.compute_signature(BASE + PATH, params)
            out.append(
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {sig}\r\nContent-Length: {len(body.encode())}\r\n"
                f"\r\n{body}")
    return out


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r") \
        .replace("\n", "\\n")
    # Lua strings are bytes: write non-ASCII (emoji in bodies) as decimal escapes.
    return '"' + "".join(ch if ord(ch) < 128 else "".join(f"\\{b}" for b in ch.encode())
                         for ch in escaped) + '"'


def write_lua(requests: list[str], threads: int, path: Path) -> None:
    with path.open("w", encoding="ascii") as fh:
        fh.write("local reqs = {\n")
        for raw in requests:
            fh.write(_lua_string(raw) + ",\n")
        fh.write("}\n")
        fh.write(f"local nthreads = {threads}\n")
        fh.write(LUA_TAIL)


LUA_TAIL = r"""
local created = 0
function setup(thread)
  thread:set("tid", created)
  created = created + 1
end

-- Where this slice starts in the list (`wrk ... -- <offset>`), so slices never resend.
local offset = 0
function init(args)
  offset = tonumber(args[1]) or 0
end

local counter = 0
function request()
  local i = offset + tid + counter * nthreads + 1
  counter = counter + 1
  if i > #reqs then i = ((i - 1) % #reqs) + 1 end
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "unique": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, #reqs))
end
"""


# ---- serving and driving ------------------------------------------------------------------------


def serve(app: str, chdir: Path, port: int, args: argparse.Namespace, env: dict[str, str],
          log: Path) -> subprocess.Popen[bytes]:
    cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "--chdir", str(chdir), "-b",
           f"127.0.0.1:{port}", "-w", str(args.workers), "-k", args.worker_class,
           "--threads", str(args.threads), "--backlog", "2048", "--log-level", "warning", app]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=fh, stderr=fh,  # noqa: S603
                                start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"gunicorn did not become healthy; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


# ---- where the CPU goes ----------------------------------------------------------------------


def server_cpu(proc: subprocess.Popen[bytes]) -> float:
    """CPU of a gunicorn master and its workers (sync workers live for the whole run)."""
    return sum(cpu_seconds(pid) for pid in (proc.pid, *children_of(proc.pid)))


def postgres_cpu(url: str) -> float:
    """CPU so far of the PostgreSQL backends of the bench database (the app's pooled
    connections stay open for the whole run, so differences are theirs)."""
    return sum(postgres_backends(url).values())


def children_cpu() -> float:
    """CPU of this process's finished children: the wrk runs."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclass
class Cpu:
    """CPU seconds spent during an endpoint's slices, by whom."""

    server: float = 0.0
    database: float = 0.0
    wrk: float = 0.0

    def add(self, other: Cpu) -> None:
        self.server += other.server
        self.database += other.database
        self.wrk += other.wrk

    @property
    def total(self) -> float:
        return self.server + self.database + self.wrk


def measured(proc: subprocess.Popen[bytes], url: str, run: Any) -> tuple[Any, Cpu]:
    before = (server_cpu(proc), postgres_cpu(url), children_cpu())
    out = run()
    after = (server_cpu(proc), postgres_cpu(url), children_cpu())
    return out, Cpu(*(b - a for a, b in zip(before, after, strict=True)))


@dataclass
class Slice:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int


def drive(port: int, lua: Path, offset: int, args: argparse.Namespace) -> Slice:
    cmd = ["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections), "-d",
           f"{args.duration}s", "--timeout", "10s", "-s", str(lua), f"http://127.0.0.1:{port}",
           "--", str(offset)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout  # noqa: S603
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    data: dict[str, Any] = json.loads(line[len("RESULT "):])
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Slice(data["requests"], data["duration_us"] / 1e6, data["p50_us"] / 1000,
                 data["p99_us"] / 1000, errors)


def combine(name: str, slices: list[Slice], unique: int, sent: int) -> Result:
    """All slices of one endpoint: throughput over their total time; the worst slice's p99
    and the median slice's p50 (wrk reports percentiles per run, not their samples)."""
    requests = sum(x.requests for x in slices)
    p50s = sorted(x.p50_ms for x in slices)
    return Result(name, requests, requests / sum(x.seconds for x in slices),
                  p50s[len(p50s) // 2], max(x.p99_ms for x in slices),
                  sum(x.errors for x in slices), sent > unique)


def bench_database(kind: str, args: argparse.Namespace, workdir: Path) -> list[Result]:
    print(f"\n== {kind}: enrolling {args.participants} participants ...", flush=True)
    url = fresh_database(kind, workdir)
    started = time.monotonic()
    people = enrol(url, args.participants)
    print(f"   enrolled in {time.monotonic() - started:.1f}s", flush=True)
    port, bare_port = free_port(), free_port()
    requests = signed_requests(people, args.rounds, port)
    lua = workdir / f"{kind}.lua"
    write_lua(requests, args.wrk_threads, lua)
    bare_lua = workdir / f"{kind}-bare.lua"
    write_lua([r.replace(f"127.0.0.1:{port}", f"127.0.0.1:{bare_port}") for r in requests],
              args.wrk_threads, bare_lua)

    env = {"DATABASE_URL": url, "REDIS_URL": args.redis_url, "TWILIO_AUTH_TOKEN": TOKEN,
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "MESSAGING_SERVICE_SID": SERVICE_SID,
           "PUBLIC_BASE_URL": BASE, "FLOWS_DIR": str(ROOT / "flows"),
           "SECRET_KEY": "bench-secret", "PYTHONPATH": str(ROOT)}
    # Both servers run the whole time (an idle sync worker costs nothing) and wrk drives them
    # in turns, so a change in the machine's other load hits both alike.
    app = serve("bot:create_app()", ROOT, port, args, env, workdir / f"{kind}-app.log")
    try:
        bare = serve("bare:create_app()", HERE, bare_port, args, env,
                     workdir / f"{kind}-bare.log")
    except BaseException:
        stop(app)
        raise
    full_slices: list[Slice] = []
    bare_slices: list[Slice] = []
    full_cpu, bare_cpu = Cpu(), Cpu()
    offset = 0
    try:
        for n in range(args.slices):
            run_full, cpu = measured(app, url, functools.partial(drive, port, lua, offset, args))
            full_slices.append(run_full)
            full_cpu.add(cpu)
            run_bare, cpu = measured(bare, url,
                                     functools.partial(drive, bare_port, bare_lua, offset, args))
            bare_slices.append(run_bare)
            bare_cpu.add(cpu)
            # Requests still in flight when wrk stopped may have reached the app: skip them.
            offset += full_slices[-1].requests + 2 * args.connections
            f, b = full_slices[-1], bare_slices[-1]
            print(f"   slice {n + 1}: webhook {f.requests / f.seconds:.0f} req/s "
                  f"(p99 {f.p99_ms:.1f} ms), bare {b.requests / b.seconds:.0f} req/s "
                  f"(p99 {b.p99_ms:.1f} ms)", flush=True)
    finally:
        stop(app)
        stop(bare)
    results = [combine(f"webhook/{kind}", full_slices, len(requests), offset),
               combine(f"bare/{kind}", bare_slices, len(requests), offset)]
    print_cpu(kind, results[0].requests, full_cpu, results[1].requests, bare_cpu)
    stored = check_database(url)
    sent = results[0].requests
    ok = stored["inbound"] == stored["distinct_sids"] and (
        results[0].wrapped or stored["inbound"] >= sent - args.connections * args.slices)
    print(f"   stored: {stored} (wrk counted {sent}; "
          f"{'consistent' if ok else 'MISMATCH'})", flush=True)
    return results


def print_cpu(kind: str, full_requests: int, full: Cpu, bare_requests: int, bare: Cpu) -> None:
    """CPU per request by whom, and what the goal's ratio leaves the webhook.

    On a CPU-bound machine requests/s is about cores / CPU per request, so reaching half the
    bare endpoint's rate means costing at most twice its CPU per request, wrk included.
    """
    def ms(seconds: float, requests: int) -> float:
        return 1000 * seconds / max(requests, 1)

    print(f"   CPU per request: webhook {ms(full.total, full_requests):.3f} ms (gunicorn "
          f"{ms(full.server, full_requests):.3f}, PostgreSQL "
          f"{ms(full.database, full_requests):.3f}, wrk {ms(full.wrk, full_requests):.3f}); "
          f"bare {ms(bare.total, bare_requests):.3f} ms (gunicorn "
          f"{ms(bare.server, bare_requests):.3f}, wrk {ms(bare.wrk, bare_requests):.3f})",
          flush=True)
    budget = 2 * ms(bare.total, bare_requests) - ms(full.wrk, full_requests)
    print(f"   the 50% goal leaves the webhook's own work (app + database, HTTP server "
          f"included) {budget:.3f} ms per request; it uses "
          f"{ms(full.server + full.database, full_requests):.3f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--participants", type=int, default=16_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="messages per participant (3: the check-in's answers; up to 5 "
                             "adds chatter)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per slice")
    parser.add_argument("--slices", type=int, default=3,
                        help="turns of webhook then bare, each --duration long")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk, or use run.sh)")

    workdir = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    print(f"work directory: {workdir}; gunicorn {args.workers} x {args.worker_class} "
          f"(threads {args.threads}); wrk -t{args.wrk_threads} -c{args.connections} "
          f"-d{args.duration}s x {args.slices} slices; {os.cpu_count()} CPUs", flush=True)
    results: list[Result] = []
    try:
        for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
            results += bench_database("postgresql" if kind.startswith("p") else "sqlite",
                                      args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{'endpoint':<22}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}")
    for r in results:
        note = "  (requests wrapped: add --rounds)" if r.wrapped and r.name.startswith("w") else ""
        print(f"{r.name:<22}{r.requests:>10}{r.rps:>10.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}"
              f"{r.errors:>8}{note}")
    by_name = {r.name: r for r in results}
    print()
    for kind in ("postgresql", "sqlite"):
        full, bare = by_name.get(f"webhook/{kind}"), by_name.get(f"bare/{kind}")
        if full and bare:
            ratio = full.rps / bare.rps
            goal = ratio >= 0.5 and full.p99_ms <= 50 and full.errors == 0
            print(f"{kind}: webhook/bare = {ratio:.0%}, p99 {full.p99_ms:.1f} ms, "
                  f"{full.errors} errors -> goal (>= 50%, p99 <= 50 ms, no errors) "
                  f"{'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
