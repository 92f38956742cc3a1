"""Outbound throughput: the whole delivery path against the bare Twilio client, same emulator.

    .venv/bin/python bench/outbound/run.py [--messages 10000] [--limited 3000] [--db pg,sqlite]

For each database (PostgreSQL first, the production case):

1. ceiling: the `twilio` client alone posts the messages to the emulator from 2 processes
   of OUTBOX_SEND_THREADS threads each; no database, no queue;
2. whole path: every participant (mixed languages) has a daily check-in started by the engine
   (`conversation.start_flow`), which leaves its translated first question in the outbox;
   then the sweep enqueues the due rows and 2 `bot worker` processes claim, rate-check (a
   limit that never binds, so the Redis check is paid), send and record each SID and status;
3. rate limit: SEND_RATE_LIMIT=100 with WhatsApp participants (WhatsApp limits count
   messages): the achieved rate must be within 5 % of 100 a second.

The emulator runs in its own process without status callbacks (nobody listens for them
here), with a listen backlog fit for 16 concurrent senders.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
from proc_cpu import cpu_seconds, postgres_backends, postgres_cpu_between  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from bot.config import Settings  # noqa: E402

ACCOUNT_SID = "AC" + "be" * 16
AUTH_TOKEN = "outbound-bench-token"  # noqa: S105 - a throwaway token for the run
SMS_FROM = "+15005550006"
WHATSAPP_FROM = "+14155238886"
LANGUAGES = ("en", "es", "fr", "pt", "sw", "ar", "zh", "vi", "ht")
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("BENCH_PG_DB", "outbox_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
WORKERS = 2
THREADS = 8
BATCH = 50


def redis_cpu(redis: Redis) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# ---- the emulator, in its own process --------------------------------------------------------


def _serve_emulator(ready: Any, stop: Any) -> None:
    from bot.emulator import EmulatorConfig, EmulatorServer
    from bot.emulator import server as emulator_server

    emulator_server._Server.request_queue_size = 1024
    config = EmulatorConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                            sms_number=SMS_FROM, whatsapp_number=WHATSAPP_FROM)
    server = EmulatorServer(config, port=0)
    # No status walk, no callbacks: the webhook is not part of this benchmark.
    server.emulator.delivery.start = lambda *args, **kwargs: None  # type: ignore[method-assign]
    server.start()
    ready.send(server.url)
    stop.wait()
    server.stop()


class EmulatorProcess:
    def __enter__(self) -> EmulatorProcess:
        ctx = mp.get_context("fork")
        parent, child = ctx.Pipe()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_serve_emulator, args=(child, self._stop), daemon=True)
        self._proc.start()
        self.url: str = parent.recv()
        return self

    def cpu(self) -> float:
        return cpu_seconds(self._proc.pid or 0)

    def count(self) -> int:
        from bot.emulator.control import EmulatorControl

        return int(EmulatorControl(self.url).health()["messages"])

    def messages(self) -> list[dict[str, Any]]:
        from bot.emulator.control import EmulatorControl

        return EmulatorControl(self.url).messages()

    def reset(self) -> None:
        from bot.emulator.control import EmulatorControl

        EmulatorControl(self.url).reset()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join(10)


# ---- ceiling: the twilio client alone --------------------------------------------------------


def _post_all(url: str, work: list[tuple[str, str]], go: Any, done: Any) -> None:
    from workers.send import make_client

    # The very client the workers build, so the two runs differ only by the path around it.
    client = make_client(Settings(twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                                  twilio_api_base_url=url))
    errors = 0

    def post(item: tuple[str, str]) -> bool:
        try:
            client.messages.create(to=item[0], from_=SMS_FROM, body=item[1])
        except Exception:  # noqa: BLE001 - counted
            return False
        return True

    with ThreadPoolExecutor(THREADS) as pool:
        go.wait()
        errors = sum(1 for ok in pool.map(post, work) if not ok)
    done.put((time.perf_counter(), errors, time.process_time()))


def ceiling(url: str, work: list[tuple[str, str]]) -> tuple[float, int, float]:
    """Seconds for WORKERS processes to post `work` (split between them); errors; the
    clients' CPU seconds."""
    ctx = mp.get_context("fork")
    go, done = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_post_all, args=(url, work[i::WORKERS], go, done))
             for i in range(WORKERS)]
    for p in procs:
        p.start()
    time.sleep(1.5)  # imports and clients ready before the clock starts
    started = time.perf_counter()
    go.set()
    results = [done.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return (max(r[0] for r in results) - started, sum(r[1] for r in results),
            sum(r[2] for r in results))


def daytime_zone() -> str:
    """A zone where it is about noon now, so no participant is inside quiet hours."""
    from datetime import UTC, datetime

    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc signs are inverted


# ---- databases ---------------------------------------------------------------------------------


def fresh_pg() -> str:
    admin = sa.create_engine(PG_ADMIN_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{PG_DB}"'))
    admin.dispose()
    return sa.make_url(PG_ADMIN_URL).set(database=PG_DB).render_as_string(hide_password=False)


def drop_pg() -> None:
    admin = sa.create_engine(PG_ADMIN_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)'))
    admin.dispose()


def prepare(url: str, count: int, channel: str, start: int) -> list[tuple[str, str]]:
    """Enrol `count` participants and start a daily check-in for each: their first
    questions wait in the outbox. Returns (to, body) of every outbox row."""
    from sqlmodel import Session, select

    from bot import conversation
    from bot.flow_registry import FlowRegistry
    from bot.store import schema
    from bot.store.db import get_engine
    from bot.store.models import Message, Participant
    from bot.store.types import utcnow

    schema.upgrade(url)
    settings = Settings(database_url=url, whatsapp_from=WHATSAPP_FROM, sms_from=SMS_FROM)
    registry = FlowRegistry(settings.flows_dir)
    now = utcnow()
    people = [{"code": f"B{start + i:06d}", "phone": f"+1202{start + i:07d}",
               "channel": channel, "sms_consent": True,
               "language": LANGUAGES[i % len(LANGUAGES)], "timezone": daytime_zone(),
               "consent": "opted_in", "checkin_time": "09:00", "fields_json": "{}",
               "whatsapp_window_closed": False, "last_inbound_at": now,
               "created_at": now, "updated_at": now} for i in range(count)]
    engine = get_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(Participant.__table__), people)  # type: ignore[attr-defined]
    ids: list[int] = []
    with Session(engine) as db:
        ids = list(db.exec(select(Participant.id).where(
            Participant.code.in_([p["code"] for p in people]))).all())  # type: ignore[attr-defined]
        db.rollback()
    for i in range(0, len(ids), 500):
        with Session(engine, expire_on_commit=False) as db:
            for pid in ids[i:i + 500]:
                p = db.get(Participant, pid)
                assert p is not None
                conversation.start_flow(db, p, "daily_checkin", now, settings=settings,
                                        registry=registry)
            db.commit()
    with Session(engine) as db:
        rows = db.exec(select(Message.address, Message.body, Message.channel).where(
            Message.direction == "out", Message.status == "pending")).all()
        db.rollback()
    return [((f"whatsapp:{a}" if c == "whatsapp" else a) or "", b or "") for a, b, c in rows]


# ---- the whole path ------------------------------------------------------------------------------


def worker_env(url: str, emulator_url: str, rate: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": url, "REDIS_URL": REDIS_URL,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_API_BASE_URL": emulator_url, "PUBLIC_BASE_URL": "",
                "SMS_FROM": SMS_FROM, "WHATSAPP_FROM": WHATSAPP_FROM, "SEND_RATE_LIMIT": rate,
                "OUTBOX_SEND_THREADS": str(THREADS), "OUTBOX_BATCH_SIZE": str(BATCH)})
    return env


