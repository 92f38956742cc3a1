"""The send job: deliver a batch of outbox rows through Twilio, at most once each.

    send_batch([101, 102, ...])     # RQ job; ids only

1. Claim: one UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING turns
   due "pending" rows (and "sending" rows whose lease ran out: their worker died) into
   "sending", stamps `claimed_at` and counts the attempt. Two jobs with the same ids never
   both get a row. On SQLite the write lock makes the same statement just as exclusive.
2. Decide, in the same transaction: consent again (opted out since → cancelled, never
   sent), the channel (WhatsApp window, template, SMS fallback or undeliverable).
3. Send on a small thread pool (HTTP waits, so threads overlap them), each send first
   taking its units from the shared per-sender rate limit.
4. Record each answer as it comes: the SID and Twilio's status, or what the error means
   (retry later, opted out, final). Rows to retry go back to "pending" with a due time and
   a scheduled job. A template that does not show the text marks its row `withheld_at` and
   flags the participant: the webhook delivers the text when they next write.

At most once: a row with a SID is never claimed again. A worker killed between Twilio's
answer and the commit leaves its row "sending"; once the lease is over the sweep sends it
again and the claim marks it `possible_duplicate`: at most one duplicate, and recorded.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import monotonic
from typing import Any

import requests
import sqlalchemy as sa
from redis import Redis
from sqlmodel import Session, SQLModel, col, select
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot import consent, delivery, logs, outbox, templates
from bot.config import Settings
from bot.ratelimit import RateLimiter, Throttled
from bot.schedule import QuietHours, ScheduleError, defer
from bot.store.db import get_engine
from bot.store.models import ConsentChange, Message, Participant
from bot.store.types import utcnow

_log = logs.get_logger("send")

#: The longest one send waits for its sender's rate budget before the row is handed back
#: to the queue for later; short, so a busy sender does not tie up a worker.
MAX_RATE_WAIT_S = 5.0
#: Kinds that go out at any hour: answers to what the participant just wrote, and safety
#: messages (urgent ones are exempt whatever their kind).
QUIET_EXEMPT = ("reply", "safety")
#: Answers are recorded together once this many are back or the oldest is this old.
RECORD_GROUP = 32
RECORD_EVERY_S = 0.05

_M = SQLModel.metadata.tables["message"]
_P = SQLModel.metadata.tables["participant"]

_CLAIMABLE = (
    sa.select(_M.c.id)
    .where(_M.c.id.in_(sa.bindparam("ids", expanding=True)), _M.c.direction == "out",
           _M.c.twilio_sid.is_(None),
           sa.or_(sa.and_(_M.c.status == "pending",
                          sa.or_(_M.c.due_at.is_(None), _M.c.due_at <= sa.bindparam("now"))),
                  sa.and_(_M.c.status == "sending", _M.c.claimed_at < sa.bindparam("expired"))))
    # PostgreSQL: rows another worker holds are skipped, not waited for. SQLite ignores it
    # (its transactions already hold the whole database).
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    sa.update(_M)
    .where(_M.c.id.in_(_CLAIMABLE))
    .values(status="sending", claimed_at=sa.bindparam("now"), attempts=_M.c.attempts + 1,
            # SET reads the old row: re-claiming a "sending" row means it may have gone out.
            possible_duplicate=sa.or_(_M.c.possible_duplicate, _M.c.status == "sending"),
            updated_at=sa.bindparam("now"))
    .returning(_M.c.id, _M.c.participant_id, _M.c.channel, _M.c.address, _M.c.body,
               _M.c.segments, _M.c.kind, _M.c.urgent, _M.c.purpose, _M.c.language,
               _M.c.attempts, _M.c.possible_duplicate, _M.c.created_at)
)
_PARTICIPANTS = (
    sa.select(_P.c.id, _P.c.code, _P.c.phone, _P.c.consent, _P.c.erased_at, _P.c.sms_consent,
              _P.c.language, _P.c.last_inbound_at, _P.c.whatsapp_window_closed,
              _P.c.timezone)
    .where(_P.c.id.in_(sa.bindparam("ids", expanding=True)))
)
_SET = sa.update(_M).where(_M.c.id == sa.bindparam("b_id"))
_RECORD_SENT = (
    sa.update(_M)
    .where(_M.c.id == sa.bindparam("b_id"), _M.c.twilio_sid.is_(None))
    .values(twilio_sid=sa.bindparam("b_sid"), status=sa.bindparam("b_status"),
            channel=sa.bindparam("b_channel"), sender=sa.bindparam("b_sender"),
            content_sid=sa.bindparam("b_content_sid"),
            content_variables=sa.bindparam("b_content_variables"),
            withheld_at=sa.bindparam("b_withheld_at"),
            sent_at=sa.bindparam("b_now"), updated_at=sa.bindparam("b_now"),
            error_code=None, last_error=None)
)
#: Their next message gets the withheld text (bot/conversation.py reads the flag from the
#: row it locks anyway). Rows already flagged are not touched, so not locked either.
_FLAG_WITHHELD = (
    sa.update(_P)
    .where(_P.c.id.in_(sa.bindparam("ids", expanding=True)), _P.c.whatsapp_withheld == sa.false())
    .values(whatsapp_withheld=True)
)
_REPEND = (
    sa.update(_M)
    .where(_M.c.id == sa.bindparam("b_id"), _M.c.status == "sending")
    .values(status="pending", due_at=sa.bindparam("b_due"), claimed_at=None,
            attempts=_M.c.attempts - sa.bindparam("b_refund"),
            error_code=sa.bindparam("b_code"), last_error=sa.bindparam("b_error"),
            possible_duplicate=sa.or_(_M.c.possible_duplicate, sa.bindparam("b_maybe_sent")),
            updated_at=sa.bindparam("b_now"))
)


# ---- the per-process context ------------------------------------------------------------------


def make_client(settings: Settings) -> Client:
    """The Twilio client a worker sends with (the emulator's when TWILIO_API_BASE_URL is set).

    requests re-reads the proxy and CA-bundle variables from the environment on every
    request, a scan of all of `os.environ` that costs about as much as the rest of the
    client; they cannot change while the process runs, so they are read once here.
    """
    from bot.emulator import client_from_settings

    client = client_from_settings(settings)
    http = client.http_client
    session = getattr(http, "session", None)
    if session is not None:
        http.proxy = requests.utils.get_environ_proxies(
            settings.twilio_api_base_url or "https://api.twilio.com")
        session.verify = (os.environ.get("REQUESTS_CA_BUNDLE")
                          or os.environ.get("CURL_CA_BUNDLE") or True)
        session.trust_env = False
    return client


@dataclass
class _Held:
    units: int
    at: float


class Budget:
    """This process's share of the senders' rate budgets, taken from the shared limiter
    (Redis) a little ahead: about RESERVE_S worth of units per call, so a fast sender does
    not cost a Redis round trip per message. Slow senders (a long code's 1 a second) still
    take one unit at a time. Units not used within MAX_HOLD_S are dropped, never saved up
    into a burst."""

    RESERVE_S = 0.05
    MAX_HOLD_S = 0.5
    MAX_RESERVE = 64

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self._held: dict[str, _Held] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def take(self, kind: str, key: str, segments: int, *, max_wait: float) -> None:
        """Take one message's units, waiting up to `max_wait`; else raise Throttled."""
        limit = self.limiter.limit_for(kind)
        cost = limit.cost(segments)
        # One thread per sender asks Redis at a time; the others then find units held.
        lock = self._lock(key)
        started = monotonic()
        if not lock.acquire(timeout=max_wait):
            raise Throttled(key, max_wait)
        try:
            held = self._held.get(key)
            now = monotonic()
            if held is not None and held.units >= cost and now - held.at <= self.MAX_HOLD_S:
                held.units -= cost
                return
            chunk = max(1, min(int(limit.rate_per_s * self.RESERVE_S), limit.burst,
                               self.MAX_RESERVE))
            want = max(cost, chunk)
            self.limiter.wait_for(key, want, rate_per_s=limit.rate_per_s, burst=limit.burst,
                                  max_wait=max(0.0, max_wait - (now - started)))
            self._held[key] = _Held(want - cost, monotonic())
        finally:
            lock.release()


@dataclass
class SendContext:
    """What a worker process keeps between jobs: the client, the limiter, the thread pool."""

    settings: Settings
    redis: Redis
    client: Client
    limiter: Budget | None
    pool: ThreadPoolExecutor
    status_callback: str | None
    pid: int = field(default_factory=os.getpid)

    @classmethod
    def create(cls, settings: Settings, redis: Redis, client: Client | None = None,
               *, status_callback: bool = True) -> SendContext:
        limits = delivery.rate_limits(settings)
        templates.registry_for(settings.whatsapp_templates)  # a broken file fails here, loudly
        return cls(
            settings=settings, redis=redis,
            client=client or make_client(settings),
            limiter=Budget(RateLimiter(redis, limits=limits)) if limits is not None else None,
            pool=ThreadPoolExecutor(max(1, settings.outbox_send_threads),
                                    thread_name_prefix="send"),
            status_callback=(settings.public_base_url.rstrip("/") + "/twilio/status"
                             if status_callback and settings.public_base_url else None))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        session = getattr(self.client.http_client, "session", None)
        if session is not None:
            session.close()


_context: SendContext | None = None
_context_lock = threading.Lock()


def context() -> SendContext:
    """This process's context, made on first use (and again in a forked child)."""
    global _context
    with _context_lock:
        if _context is None or _context.pid != os.getpid():
            from rq import get_current_job

            settings = Settings.from_env()
            job = get_current_job()
            redis = job.connection if job is not None else Redis.from_url(settings.redis_url)
            _context = SendContext.create(settings, redis)
        return _context


def set_context(ctx: SendContext | None) -> None:
    """Use `ctx` in this process (the worker entry point, tests)."""
    global _context
    with _context_lock:
        _context = ctx


def send_batch(ids: list[int]) -> dict[str, int]:
    """RQ job: deliver these outbox rows. Only ids travel through Redis."""
    return deliver(context(), [int(i) for i in ids])


# ---- claim and decide ---------------------------------------------------------------------


@dataclass(slots=True)
class Claimed:
    id: int
    participant_id: int | None
    participant_code: str | None
    kind: str
    segments: int
    attempts: int
    plan: delivery.Plan
    sender: delivery.Sender


@dataclass(slots=True)
class Result:
    item: Claimed
    sid: str | None = None
    status: str | None = None
    failure: delivery.Failure | None = None
    retry_after: float | None = None  # throttled by our own rate limit


@dataclass
class Counts:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    throttled: int = 0
    failed: int = 0
    cancelled: int = 0
    undeliverable: int = 0
    held: int = 0  # quiet hours
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _recipient(row: Any, p: Any | None, default_language: str) -> delivery.Recipient:
    if p is None:  # staff: the address on the row, no window we know of
        return delivery.Recipient(phone=row.address, language=row.language or default_language,
                                  window_known=False)
    return delivery.Recipient(phone=p.phone, language=p.language or default_language,
                              sms_consent=bool(p.sms_consent), last_inbound_at=p.last_inbound_at,
                              whatsapp_window_closed=bool(p.whatsapp_window_closed))


def _opted_out_before(db: Session, participant_id: int, created_at: datetime) -> bool:
    """Was the participant already opted out when this row was made? Then only an explicit
    override (urgent, `enqueue(override_consent=True)`) can have made it."""
    last = db.exec(select(ConsentChange.at)
                   .where(ConsentChange.participant_id == participant_id,
                          ConsentChange.state == consent.OPTED_OUT)
                   .order_by(col(ConsentChange.at).desc()).limit(1)).first()
    return last is not None and last <= created_at


def _quiet_until(p: Any, now: datetime, quiet: QuietHours) -> datetime | None:
    """When quiet hours end for `p`, if they are on now (else None)."""
    try:
        until = defer(now, p.timezone or "UTC", quiet)
    except ScheduleError:
        return None  # a broken zone is the scheduler's to report; do not hold messages on it
    return until if until > now else None


def claim(ctx: SendContext, db: Session, ids: list[int], now: datetime, counts: Counts,
          later: list[tuple[int, datetime]] | None = None) -> list[Claimed]:
    """Claim the due rows among `ids` and decide how each goes out. Rows held back for
    quiet hours are appended to `later` as (id, due) for a job at that time."""
    from bot.nudges import load_study_schedule  # nudges imports the outbox: import late

    settings = ctx.settings
    expired = now - timedelta(seconds=settings.outbox_lease_seconds)
    conn = db.connection()
    rows = conn.execute(_CLAIM, {"ids": ids, "now": now, "expired": expired}).all()
    counts.claimed = len(rows)
    counts.skipped = len(ids) - len(rows)
    if not rows:
        return []
    pids = sorted({r.participant_id for r in rows if r.participant_id is not None})
    people = {p.id: p for p in conn.execute(_PARTICIPANTS, {"ids": pids})} if pids else {}
    registry = templates.registry_for(settings.whatsapp_templates)
    values = {"study_name": settings.study_name, "study_contact": settings.study_contact}
    whatsapp_ready = delivery.sender_for(settings, "whatsapp") is not None
    quiet = load_study_schedule(settings.flows_dir).quiet
    out: list[Claimed] = []
    for row in rows:
        p = people.get(row.participant_id) if row.participant_id is not None else None
        if row.participant_id is not None and (
                p is None or p.erased_at is not None or
                (p.consent == consent.OPTED_OUT and not (
                    row.urgent and _opted_out_before(db, p.id, row.created_at)))):
            conn.execute(_SET.values(status="cancelled", claimed_at=None, updated_at=now,
                                     last_error="opted out before sending"), {"b_id": row.id})
            counts.cancelled += 1
            continue
        if p is not None and not row.urgent and row.kind not in QUIET_EXEMPT:
            # Nudges are planned outside quiet hours; this catches the late ones (retries,
            # a backlog after an outage): 08:00 local, not 23:00.
            until = _quiet_until(p, now, quiet)
            if until is not None:
                conn.execute(_REPEND, {"b_id": row.id, "b_due": until, "b_refund": 1,
                                       "b_code": None, "b_error": "held for quiet hours",
                                       "b_maybe_sent": False, "b_now": now})
                counts.held += 1
                if later is not None:
                    later.append((row.id, until))
                continue
        plan = delivery.plan(row.channel, row.body or "",
                             _recipient(row, p, settings.default_language),
                             purpose=row.purpose, now=now, templates=registry,
                             template_values=values, whatsapp_ready=whatsapp_ready,
                             urgent=row.urgent)
        sender = (delivery.sender_for(settings, plan.channel)
                  if isinstance(plan, delivery.Plan) else None)
        if isinstance(plan, delivery.Undeliverable) or sender is None:
            reason = plan.reason if isinstance(plan, delivery.Undeliverable) else (
                f"no {plan.channel} sender configured")
            msg = db.get(Message, row.id)
            assert msg is not None
            outbox.record_final_failure(db, msg, delivery.Failure(
                delivery.Action.FINAL, None, reason), now=now, status="undeliverable")
            counts.undeliverable += 1
            continue
        out.append(Claimed(row.id, row.participant_id, p.code if p is not None else None,
                           row.kind, row.segments or 1, row.attempts, plan, sender))
    return out


# ---- send ---------------------------------------------------------------------------------------


def _send_one(ctx: SendContext, item: Claimed) -> Result:
    plan, sender = item.plan, item.sender
    if ctx.limiter is not None:
        try:
            ctx.limiter.take(sender.kind, sender.key, item.segments, max_wait=MAX_RATE_WAIT_S)
        except Throttled as exc:
            return Result(item, retry_after=exc.retry_after)
    kwargs: dict[str, Any] = {"to": plan.to}
    if sender.from_:
        kwargs["from_"] = sender.from_
    else:
        kwargs["messaging_service_sid"] = sender.messaging_service_sid
    if plan.content_sid:
        kwargs["content_sid"] = plan.content_sid
        kwargs["content_variables"] = plan.content_variables
    else:
        kwargs["body"] = plan.body
    if ctx.status_callback:
        kwargs["status_callback"] = ctx.status_callback
    try:
        sent = ctx.client.messages.create(**kwargs)
    except TwilioRestException as exc:
        return Result(item, failure=delivery.classify_rest_error(exc.status, exc.code))
    except requests.RequestException as exc:
        return Result(item, failure=delivery.classify_transport_error(exc))
    return Result(item, sid=sent.sid, status=str(sent.status or "queued"))


def deliver(ctx: SendContext, ids: list[int], now: datetime | None = None) -> dict[str, int]:
    """Claim, send and record the rows among `ids` that are due and unsent."""
    counts = Counts()
    if not ids:
        return counts.as_dict()
    url = ctx.settings.database_url
    outbox.unmark(ctx.redis, ids)
    later: list[tuple[int, datetime]] = []
    with outbox.write_lock(url), Session(get_engine(url), expire_on_commit=False) as db:
        items = claim(ctx, db, ids, now or utcnow(), counts, later)
        db.commit()
    pending: set[Future[Result]] = {ctx.pool.submit(_send_one, ctx, item) for item in items}
    back: list[Result] = []  # answered, not yet recorded
    oldest = 0.0
    try:
        while pending or back:
            if pending:
                timeout = None if not back else max(0.0, RECORD_EVERY_S - (monotonic() - oldest))
                done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                if done and not back:
                    oldest = monotonic()
                back.extend(f.result() for f in done)
            # Record in small groups: a transaction per answer would cost more than the send,
            # and the group's age bounds what a crash can leave unrecorded (then resent).
            if back and (not pending or len(back) >= RECORD_GROUP
                         or monotonic() - oldest >= RECORD_EVERY_S):
                later.extend(_record(ctx, back, counts))
                back = []
    finally:
        if later:
            outbox.dispatch(ctx.redis, later, batch_size=ctx.settings.outbox_batch_size)
    if counts.claimed or counts.failed or counts.undeliverable:
        logs.event(_log, "outbox_batch", **counts.as_dict())
    return counts.as_dict()


# ---- record ----------------------------------------------------------------------------------


def _record(ctx: SendContext, results: list[Result], counts: Counts) -> list[tuple[int, datetime]]:
    """Store what Twilio said; return the rows to try again later (id, due)."""
    now = utcnow()
    url = ctx.settings.database_url
    sent: list[dict[str, Any]] = []
    repend: list[dict[str, Any]] = []
    later: list[tuple[int, datetime]] = []
    other: list[Result] = []
    withheld: set[int] = set()  # participants with a text withheld in this group
    for r in results:
        item = r.item
        if r.sid is not None:
            sent.append({"b_id": item.id, "b_sid": r.sid, "b_status": r.status,
                         "b_channel": item.plan.channel, "b_sender": item.sender.shown,
                         "b_content_sid": item.plan.content_sid,
                         "b_content_variables": item.plan.content_variables,
                         "b_withheld_at": now if item.plan.withheld else None, "b_now": now})
            if item.plan.withheld and item.participant_id is not None:
                withheld.add(item.participant_id)
        elif r.retry_after is not None:
            due = now + timedelta(seconds=r.retry_after)
            repend.append({"b_id": item.id, "b_due": due, "b_refund": 1, "b_code": None,
                           "b_error": "waiting for the sender's rate limit",
                           "b_maybe_sent": False, "b_now": now})
            later.append((item.id, due))
            counts.throttled += 1
        elif r.failure is not None and delivery.retryable(r.failure, item.attempts):
            due = now + delivery.backoff(item.attempts, r.failure.action)
            repend.append({"b_id": item.id, "b_due": due, "b_refund": 0,
                           "b_code": r.failure.code, "b_error": r.failure.text[:200],
                           "b_maybe_sent": r.failure.maybe_sent, "b_now": now})
            later.append((item.id, due))
            counts.retried += 1
            logs.event(_log, "outbox_retry", level=30, message=item.id,
                       error_code=r.failure.code, reason=r.failure.reason,
                       attempt=item.attempts, due_at=due.isoformat())
        else:
            other.append(r)
    with outbox.write_lock(url), Session(get_engine(url), expire_on_commit=False) as db:
        conn = db.connection()
        if withheld:
            # The participant's row before the messages': the webhook locks in that order.
            conn.execute(_FLAG_WITHHELD, {"ids": sorted(withheld)})
        if sent:
            conn.execute(_RECORD_SENT, sent)
            counts.sent += len(sent)
        if repend:
            conn.execute(_REPEND, repend)
        for r in other:
            later.extend(_failed(db, r, now, counts))
        if sent and ctx.status_callback:
            outbox.apply_early_callbacks(db, [s["b_sid"] for s in sent], now=now)
        db.commit()
    return later


def _failed(db: Session, r: Result, now: datetime, counts: Counts) -> list[tuple[int, datetime]]:
    """Errors that change more than the row: opted out, window closed, final."""
    assert r.failure is not None
    failure, item = r.failure, r.item
    msg = db.get(Message, item.id, with_for_update=True)
    if msg is None or msg.status != "sending":
        return []
    msg.error_code = failure.code
    if failure.action is delivery.Action.OPTED_OUT and msg.participant_id is not None:
        p = db.get(Participant, msg.participant_id, with_for_update=True)
        if p is not None:
            consent.opt_out(db, p, source="error_21610", actor_name="system:twilio", now=now,
                            message_id=msg.id)
            outbox.cancel_pending(db, msg.participant_id, "participant opted out (21610)", now)
        outbox.record_final_failure(db, msg, failure, now=now)
        counts.failed += 1
        return []
    if failure.action is delivery.Action.WINDOW:
        # Refused at create (usually it comes as a status callback): the row has no SID,
        # so it can simply go round again; the closed window makes it a template or SMS.
        p = db.get(Participant, msg.participant_id) if msg.participant_id else None
        if item.plan.content_sid or p is None:
            msg.channel = "sms"
        elif not p.whatsapp_window_closed:
            from bot import participants

            participants.update(db, p, actor="system:twilio",
                                action="participant.whatsapp_window", whatsapp_window_closed=True)
        if p is not None and msg.channel == "sms" and not p.sms_consent:
            outbox.record_final_failure(db, msg, delivery.Failure(
                delivery.Action.FINAL, failure.code, "WhatsApp refused, and no SMS consent"),
                now=now, status="undeliverable")
            counts.undeliverable += 1
            return []
        msg.status, msg.due_at, msg.claimed_at = "pending", now, None
        msg.last_error, msg.updated_at = failure.text, now
        db.add(msg)
        counts.retried += 1
        return [(item.id, now)]
    if failure.action in (delivery.Action.RETRY, delivery.Action.SLOW_RETRY):
        failure = delivery.Failure(failure.action, failure.code,
                                   f"{failure.reason}; gave up after {item.attempts} attempts")
    outbox.record_final_failure(db, msg, failure, now=now)
    counts.failed += 1
    return []


def quiet_http_logs() -> None:
    """twilio's HTTP client logs request URLs and parameters (numbers) at INFO."""
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


__all__ = ["SendContext", "claim", "context", "deliver", "send_batch", "set_context"]
