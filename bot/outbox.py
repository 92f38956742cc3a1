"""The outbox: every outbound message is a `message` row first, and an RQ job second.

    msg = outbox.enqueue(db, participant=p, body=text, kind="nudge")
    outbox.dispatch_after_commit(db, redis)   # the job is enqueued once the commit succeeded
    db.commit()

The database is the truth. A job carries message ids only (never a body or a number), and
is enqueued after the commit, so a worker never looks for a row that is not there yet. A
crash between the commit and the enqueue, a lost job or a flushed Redis leave the row
"pending", and the periodic sweep (`workers.sweep.sweep_outbox`) enqueues it again.

Statuses of an outbound row: pending (waiting for a worker) → sending (claimed) → queued /
accepted (Twilio has it) → sent → delivered | undelivered | failed | read. Besides those:
suppressed (refused at enqueue: opted out), cancelled (opt-out or erasure before it left),
undeliverable (WhatsApp window closed, no template, no SMS consent), failed (final error).

A row sent as a WhatsApp template that does not show its text is `withheld_at`: the text
goes out in the reply to the participant's next message (`release_withheld`, called by the
webhook), or expires.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from redis import Redis
from rq import Queue
from sqlalchemy import event
from sqlmodel import Session, SQLModel, col, select

from . import audit, consent, delivery, logs, participants
from .engine.segments import segments
from .store.db import is_sqlite
from .store.models import ConsentChange, Message, Participant, StatusCallback
from .store.types import utcnow

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

_log = logs.get_logger("outbox")

QUEUE: Final = "outbox"
SEND_JOB: Final = "workers.send.send_batch"
DEFAULT_BATCH: Final = 50
#: Jobs must finish well within this; a killed one is healed by the lease and the sweep.
JOB_TIMEOUT: Final = 600
#: "A job for this id is in Redis": set when a job is enqueued, removed when a worker takes
#: it. The sweep skips marked ids, so a backlog is not enqueued twice; after a Redis flush
#: the marks are gone too, and the sweep enqueues everything still pending.
MARK_PREFIX: Final = "trialbot:outbox:job:"
MARK_TTL_S: Final = 300
#: A scheduled (future) job's mark lives until this long after it is due: if no scheduler
#: moved it by then, the sweep takes over.
MARK_GRACE_S: Final = 60
ACTOR: Final = "system:outbox"

#: Not yet handed to Twilio (no SID): what opt-out and erasure may still stop.
UNSENT: Final = ("pending", "queued")
#: Statuses a row ends in when it will not be delivered; `bot outbox list` shows them.
PROBLEMS: Final = ("failed", "undelivered", "undeliverable", "suppressed")

_INFO_ROWS: Final = "trialbot.outbox.rows"
_INFO_HOOK: Final = "trialbot.outbox.hook"
_INFO_LISTENING: Final = "trialbot.outbox.listening"


# ---- enqueue ---------------------------------------------------------------------------------


def enqueue(db: Session, *, participant: Participant | None, to: str | None = None, body: str,
            kind: str, channel: str | None = None, due_at: datetime | None = None,
            urgent: bool = False, purpose: str | None = None, session_id: str | None = None,
            step: str | None = None, language: str | None = None,
            override_consent: bool = False, now: datetime | None = None) -> Message:
    """Add an outbound message to the caller's transaction; the caller commits.

    For a participant, the number, channel and language are theirs unless given. A message
    for someone else (a navigator) names `to` ("+1...", or "whatsapp:+1..."). An opted-out
    or erased participant gets nothing: the row is stored as "suppressed" (and audited) so
    the refusal is visible. `override_consent` lets one urgent safety message through an
    opt-out; the caller checks that the study allows it.
    """
    now = now or utcnow()
    if override_consent and not urgent:
        raise ValueError("override_consent is for urgent safety messages only")
    if participant is None and not to:
        raise ValueError("a message needs a participant or a `to` number")
    address = participant.phone if participant is not None else None
    if to:
        prefix, _, number = to.rpartition(":")
        address = number
        if prefix == "whatsapp":
            channel = channel or "whatsapp"
    channel = channel or (participant.channel if participant is not None else "sms")
    if channel not in ("sms", "whatsapp"):
        raise ValueError(f"unknown channel {channel!r}")
    if participant is not None:
        language = language or participant.language
    status = "pending"
    refused = participant is not None and not consent.may_message(participant)
    if refused and not (override_consent and participant is not None
                        and participant.erased_at is None):
        status = "suppressed"
    msg = Message(participant_id=participant.id if participant is not None else None,
                  direction="out", channel=channel, address=address, body=body, kind=kind,
                  status=status, session_id=session_id, step=step, language=language,
                  segments=segments(body), attempts=0, due_at=due_at or now, urgent=urgent,
                  purpose=purpose, created_at=now, updated_at=now)
    db.add(msg)
    db.flush()
    assert msg.id is not None
    if status == "suppressed":
        audit.record(db, actor=ACTOR, action="outbox.suppressed", entity="message",
                     entity_id=msg.id, at=now,
                     new={"participant_id": msg.participant_id, "kind": kind,
                          "reason": "opted out" if participant and participant.erased_at is None
                          else "erased"})
        logs.event(_log, "outbox_suppressed", message=msg.id, kind=kind,
                   participant=participant.code if participant else None)
        return msg
    if refused:
        audit.record(db, actor=ACTOR, action="outbox.consent_override", entity="message",
                     entity_id=msg.id, at=now,
                     new={"participant_id": msg.participant_id, "kind": kind, "urgent": True})
    _listen(db)
    db.info.setdefault(_INFO_ROWS, {})[msg.id] = msg.due_at
    return msg


# ---- dispatch --------------------------------------------------------------------------------


def _mark_key(message_id: int) -> str:
    return f"{MARK_PREFIX}{message_id}"


def _chunks(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(ids), size):
        yield list(ids[i:i + size])


def _job_options(ids: list[int]) -> dict[str, Any]:
    # A short description: RQ logs it, and the ids are all it needs to show.
    return {"timeout": JOB_TIMEOUT, "result_ttl": 0, "failure_ttl": 7 * 24 * 3600,
            "description": f"send {len(ids)} message{'s' if len(ids) != 1 else ''}"}


def dispatch(redis: Redis, items: Iterable[int | tuple[int, datetime | None]], *,
             now: datetime | None = None, batch_size: int = DEFAULT_BATCH,
             queue_name: str = QUEUE) -> int:
    """Enqueue send jobs for committed rows: ids, or (id, due_at) pairs.

    Ids that already have a job waiting (their mark is set) are skipped; rows due later are
    scheduled for their time (`bot worker --with-scheduler` moves them). Returns how many
    ids got a job. Safe to call twice: the send job claims rows, so even a duplicate job
    sends nothing twice.
    """
    now = now or utcnow()
    pairs = [(i, None) if isinstance(i, int) else (int(i[0]), i[1]) for i in items]
    if not pairs:
        return 0
    ttls = []
    for _mid, due in pairs:
        wait = (due - now).total_seconds() if due is not None else 0.0
        ttls.append(int(max(wait, 0) + (MARK_GRACE_S if wait > 0 else MARK_TTL_S)) + 1)
    pipe = redis.pipeline(transaction=False)
    for (mid, _due), ttl in zip(pairs, ttls, strict=True):
        pipe.set(_mark_key(mid), b"1", nx=True, ex=ttl)
    taken = [pair for pair, ok in zip(pairs, pipe.execute(), strict=True) if ok]
    if not taken:
        return 0
    queue = Queue(queue_name, connection=redis)
    soon = sorted(mid for mid, due in taken if due is None or due <= now + timedelta(seconds=1))
    later: dict[datetime, list[int]] = {}
    for mid, due in taken:
        if due is not None and due > now + timedelta(seconds=1):
            later.setdefault(due.replace(microsecond=0) + timedelta(seconds=1), []).append(mid)
    pipe = redis.pipeline()
    if soon:
        queue.enqueue_many([Queue.prepare_data(SEND_JOB, args=(chunk,), **_job_options(chunk))
                            for chunk in _chunks(soon, batch_size)], pipeline=pipe)
    pipe.execute()
    for at, ids in sorted(later.items()):
        for chunk in _chunks(sorted(ids), batch_size):
            queue.enqueue_at(at, SEND_JOB, chunk, **_rq_kwargs(chunk))
    return len(taken)


def _rq_kwargs(ids: list[int]) -> dict[str, Any]:
    opts = _job_options(ids)
    return {"job_timeout": opts["timeout"], "result_ttl": opts["result_ttl"],
            "failure_ttl": opts["failure_ttl"], "description": opts["description"]}


def unmark(redis: Redis, ids: Iterable[int]) -> None:
    """A worker took these ids: from now on the lease (not the mark) protects them."""
    keys = [_mark_key(i) for i in ids]
    if keys:
        redis.delete(*keys)


@dataclass
class _Hook:
    redis: Redis
    batch_size: int
    queue_name: str


def dispatch_after_commit(target: Session | Iterable[int], redis: Redis, *,
                          messages: Iterable[Message | int] = (),
                          batch_size: int = DEFAULT_BATCH, queue_name: str = QUEUE) -> int:
    """Send after the commit: the rows are then in the database for the workers to find.

    With a Session: every row `enqueue` added in this transaction, every outbound pending
    row flushed from now on (e.g. by `conversation.start_flow`) and `messages` get their
    jobs right after the session commits; nothing happens on rollback. Returns 0 then.
    With ids (the caller has committed): dispatch them now and return how many got a job.
    If the process dies before the enqueue, the sweep enqueues the rows later.
    """
    if not isinstance(target, Session):
        return dispatch(redis, list(target), batch_size=batch_size, queue_name=queue_name)
    db = target
    rows: dict[int, datetime | None] = db.info.setdefault(_INFO_ROWS, {})
    unflushed = [m for m in messages if isinstance(m, Message) and m.id is None]
    if unflushed:
        db.flush()
    for m in messages:
        if isinstance(m, Message):
            assert m.id is not None
            rows[m.id] = m.due_at
        else:
            rows[int(m)] = None
    db.info[_INFO_HOOK] = _Hook(redis, batch_size, queue_name)
    _listen(db)
    return 0


def _listen(db: Session) -> None:
    # Listeners stay for the session's life (they cannot be removed while they run); without
    # a hook in `db.info` they only forget the transaction's rows at its end.
    if not db.info.get(_INFO_LISTENING):
        db.info[_INFO_LISTENING] = True
        event.listen(db, "after_flush", _collect_flushed)
        event.listen(db, "after_commit", _after_commit)
        event.listen(db, "after_rollback", _after_rollback)


def _collect_flushed(db: Session, _context: Any) -> None:
    if db.info.get(_INFO_HOOK) is None:
        return
    rows = db.info.setdefault(_INFO_ROWS, {})
    for obj in db.new:
        if (isinstance(obj, Message) and obj.direction == "out" and obj.status == "pending"
                and obj.id is not None):
            rows[obj.id] = obj.due_at


def _forget(db: Session) -> tuple[_Hook | None, dict[int, datetime | None]]:
    hook = db.info.pop(_INFO_HOOK, None)
    rows = db.info.pop(_INFO_ROWS, None) or {}
    return hook, rows


def _after_commit(db: Session) -> None:
    hook, rows = _forget(db)
    if hook is None or not rows:
        return
    try:
        dispatch(hook.redis, list(rows.items()), batch_size=hook.batch_size,
                 queue_name=hook.queue_name)
    except Exception as exc:  # noqa: BLE001 - committed rows are safe; the sweep sends them
        logs.event(_log, "outbox_dispatch_failed", level=30, messages=len(rows),
                   error=type(exc).__name__)


def _after_rollback(db: Session) -> None:
    _forget(db)


# ---- cancelling ----------------------------------------------------------------------------


def cancel_pending(db: Session, participant_id: int, reason: str,
                   now: datetime | None = None) -> int:
    """Cancel what has not left for Twilio yet (opt-out, erasure); returns how many.

    Rows a worker holds ("sending") are past stopping; the send job re-checks consent when
    it claims, so only a send already in flight can still go out.
    """
    now = now or utcnow()
    result = db.execute(
        sa.update(Message)
        .where(col(Message.participant_id) == participant_id, col(Message.direction) == "out",
               col(Message.status).in_(UNSENT), col(Message.twilio_sid).is_(None))
        .values(status="cancelled", last_error=reason[:200], updated_at=now)
        .execution_options(synchronize_session=False))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(db, actor=ACTOR, action="outbox.cancelled", entity="participant",
                     entity_id=participant_id, at=now, new={"messages": count, "reason": reason})
    return count


# ---- withheld texts --------------------------------------------------------------------------

_M = SQLModel.metadata.tables["message"]
_S = SQLModel.metadata.tables["conversation_session"]
_P = SQLModel.metadata.tables["participant"]
_WITHHELD = (
    sa.select(_M.c.id, _M.c.body, _M.c.kind, _M.c.language, _M.c.session_id, _M.c.step,
              _M.c.status, _M.c.created_at, _M.c.withheld_at, _S.c.ended_at)
    .select_from(_M.outerjoin(_S, _S.c.id == _M.c.session_id))
    .where(_M.c.participant_id == sa.bindparam("pid"), _M.c.direction == "out",
           _M.c.withheld_at.is_not(None), _M.c.withheld_outcome.is_(None))
    .order_by(_M.c.withheld_at, _M.c.id)
)
_LAST_OPT_OUT = (
    sa.select(sa.func.max(col(ConsentChange.at)))
    .where(col(ConsentChange.participant_id) == sa.bindparam("pid"),
           col(ConsentChange.state) == consent.OPTED_OUT)
)
_RESOLVE = (
    sa.update(_M).where(_M.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(withheld_outcome=sa.bindparam("outcome"), updated_at=sa.bindparam("now"))
)
_UNFLAG = sa.update(_P).where(_P.c.id == sa.bindparam("pid")).values(whatsapp_withheld=False)


@dataclass(frozen=True, slots=True)
class Withheld:
    """A text to deliver in the reply: what it was, and where it belongs."""

    id: int
    body: str
    kind: str
    language: str | None
    session_id: str | None
    step: str | None


def release_withheld(db: Session, participant_id: int, *, now: datetime,
                     reply_to_id: int | None) -> list[Withheld]:
    """The participant wrote (their WhatsApp window is open): their withheld texts still
    worth sending, in the order the templates went out, marked `delivered` for the caller to
    put in its reply; the stale ones are marked `expired`. Clears the participant's flag.

    The caller holds the participant's row lock, so a worker cannot flag them in between.
    """
    conn = db.connection()
    found = conn.execute(_WITHHELD, {"pid": participant_id}).all()
    conn.execute(_UNFLAG, {"pid": participant_id})
    if not found:
        return []
    opted_out_at = conn.execute(_LAST_OPT_OUT, {"pid": participant_id}).scalar()
    out: list[Withheld] = []
    expired: list[tuple[int, datetime, str]] = []
    for r in found:
        why = "no text" if not r.body else delivery.withheld_expiry(
            withheld_at=r.withheld_at, created_at=r.created_at, now=now,
            template_failed=r.status in ("failed", "undelivered"),
            conversation_ended_at=r.ended_at, opted_out_at=opted_out_at)
        if why is None:
            out.append(Withheld(r.id, r.body, r.kind, r.language, r.session_id, r.step))
        else:
            expired.append((r.id, r.withheld_at, why))
    if out:
        conn.execute(_RESOLVE, {"ids": [w.id for w in out], "outcome": "delivered", "now": now})
    if expired:
        conn.execute(_RESOLVE, {"ids": [e[0] for e in expired], "outcome": "expired",
                                "now": now})
    withheld_at = {r.id: r.withheld_at for r in found}
    stream = audit.participant_stream(participant_id)
    for w in out:
        audit.record(db, actor=ACTOR, action="outbox.withheld_delivered", entity="message",
                     entity_id=w.id, at=now, stream=stream,
                     new={"participant_id": participant_id, "kind": w.kind,
                          "withheld_at": withheld_at[w.id].isoformat(),
                          "reply_to": reply_to_id})
    for mid, at, why in expired:
        audit.record(db, actor=ACTOR, action="outbox.withheld_expired", entity="message",
                     entity_id=mid, at=now, stream=stream,
                     new={"participant_id": participant_id, "withheld_at": at.isoformat(),
                          "reason": why})
    logs.event(_log, "outbox_withheld_released", participant_id=participant_id,
               delivered=len(out), expired=len(expired))
    return out


# ---- failures --------------------------------------------------------------------------------


def record_final_failure(db: Session, msg: Message, failure: delivery.Failure, *,
                         now: datetime, status: str = "failed") -> None:
    """The end of the road for a message: the status, the reason, an audit entry."""
    assert msg.id is not None
    if msg.status not in ("undelivered", "failed") or status == "undeliverable":
        msg.status = status
    msg.error_code = failure.code if failure.code is not None else msg.error_code
    msg.last_error = failure.text[:200]
    msg.updated_at = now
    db.add(msg)
    audit.record(db, actor=ACTOR, action=f"outbox.{status}", entity="message", entity_id=msg.id,
                 at=now, new={"participant_id": msg.participant_id, "kind": msg.kind,
                              "channel": msg.channel, "error_code": failure.code,
                              "reason": failure.reason, "attempts": msg.attempts})
    logs.event(_log, f"outbox_{status}", level=30, message=msg.id, kind=msg.kind,
               error_code=failure.code, reason=failure.reason, attempts=msg.attempts)


def copy_for_retry(db: Session, msg: Message, *, due_at: datetime, now: datetime,
                   channel: str | None = None, note: str) -> Message:
    """A new pending row for a message Twilio took but could not deliver.

    The failed row keeps its SID and status (a row with a SID is never sent again); the copy
    carries the attempt count on, so MAX_ATTEMPTS counts every try of the message.
    """
    retry = Message(participant_id=msg.participant_id, direction="out",
                    channel=channel or msg.channel, address=msg.address, body=msg.body,
                    kind=msg.kind, status="pending", session_id=msg.session_id, step=msg.step,
                    language=msg.language, segments=msg.segments, attempts=msg.attempts,
                    due_at=due_at, urgent=msg.urgent, purpose=msg.purpose,
                    reply_to_id=msg.reply_to_id, created_at=now, updated_at=now,
                    last_error=f"retry of #{msg.id}: {note}"[:200])
    db.add(retry)
    db.flush()
    msg.last_error = f"{note}; retried as #{retry.id}"[:200]
    msg.updated_at = now
    db.add(msg)
    return retry


def on_delivery_failure(db: Session, message: Message, code: int | None, *,
                        now: datetime | None = None) -> Message | None:
    """A status callback said `failed`/`undelivered` with `code`: act on it.

    30003 and other transient codes: a retry row, due after a backoff (the sweep enqueues
    it). 63016: WhatsApp's window closed: a new row that goes out as a template or by SMS
    (or is undeliverable). 21610: the participant opted out. Anything else is final and
    audited. Returns the new row, if any. Call it in the transaction that stored the status.
    """
    now = now or utcnow()
    failure = delivery.classify_code(code)
    p = db.get(Participant, message.participant_id) if message.participant_id else None
    if failure.action is delivery.Action.OPTED_OUT:
        if p is not None:
            consent.opt_out(db, p, source="error_21610", actor_name="system:twilio", now=now,
                            message_id=message.id)
            cancel_pending(db, p.id or 0, "participant opted out (21610)", now)
        record_final_failure(db, message, failure, now=now)
        return None
    if p is not None and not consent.may_message(p) and not message.urgent:
        record_final_failure(db, message, failure, now=now)
        return None
    if message.withheld_outcome == "delivered":
        # Its text has reached the participant since, in a reply: a retry would repeat it.
        logs.event(_log, "outbox_withheld_already_delivered", message=message.id,
                   error_code=code)
        return None
    if failure.action is delivery.Action.WINDOW:
        if p is not None and not p.whatsapp_window_closed:
            participants.update(db, p, actor="system:twilio", action="participant.whatsapp_window",
                                whatsapp_window_closed=True)
        if message.content_sid:
            # Even the template was refused: SMS is all that is left.
            if p is not None and not p.sms_consent:
                record_final_failure(db, message, delivery.Failure(
                    delivery.Action.FINAL, code, "WhatsApp template refused, and no SMS consent"),
                    now=now, status="undeliverable")
                return None
            retry = copy_for_retry(db, message, due_at=now, now=now, channel="sms",
                                   note=failure.text)
        else:
            retry = copy_for_retry(db, message, due_at=now, now=now, note=failure.text)
        logs.event(_log, "outbox_window_closed", message=message.id, retry=retry.id)
        return retry
    if delivery.retryable(failure, message.attempts):
        due = now + delivery.backoff(message.attempts, failure.action)
        retry = copy_for_retry(db, message, due_at=due, now=now, note=failure.text)
        logs.event(_log, "outbox_retry_scheduled", message=message.id, retry=retry.id,
                   error_code=code, due_at=due.isoformat())
        return retry
    if failure.action in (delivery.Action.RETRY, delivery.Action.SLOW_RETRY):
        failure = delivery.Failure(failure.action, code,
                                   f"{failure.reason}; gave up after {message.attempts} attempts")
    record_final_failure(db, message, failure, now=now)
    return None


def apply_early_callbacks(db: Session, sids: Sequence[str], *, now: datetime) -> int:
    """Status callbacks that arrived before their SID was stored (Twilio can be faster than
    our commit) were answered "unknown SID"; apply them now. Returns how many rows moved."""
    from .conversation import STATUS_RANK  # the same ranking as the webhook's

    if not sids:
        return 0
    found = db.exec(select(StatusCallback).where(col(StatusCallback.twilio_sid).in_(sids))).all()
    if not found:
        return 0
    moved = 0
    by_sid: dict[str, list[StatusCallback]] = {}
    for cb in found:
        by_sid.setdefault(cb.twilio_sid, []).append(cb)
    for sid, callbacks in by_sid.items():
        msg = db.exec(select(Message).where(Message.twilio_sid == sid).with_for_update()).first()
        if msg is None:
            continue
        best = max(callbacks, key=lambda c: STATUS_RANK.get(c.status, -1))
        if STATUS_RANK.get(best.status, -1) <= STATUS_RANK.get(msg.status, 0):
            continue
        msg.status = best.status
        msg.error_code = best.error_code if best.error_code is not None else msg.error_code
        msg.updated_at = now
        db.add(msg)
        moved += 1
        if best.status in ("failed", "undelivered"):
            on_delivery_failure(db, msg, best.error_code, now=now)
    return moved


# ---- SQLite writers ---------------------------------------------------------------------------


class _LockFiles:
    """This thread's lock descriptors, closed when the thread ends."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.fds: dict[str, int] = {}

    def __del__(self) -> None:
        if self.pid == os.getpid():
            for fd in self.fds.values():
                os.close(fd)