@dataclass
class PathResult:
    seconds: float
    sent: int
    statuses: Counter[str]
    steady_rate: float
    worker_cpu: float
    postgres_cpu: float


def whole_path(url: str, emulator_url: str, new: int, rate: str) -> PathResult:
    """Deliver the `new` pending rows with WORKERS worker processes; time it."""
    from rq import Worker

    from bot.store.db import dispose_engines, get_engine
    from workers.sweep import sweep_outbox

    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    env = worker_env(url, emulator_url, rate)
    bot = str(Path(sys.executable).with_name("bot"))
    logs = [Path(tempfile.mkstemp(prefix="outbound-worker-", suffix=".log")[1])
            for _ in range(WORKERS)]
    procs = [subprocess.Popen([bot, "worker", "--quiet", "--queues", "outbox"],  # noqa: S603
                              cwd=ROOT, env=env, stdout=log.open("wb"),
                              stderr=subprocess.STDOUT) for log in logs]
    try:
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=redis)) < WORKERS:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"workers did not start (exit codes "
                                 f"{[p.poll() for p in procs]}): {_tails(procs, logs)}")
            time.sleep(0.1)
        time.sleep(1.0)
        settings = replace(Settings(database_url=url, redis_url=REDIS_URL),
                           outbox_batch_size=BATCH)
        count_sent = sa.text("SELECT count(*) FROM message WHERE direction = 'out' "
                             "AND twilio_sid IS NOT NULL")
        engine = get_engine(url)
        idle_cpu = sum(cpu_seconds(p.pid) for p in procs)  # start-up is not the path
        pg_before = postgres_backends(url)
        with engine.connect() as conn:
            before = int(conn.execute(count_sent).scalar_one())
            conn.rollback()
        expected = before + new
        started = time.perf_counter()
        enqueued = sweep_outbox(settings, redis)  # every due row to RQ, as after a crash
        last_sweep = time.perf_counter()
        done = before
        samples: list[tuple[float, int]] = []
        while done < expected:
            time.sleep(0.2)
            with engine.connect() as conn:
                done = int(conn.execute(count_sent).scalar_one())
                conn.rollback()
            samples.append((time.perf_counter(), done - before))
            if time.perf_counter() - last_sweep > 10:  # as production does, every 10 s
                sweep_outbox(settings, redis)
                last_sweep = time.perf_counter()
            if time.perf_counter() - started > 900:
                raise SystemExit(f"only {done} of {expected} sent after 900 s")
        seconds = time.perf_counter() - started
        worker_cpu = sum(cpu_seconds(p.pid) for p in procs) - idle_cpu
        pg_cpu = postgres_cpu_between(pg_before, postgres_backends(url))
        with engine.connect() as conn:
            statuses = Counter(dict(conn.execute(sa.text(
                "SELECT status, count(*) FROM message WHERE direction = 'out' "
                "GROUP BY status")).all()))
            conn.rollback()
        assert enqueued == new, (enqueued, new)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.unlink(missing_ok=True)
        dispose_engines(close=True)
        redis.close()
    return PathResult(seconds, done - before, statuses, _steady_rate(samples, new), worker_cpu,
                      pg_cpu)


def _steady_rate(samples: list[tuple[float, int]], total: int) -> float:
    """Messages a second from 10 % to 90 % done (no start-up, no tail), from the samples."""
    lo = next(((t, n) for t, n in samples if n >= total * 0.1), None)
    hi = next(((t, n) for t, n in samples if n >= total * 0.9), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return 0.0
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


def _tails(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> str:
    for p in procs:
        if p.poll() is None:
            p.terminate()
        p.wait(30)
    return "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)


# ---- main ----------------------------------------------------------------------------------


def _cpu_line(count: int, who: str, own: float, emulator: float, redis: float,
              postgres: float | None = None) -> str:
    per = 1000 / max(count, 1)
    pg = f", PostgreSQL {postgres * per:.2f} ms" if postgres is not None else ""
    return (f"    CPU per message: {who} {own * per:.2f} ms, emulator {emulator * per:.2f} ms, "
            f"Redis {redis * per:.2f} ms{pg}")


def run_db(name: str, url: str, emu: EmulatorProcess, messages: int,
           limited: int) -> dict[str, Any]:
    print(f"\n== {name} ==", flush=True)
    t = time.perf_counter()
    work = prepare(url, messages, "sms", 0)
    languages = Counter(LANGUAGES[i % len(LANGUAGES)] for i in range(messages))
    print(f"  set-up: {len(work)} check-ins started in {time.perf_counter() - t:.1f} s "
          f"({', '.join(f'{k} {v}' for k, v in sorted(languages.items()))}); "
          f"{statistics.mean(len(b) for _, b in work):.0f} characters on average", flush=True)

    emu.reset()
    redis = Redis.from_url(REDIS_URL)
    cpu0 = (emu.cpu(), redis_cpu(redis))
    seconds, errors, client_cpu = ceiling(emu.url, work)
    cpu1 = (emu.cpu(), redis_cpu(redis))
    ceiling_rate = len(work) / seconds
    print(f"  ceiling: the twilio client alone, {WORKERS} processes x {THREADS} threads, no DB, "
          f"no queue: {len(work)} in {seconds:.1f} s = {ceiling_rate:.0f} msg/s"
          f"{f' ({errors} errors)' if errors else ''}", flush=True)
    print(_cpu_line(len(work), "clients", client_cpu, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]),
          flush=True)

    emu.reset()
    cpu0 = (emu.cpu(), redis_cpu(redis))
    result = whole_path(url, emu.url, len(work), "1000000")
    cpu1 = (emu.cpu(), redis_cpu(redis))
    path_rate = result.sent / result.seconds
    at_emulator = emu.count()
    print(f"  whole path: outbox rows -> sweep -> RQ -> {WORKERS} workers x {THREADS} threads -> "
          f"rate check -> send -> SID and status stored: {result.sent} in {result.seconds:.1f} s"
          f" = {path_rate:.0f} msg/s (steady {result.steady_rate:.0f} msg/s)", flush=True)
    print(f"    statuses {dict(result.statuses)}; the emulator received {at_emulator}",
          flush=True)
    print(_cpu_line(result.sent, "workers", result.worker_cpu, cpu1[0] - cpu0[0],
                    cpu1[1] - cpu0[1], result.postgres_cpu if url.startswith("postgres") else None),
          flush=True)
    ratio = path_rate / ceiling_rate
    print(f"  ratio: {ratio:.0%} of the ceiling (goal >= 50%): "
          f"{'OK' if ratio >= 0.5 else 'BELOW GOAL'}", flush=True)

    out = {"ceiling": ceiling_rate, "path": path_rate, "ratio": ratio}
    if limited:
        wa = prepare(url, limited, "whatsapp", 100_000)
        emu.reset()
        limit = 100.0
        result = whole_path(url, emu.url, len(wa), f"{limit:g}")
        achieved = result.sent / result.seconds
        steady = result.steady_rate
        print(f"  rate limit {limit:g} msg/s ({len(wa)} WhatsApp messages, one sender): "
              f"{achieved:.1f} msg/s over the run ({achieved / limit - 1:+.1%}), "
              f"{steady:.1f} msg/s steady ({steady / limit - 1:+.1%}); goal within 5%: "
              f"{'OK' if abs(achieved / limit - 1) <= 0.05 else 'OUTSIDE'}", flush=True)
        out.update(limited=achieved, limited_steady=steady)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--limited", type=int, default=3_000,
                        help="WhatsApp messages for the 100 msg/s run (0: skip it)")
    parser.add_argument("--db", default="pg,sqlite", help="pg, sqlite or both, in order")
    args = parser.parse_args()
    print(f"outbound bench: {args.messages} messages, {WORKERS} worker processes x {THREADS} "
          f"threads, batches of {BATCH}; {os.cpu_count()} CPUs", flush=True)
    with EmulatorProcess() as emu, tempfile.TemporaryDirectory() as tmp:
        for name in args.db.split(","):
            if name == "pg":
                url = fresh_pg()
                try:
                    run_db("PostgreSQL", url, emu, args.messages, args.limited)
                finally:
                    drop_pg()
            elif name == "sqlite":
                run_db("SQLite", f"sqlite:///{tmp}/bench.db", emu, args.messages, args.limited)
            else:
                raise SystemExit(f"unknown database {name!r}")


if __name__ == "__main__":
    main()