_lock_files = threading.local()


def _lock_fd(path: str) -> int:
    # One descriptor per thread and process: flock excludes other open descriptions, so
    # threads must not share one, and a forked child must not use its parent's.
    files: _LockFiles | None = getattr(_lock_files, "files", None)
    if files is None or files.pid != os.getpid():
        files = _lock_files.files = _LockFiles()
    fd = files.fds.get(path)
    if fd is None:
        fd = files.fds[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return fd


@contextmanager
def write_lock(url: str) -> Iterator[None]:
    """On SQLite, queue write transactions behind an OS file lock (the webhook takes the
    same one), so writers wait in line instead of in SQLite's sleeping busy handler."""
    if not is_sqlite(url) or fcntl is None:
        yield
        return
    fd = _lock_fd(url.split("///", 1)[-1] + ".write-lock")
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


# ---- reading, for people ------------------------------------------------------------------


def describe(msg: Message) -> dict[str, Any]:
    """A row as the coordinator sees it: no body, a masked number."""
    return {
        "id": msg.id, "participant_id": msg.participant_id, "kind": msg.kind,
        "channel": msg.channel, "to": participants.mask_phone(msg.address),
        "status": msg.status, "error_code": msg.error_code, "last_error": msg.last_error,
        "attempts": msg.attempts, "segments": msg.segments, "urgent": msg.urgent,
        "purpose": msg.purpose, "content_sid": msg.content_sid,
        "possible_duplicate": msg.possible_duplicate, "twilio_sid": msg.twilio_sid,
        "withheld_at": msg.withheld_at.isoformat() if msg.withheld_at else None,
        "withheld_outcome": msg.withheld_outcome,
        "due_at": msg.due_at.isoformat() if msg.due_at else None,
        "sent_at": msg.sent_at.isoformat() if msg.sent_at else None,
        "created_at": msg.created_at.isoformat(),
    }
