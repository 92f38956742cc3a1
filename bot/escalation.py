"""Closed-loop escalation: raise, tell the participant, page the navigator on call, wait for
`ACK <code>`, climb when nobody answers, resolve with a note.

1. Raise (`raise_escalation`): a flow's `escalate` step or a red-flag phrase in any inbound
   message (`screen_inbound`). One escalation is open per participant and reason; a repeat
   counts on it (`repeats`, an audit entry) and pages nobody again. An urgent trigger sends
   the participant the study's safety message through the outbox (urgent: no quiet hours).
2. Page (`_page`): level 0 alerts the primaries on call, on each of their channels. Each
   (escalation, level, navigator, channel) is one `escalation_alert` row, unique in the
   database: running anything twice never sends a level's alert twice. SMS and WhatsApp
   alerts are outbox rows (the send worker retries them); email alerts are sent over SMTP
   by `deliver_email_alerts`, with its own claim, retries and backoff. A page that cannot
   go out now leaves the escalation *waiting*: open with no alert at its `level`. A routine
   one outside business hours waits for them (`next_alert_at` = when they begin); one with
   nobody on call at that level or above is "unrouted" (`next_alert_at` = when the critical
   log line may be repeated). The deadline counts from the page, not from the raise.
3. Climb (`check_escalations`, run periodically with an explicit `now`): waiting
   escalations are paged as soon as they can be (business hours began, someone came on
   call), then an alert not acknowledged by its deadline (per severity,
   `escalation.acknowledge_within` in study.yaml) goes to the primary again (level 1), then
   the backup (2), then the coordinator (3). Levels with nobody on call are skipped.
   Everything is in the database, so a worker killed half-way loses nothing: the next check
   does what is due.
4. Acknowledge (`acknowledge`): `ACK <code>` texted from a navigator's registered phone
   (`navigator_reply`, routed here by the webhook), or `bot escalations ack`. The climb
   stops and alerts not yet sent are cancelled.
5. Resolve (`resolve`) with a note. `report` gives time-to-acknowledge and time-to-resolve.

Alerts carry the least health data that lets a navigator act: the participant's study code,
severity, reason code and how to acknowledge. Never the participant's words or number.
Every step is in the audit trail with its time (entity `escalation`, id = the code).
"""

from __future__ import annotations

import functools
import math
import re
import secrets
import smtplib
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final

import redis
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col, select

from . import audit, consent, logs, navigators, outbox, system_messages
from .config import Settings
from .engine.roster import (
    DEFERRED_SEVERITIES,
    LEVEL_PRIMARY,
    TOP_LEVEL,
    EscalationPolicy,
    Roster,
    load_policy,
)
from .engine.understand.redflags import detect_red_flags
from .participants import mask_phone
from .store.db import session_scope
from .store.models import Escalation, EscalationAlert, Message, Navigator, Participant
from .store.types import utcnow
from .twilio_io import Inbound

_log = logs.get_logger("escalation")

ACTOR: Final = "system:escalation"
SAFETY_KEY: Final = "safety"
#: A participant who keeps writing alarming messages gets the safety message again only
#: after this long: often enough to matter, not so often it drowns everything else.
SAFETY_AGAIN_AFTER: Final = timedelta(minutes=30)
OPEN: Final = ("open", "acknowledged")
SEVERITY_RANK: Final = {"routine": 0, "high": 1, "urgent": 2}
#: Email: attempts before an alert is given up (the climb goes on regardless), the wait
#: before a retry (doubling), and how long a claimed alert is presumed in flight.
EMAIL_MAX_ATTEMPTS: Final = 8
EMAIL_BACKOFF: Final = timedelta(seconds=30)
EMAIL_BACKOFF_MAX: Final = timedelta(minutes=10)
EMAIL_LEASE: Final = timedelta(minutes=2)
SMTP_TIMEOUT_S: Final = 10.0
#: Escalations paged after a wait, and climbed, per check (oldest first); the next check
#: takes the rest.
CHECK_LIMIT: Final = 500
#: An unrouted escalation is retried on every check, but its critical log line (and audit
#: entry) comes back only this often: loud enough to be fixed, not a line every 15 seconds.
UNROUTED_REPEAT: Final = timedelta(hours=1)
JOB_QUEUE: Final = "default"
DELIVER_JOB: Final = "workers.escalate.deliver_alerts"
#: Codes are typed by navigators (`ACK E7K2Q`): no 0/O, 1/I/L look-alikes.
CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE = re.compile(rf"^E[{CODE_ALPHABET}]{{4,11}}$")
_WORD = re.compile(r"[A-Za-z0-9]+")
LEVEL_NAMES: Final = {0: "primary", 1: "primary (again)", 2: "backup", 3: "coordinator"}

_INFO_EMAILS: Final = "trialbot.escalation.emails"
_INFO_LISTENING: Final = "trialbot.escalation.listening"


class EscalationError(LookupError):
    """An escalation that does not exist, or a change it cannot take."""


# ---- settings --------------------------------------------------------------------------------


def policy(settings: Settings) -> EscalationPolicy:
    """The study's escalation policy (study.yaml beside the flows), re-read when it changes."""
    path = Path(settings.flows_dir) / "study.yaml"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _policy(settings.flows_dir, mtime)


@functools.lru_cache(maxsize=8)
def _policy(folder: str, _mtime: float) -> EscalationPolicy:
    found, problems = load_policy(folder)
    for p in problems:
        # `bot flows check` explains these; at run time the defaults stand in.
        logs.event(_log, "escalation_policy_problem", level=30, line=p.line, code=p.code)
    return found


@functools.lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # Short timeouts: this runs inside the webhook; a slow Redis only delays the enqueue,
    # which the sweep and the periodic check make up for.
    return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)


# ---- raising -----------------------------------------------------------------------------------


def _new_code(db: Session) -> str:
    for length in (4, 4, 4, 5, 6, 7):
        code = "E" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
        if db.exec(select(Escalation.id).where(Escalation.code == code)).first() is None:
            return code
    return "E" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(11))


def _actor(p: Participant) -> str:
    return f"participant:{p.code}"


def raise_escalation(db: Session, participant: Participant, *, severity: str, reason: str,
                     source: str, settings: Settings, now: datetime,
                     session_id: str | None = None, flow_id: str | None = None,
                     step: str | None = None, message_id: int | None = None) -> Escalation:
    """Open an escalation (or count a repeat on the open one) in the caller's transaction.

    The caller holds the participant's row lock (the webhook and `start_flow` do), so two
    messages from one participant cannot both open one. Alerts and the safety message are
    outbox rows and `escalation_alert` rows; they go out after the commit.
    """
    assert participant.id is not None
    esc = db.exec(
        select(Escalation).where(Escalation.participant_id == participant.id,
                                 Escalation.reason == reason, col(Escalation.state).in_(OPEN))
        .order_by(col(Escalation.id)).limit(1).with_for_update()).first()
    if esc is not None:
        _repeat(db, settings, esc, participant, severity, source, now, message_id)
    else:
        esc = Escalation(code=_new_code(db), participant_id=participant.id,
                         session_id=session_id, flow_id=flow_id, step=step, severity=severity,
                         reason=reason, state="open", level=LEVEL_PRIMARY, created_at=now,
                         updated_at=now)
        db.add(esc)
        db.flush()
        audit.record(db, actor=_actor(participant), action="escalation.raised",
                     entity="escalation", entity_id=esc.code, at=now,
                     new={"participant": participant.code, "severity": severity,
                          "reason": reason, "source": source, "flow": flow_id, "step": step,
                          "message_id": message_id})
        # The reason (a symptom) stays in the database: logs name the escalation, not why.
        logs.event(_log, "escalation_raised", code=esc.code, severity=severity,
                   source=source, participant=participant.code)
        _page(db, settings, esc, navigators.load_roster(db), LEVEL_PRIMARY, now,
              participant.code)
    if severity == "urgent":
        _safety_message(db, settings, participant, esc, now)
    return esc


def _repeat(db: Session, settings: Settings, esc: Escalation, participant: Participant,
            severity: str, source: str, now: datetime, message_id: int | None) -> None:
    """The same reason again while open: counted and audited, never paged again; a higher
    severity shortens the wait before the climb, or pages at once one still waiting (a
    routine escalation held for business hours that is now urgent)."""
    before = esc.severity
    esc.repeats += 1
    waiting = False
    if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(esc.severity, 0):
        esc.severity = severity
        if esc.state == "open":
            waiting = not _alerted(db, esc)
        if not waiting and esc.state == "open" and esc.next_alert_at is not None:
            roster_tz = navigators.roster_timezone(db)
            sooner = policy(settings).acknowledge_by(severity, now, roster_tz)
            esc.next_alert_at = min(esc.next_alert_at, sooner)
    esc.updated_at = now
    db.add(esc)
    audit.record(db, actor=_actor(participant), action="escalation.repeated",
                 entity="escalation", entity_id=esc.code, at=now,
                 new={"repeats": esc.repeats, "severity": esc.severity, "was": before,
                      "source": source, "message_id": message_id})
    logs.event(_log, "escalation_repeated", code=esc.code, repeats=esc.repeats,
               severity=esc.severity, participant=participant.code)
    if waiting:
        # A new severity is news: if nobody can be paged still, say so again at once.
        esc.next_alert_at = None
        _page(db, settings, esc, navigators.load_roster(db), esc.level, now, participant.code)


def screen_inbound(db: Session, participant_id: int, text: str, language: str, *,
                   settings: Settings, now: datetime,
                   message_id: int | None = None) -> list[Escalation]:
    """Raise an escalation for each red-flag reason in an inbound message, in any state.

    Cheap when nothing is found (most messages): the participant row is loaded only then.
    """
    flags = detect_red_flags(text, language)
    if not flags:
        return []
    p = db.get(Participant, participant_id)
    if p is None:
        return []
    out = []
    for flag in flags:
        logs.event(_log, "red_flag", severity=flag.severity, language=flag.language,
                   participant=p.code)
        out.append(raise_escalation(db, p, severity=flag.severity, reason=flag.reason,
                                    source="red_flag", settings=settings, now=now,
                                    message_id=message_id))
    return out


def _safety_message(db: Session, settings: Settings, p: Participant, esc: Escalation,
                    now: datetime) -> None:
    """The study's safety message, in the participant's language, through the outbox."""
    if p.erased_at is not None or not p.phone:
        return
    recent = db.exec(select(Message.id).where(
        Message.participant_id == p.id, Message.kind == "safety",
        Message.purpose == SAFETY_KEY, col(Message.status) != "suppressed",
        col(Message.created_at) >= now - SAFETY_AGAIN_AFTER).limit(1)).first()
    if recent is not None:
        return
    pol = policy(settings)
    opted_out = not consent.may_message(p)
    if opted_out and not pol.safety_message_when_opted_out:
        audit.record(db, actor=ACTOR, action="escalation.safety_withheld", entity="escalation",
                     entity_id=esc.code, at=now, new={"why": "participant opted out"})
        logs.event(_log, "safety_message_withheld", code=esc.code, participant=p.code)
        return
    text = system_messages.text(SAFETY_KEY, p.language, settings.default_language,
                                emergency=pol.emergency)
    msg = outbox.enqueue(db, participant=p, body=text, kind="safety", urgent=True,
                         purpose=SAFETY_KEY, override_consent=opted_out, now=now)
    _dispatch_after_commit(db, settings)
    audit.record(db, actor=ACTOR, action="escalation.safety_message", entity="escalation",
                 entity_id=esc.code, at=now,
                 new={"message_id": msg.id, "language": msg.language,
                      "despite_opt_out": opted_out})
    logs.event(_log, "safety_message_queued", code=esc.code, message=msg.id,
               participant=p.code)


# ---- paging ------------------------------------------------------------------------------------


def _route(roster: Roster, start: int, now: datetime) -> tuple[int, list[str]]:
    """The first level from `start` up with somebody to page, and their names."""
    for level in range(start, TOP_LEVEL + 1):
        people = roster.recipients(level, now)
        if people:
            return level, [n.name for n in people]
    return TOP_LEVEL, []


def _targets(db: Session, names: Sequence[str]) -> list[tuple[Navigator, str]]:
    """(navigator, channel) for each active navigator named, in roster order."""
    people = {n.name: n for n in db.exec(select(Navigator).where(
        col(Navigator.name).in_(names), col(Navigator.active).is_(True))).all()}
    return [(people[name], channel) for name in names if name in people
            for channel in navigators.channels_of(people[name])]


def _page(db: Session, settings: Settings, esc: Escalation, roster: Roster, start: int,
          now: datetime, participant_code: str) -> str:
    """Alert level `start` (or the next level with someone on call) and set the deadline
    from now: "paged". Or leave the escalation waiting at `start`, with no alert at that
    level, for `check_escalations` to page later: "deferred" (a routine one outside business
    hours) or "unrouted" (nobody on call at that level or above)."""
    pol = policy(settings)
    until = pol.page_at(esc.severity, now, roster.timezone)
    if until > now:
        _defer(db, esc, start, until, now, participant_code)
        return "deferred"
    level, names = _route(roster, start, now)
    targets = _targets(db, names) if names else []
    if not targets:
        _unrouted(db, esc, start, now, participant_code)
        return "unrouted"
    esc.level = level
    esc.next_alert_at = pol.acknowledge_by(esc.severity, now, roster.timezone)
    esc.updated_at = now
    db.add(esc)
    if start > LEVEL_PRIMARY:
        # A climb pages level `start` or above after level `start - 1` went unanswered.
        audit.record(db, actor=ACTOR, action="escalation.climbed", entity="escalation",
                     entity_id=esc.code, at=now, new={"from": start - 1, "to": level,
                                                      "skipped": level - start})
        logs.event(_log, "escalation_climbed", code=esc.code, tier=level,
                   severity=esc.severity, participant=participant_code)
    for nav, channel in targets:
        _alert(db, settings, esc, nav, channel, level, now, participant_code)
    return "paged"


def _defer(db: Session, esc: Escalation, level: int, until: datetime, now: datetime,
           participant_code: str) -> None:
    """Hold the page of `level` until business hours begin; recorded once per wait."""
    if esc.level == level and esc.next_alert_at == until:
        return  # held already, until the same time: a later check looking again
    esc.level, esc.next_alert_at, esc.updated_at = level, until, now
    db.add(esc)
    audit.record(db, actor=ACTOR, action="escalation.deferred", entity="escalation",
                 entity_id=esc.code, at=now,
                 new={"level": level, "until": until.isoformat(), "why": "business hours"})
    logs.event(_log, "escalation_deferred", code=esc.code, severity=esc.severity,
               until=until.isoformat(), participant=participant_code)


def _unrouted(db: Session, esc: Escalation, level: int, now: datetime,
              participant_code: str) -> None:
    """Nobody to page at `level` or above. Every check tries again; the critical line is
    repeated at most every `UNROUTED_REPEAT`, tracked in `next_alert_at`."""
    esc.level = level
    db.add(esc)
    again = esc.next_alert_at
    # Set by the last line (at most an hour ahead) or by a deferral (later): only the first
    # keeps this one quiet.
    if again is not None and now < again <= now + UNROUTED_REPEAT:
        return
    esc.next_alert_at, esc.updated_at = now + UNROUTED_REPEAT, now
    audit.record(db, actor=ACTOR, action="escalation.unrouted", entity="escalation",
                 entity_id=esc.code, at=now, new={"level": level})
    logs.event(_log, "escalation_unrouted", level=50, code=esc.code,
               severity=esc.severity, participant=participant_code)


def _alerted_at_level() -> sa.Exists:
    """The escalation (of the enclosing query) has an alert at its current level."""
    return sa.exists().where(col(EscalationAlert.escalation_id) == col(Escalation.id),
                             col(EscalationAlert.level) == col(Escalation.level))


def _alerted(db: Session, esc: Escalation) -> bool:
    return db.exec(select(EscalationAlert.id).where(
        EscalationAlert.escalation_id == esc.id, EscalationAlert.level == esc.level)
        .limit(1)).first() is not None


@functools.cache
def _insert_ignore(dialect: str) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    t = SQLModel.metadata.tables["escalation_alert"]
    return insert(t).on_conflict_do_nothing(
        index_elements=["escalation_id", "level", "navigator_id", "channel"]).returning(t.c.id)


def _alert(db: Session, settings: Settings, esc: Escalation, nav: Navigator, channel: str,
           level: int, now: datetime, participant_code: str) -> None:
    conn = db.connection()
    new_id = conn.execute(_insert_ignore(conn.dialect.name), {
        "escalation_id": esc.id, "level": level, "navigator_id": nav.id, "channel": channel,
        "status": "pending", "attempts": 0, "due_at": now, "created_at": now,
        "updated_at": now}).scalar_one_or_none()
    if new_id is None:
        return  # this level's alert on this channel exists: never two
    alert = db.get(EscalationAlert, new_id)
    assert alert is not None
    if channel == "email":
        if not settings.smtp_host:
            _alert_failed(db, alert, esc, nav, "SMTP is not configured (SMTP_HOST)", now,
                          final=True)
            return
        _deliver_after_commit(db, settings, new_id)
        return
    if not nav.phone:
        _alert_failed(db, alert, esc, nav, "no phone number", now, final=True)
        return
    short, _subject, _long = alert_texts(esc, participant_code, level)
    to = nav.phone if channel == "sms" else f"whatsapp:{nav.phone}"
    msg = outbox.enqueue(db, participant=None, to=to, body=short, kind="alert", urgent=True,
                         purpose="alert", language=nav.language, now=now)
    _dispatch_after_commit(db, settings)
    alert.status, alert.message_id, alert.attempts = "queued", msg.id, 1
    alert.sent_at, alert.updated_at = now, now
    db.add(alert)
    audit.record(db, actor=ACTOR, action="escalation.alerted", entity="escalation",
                 entity_id=esc.code, at=now,
                 new={"level": level, "channel": channel, "navigator": nav.name,
                      "message_id": msg.id})
    logs.event(_log, "escalation_alerted", code=esc.code, tier=level, channel=channel,
               navigator=nav.name, message=msg.id)


def _alert_failed(db: Session, alert: EscalationAlert, esc: Escalation, nav: Navigator,
                  error: str, now: datetime, *, final: bool,
                  retry_at: datetime | None = None) -> None:
    alert.status = "failed" if final else "pending"
    alert.last_error, alert.updated_at = error[:200], now
    alert.claimed_at = None
    if retry_at is not None:
        alert.due_at = retry_at
    db.add(alert)
    audit.record(db, actor=ACTOR, action="escalation.alert_failed", entity="escalation",
                 entity_id=esc.code, at=now,
                 new={"level": alert.level, "channel": alert.channel, "navigator": nav.name,
                      "attempt": alert.attempts, "error": error[:200],
                      "retry_at": retry_at.isoformat() if retry_at else None})
    logs.event(_log, "escalation_alert_failed", level=40 if final else 30, code=esc.code,
               channel=alert.channel, navigator=nav.name, attempt=alert.attempts,
               final=final)


def alert_texts(esc: Escalation, participant_code: str, level: int) -> tuple[str, str, str]:
    """(SMS text, email subject, email body): code, participant code, severity, reason and
    how to acknowledge; nothing the participant wrote, no phone number."""
    severity = esc.severity.upper()
    note = {1: " 2nd alert: not yet acknowledged.",
            2: " Not acknowledged by the primary: you are the backup.",
            3: " Not acknowledged by primary or backup."}.get(level, "")
    short = (f"{severity} study alert {esc.code}: participant {participant_code}, "
             f"{esc.reason}.{note} Reply ACK {esc.code} to acknowledge.")
    subject = f"[{severity}] Escalation {esc.code}: participant {participant_code}"
    raised = esc.created_at.strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join([
        f"Escalation {esc.code} needs a nurse navigator.", "",
        f"Participant: {participant_code}",
        f"Severity:    {esc.severity}",
        f"Reason:      {esc.reason}",
        f"Raised:      {raised}",
        f"Alert:       level {level} ({LEVEL_NAMES.get(level, level)}){note}", "",
        "To acknowledge, text this from your registered phone to the study number:",
        f"    ACK {esc.code}",
        "or run:",
        f"    bot escalations ack {esc.code} --by YOUR-NAME", "",
        "Unacknowledged alerts go on to the next person on call.",
    ])
    return short, subject, body


# ---- after the commit --------------------------------------------------------------------------


def _dispatch_after_commit(db: Session, settings: Settings) -> None:
    """Outbox rows added in this transaction get their send jobs after the commit."""
    outbox.dispatch_after_commit(db, _redis(settings.redis_url),
                                 batch_size=settings.outbox_batch_size)


def _deliver_after_commit(db: Session, settings: Settings, alert_id: int) -> None:
    db.info.setdefault(_INFO_EMAILS, {})[alert_id] = settings.redis_url
    if not db.info.get(_INFO_LISTENING):
        db.info[_INFO_LISTENING] = True
        event.listen(db, "after_commit", _enqueue_emails)
        event.listen(db, "after_rollback", _forget_emails)


def _forget_emails(db: Session) -> None:
    db.info.pop(_INFO_EMAILS, None)


def _enqueue_emails(db: Session) -> None:
    from rq import Queue

    pending: dict[int, str] = db.info.pop(_INFO_EMAILS, None) or {}
    by_url: dict[str, list[int]] = {}
    for alert_id, url in pending.items():
        by_url.setdefault(url, []).append(alert_id)
    for url, ids in by_url.items():
        try:
            Queue(JOB_QUEUE, connection=_redis(url)).enqueue(
                DELIVER_JOB, sorted(ids), result_ttl=0, failure_ttl=24 * 3600,
                description=f"email {len(ids)} escalation alert(s)")
        except Exception as exc:  # noqa: BLE001 - the rows are committed; the check sends them
            logs.event(_log, "escalation_enqueue_failed", level=30, alerts=len(ids),
                       error=type(exc).__name__)


# ---- email ---------------------------------------------------------------------------------


def send_email(settings: Settings, to: str, subject: str, body: str,
               message_id: str | None = None) -> None:
    """One message over SMTP; raises `smtplib.SMTPException` or `OSError` on failure."""
    assert settings.smtp_host
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(msg)


def _email_backoff(attempt: int) -> timedelta:
    doubled: timedelta = EMAIL_BACKOFF * (2 ** max(attempt - 1, 0))
    return min(doubled, EMAIL_BACKOFF_MAX)


@dataclass(slots=True)
class _Claimed:
    alert_id: int
    attempt: int
    code: str
    email: str
    subject: str
    body: str


def _claim_emails(db: Session, now: datetime, ids: Sequence[int] | None) -> list[_Claimed]:
    a = SQLModel.metadata.tables["escalation_alert"]
    claimable = (
        sa.select(a.c.id)
        .where(a.c.channel == "email",
               sa.or_(sa.and_(a.c.status == "pending", a.c.due_at <= now),
                      sa.and_(a.c.status == "sending", a.c.claimed_at < now - EMAIL_LEASE)))
        .order_by(a.c.due_at).limit(200)
        .with_for_update(skip_locked=True))
    if ids is not None:
        claimable = claimable.where(a.c.id.in_(list(ids)))
    claimed = db.connection().execute(
        sa.update(a).where(a.c.id.in_(claimable))
        .values(status="sending", claimed_at=now, attempts=a.c.attempts + 1, updated_at=now)
        .returning(a.c.id)).scalars().all()
    out: list[_Claimed] = []
    for alert_id in claimed:
        alert = db.get(EscalationAlert, alert_id, populate_existing=True)
        assert alert is not None
        esc = db.get(Escalation, alert.escalation_id)
        nav = db.get(Navigator, alert.navigator_id)
        assert esc is not None and nav is not None
        if esc.state != "open":
            # Acknowledged or resolved meanwhile: nobody needs this alert any more.
            alert.status, alert.updated_at, alert.claimed_at = "cancelled", now, None
            db.add(alert)
            continue
        if not nav.email or not nav.active:
            _alert_failed(db, alert, esc, nav, "no email address", now, final=True)
            continue
        p = db.get(Participant, esc.participant_id)
        _short, subject, body = alert_texts(esc, p.code if p else "?", alert.level)
        out.append(_Claimed(alert_id, alert.attempts, esc.code, nav.email, subject, body))
    return out


@dataclass(slots=True)
class EmailCounts:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_email_alerts(settings: Settings, now: datetime | None = None,
                         ids: Sequence[int] | None = None) -> EmailCounts:
    """Send the email alerts that are due (all, or those among `ids`), each at most once.

    Claimed in one transaction, sent outside it, recorded in another: a worker that dies
    while sending leaves the alert "sending" until the lease runs out, then it is sent
    again (the one case where a navigator may get an email twice).
    """
    now = now or utcnow()
    counts = EmailCounts()
    if not settings.smtp_host:
        return counts
    url = settings.database_url
    with outbox.write_lock(url), session_scope(url) as db:
        claimed = _claim_emails(db, now, ids)
    for item in claimed:
        error: str | None = None
        try:
            send_email(settings, item.email, item.subject, item.body,
                       message_id=f"<escalation-alert-{item.alert_id}@trialbot>")
        except (smtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        with outbox.write_lock(url), session_scope(url) as db:
            alert = db.get(EscalationAlert, item.alert_id, with_for_update=True)
            assert alert is not None
            esc = db.get(Escalation, alert.escalation_id)
            nav = db.get(Navigator, alert.navigator_id)
            assert esc is not None and nav is not None
            if error is None:
                alert.status, alert.sent_at, alert.updated_at = "sent", now, now
                alert.claimed_at, alert.last_error = None, None
                db.add(alert)
                audit.record(db, actor=ACTOR, action="escalation.alerted", entity="escalation",
                             entity_id=esc.code, at=now,
                             new={"level": alert.level, "channel": "email",
                                  "navigator": nav.name, "attempt": alert.attempts})
                logs.event(_log, "escalation_alerted", code=esc.code, tier=alert.level,
                           channel="email", navigator=nav.name, attempt=alert.attempts)
                counts.sent += 1
            elif alert.attempts >= EMAIL_MAX_ATTEMPTS:
                _alert_failed(db, alert, esc, nav, error, now, final=True)
                counts.failed += 1
            else:
                _alert_failed(db, alert, esc, nav, error, now, final=False,
                              retry_at=now + _email_backoff(alert.attempts))
                counts.retrying += 1
    return counts


# ---- the periodic check --------------------------------------------------------------------


@dataclass(slots=True)
class CheckResult:
    paged: list[str] = field(default_factory=list)  # codes: waiting ones paged at last
    climbed: list[str] = field(default_factory=list)  # codes: overdue ones paged higher up
    unanswered: list[str] = field(default_factory=list)  # codes past the top level
    emails: EmailCounts = field(default_factory=EmailCounts)


def _waiting(db: Session, pol: EscalationPolicy, now: datetime) -> Sequence[Escalation]:
    """Open escalations with no alert at their level yet: held for business hours, or
    unrouted. Outside business hours a held routine one is looked at only when its time
    has come (a study that moved its hours), not on every check."""
    query = select(Escalation).where(Escalation.state == "open", ~_alerted_at_level())
    if not pol.in_business_hours(now, navigators.roster_timezone(db)):
        query = query.where(sa.or_(col(Escalation.severity).not_in(DEFERRED_SEVERITIES),
                                   col(Escalation.next_alert_at).is_(None),
                                   col(Escalation.next_alert_at) <= now))
    return db.exec(query.order_by(col(Escalation.id)).limit(CHECK_LIMIT)
                   .with_for_update(skip_locked=True)).all()


def _participant_code(db: Session, esc: Escalation) -> str:
    p = db.get(Participant, esc.participant_id)
    return p.code if p is not None else "?"


def check_escalations(settings: Settings, now: datetime | None = None) -> CheckResult:
    """Page the waiting escalations that can be paged now (business hours began, someone
    came on call), climb every one whose deadline has passed, then send due email alerts.

    Idempotent and safe to run from several processes: the escalation rows are locked
    (SKIP LOCKED on PostgreSQL) and alerts are unique per level and channel.
    """
    now = now or utcnow()
    result = CheckResult()
    url = settings.database_url
    with outbox.write_lock(url), session_scope(url) as db:
        waiting = _waiting(db, policy(settings), now)
        due = db.exec(
            select(Escalation).where(Escalation.state == "open",
                                     col(Escalation.next_alert_at).is_not(None),
                                     col(Escalation.next_alert_at) <= now,
                                     _alerted_at_level())
            .order_by(col(Escalation.next_alert_at)).limit(CHECK_LIMIT)
            .with_for_update(skip_locked=True)).all()
        roster = navigators.load_roster(db) if due or waiting else Roster()
        for esc in waiting:
            if _page(db, settings, esc, roster, esc.level, now,
                     _participant_code(db, esc)) == "paged":
                result.paged.append(esc.code)
        for esc in due:
            code = _participant_code(db, esc)
            if esc.level >= TOP_LEVEL:
                esc.next_alert_at, esc.updated_at = None, now
                db.add(esc)
                audit.record(db, actor=ACTOR, action="escalation.unanswered",
                             entity="escalation", entity_id=esc.code, at=now,
                             new={"level": esc.level})
                logs.event(_log, "escalation_unanswered", level=50, code=esc.code,
                           severity=esc.severity, participant=code)
                result.unanswered.append(esc.code)
                continue
            # A climb held for business hours or unrouted is paged later, as a waiting one.
            if _page(db, settings, esc, roster, esc.level + 1, now, code) == "paged":
                result.climbed.append(esc.code)
    result.emails = deliver_email_alerts(settings, now)
    return result


# ---- acknowledging and resolving -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AckResult:
    status: str  # acknowledged | already | resolved | unknown
    escalation: Escalation | None = None


def _locked(db: Session, code: str) -> Escalation | None:
    return db.exec(select(Escalation).where(Escalation.code == code.strip().upper())
                   .with_for_update()).first()


def _cancel_alerts(db: Session, esc: Escalation, now: datetime) -> int:
    """Alerts not gone yet are not needed any more: pending emails, unsent outbox rows."""
    alerts = db.exec(select(EscalationAlert).where(
        EscalationAlert.escalation_id == esc.id,
        col(EscalationAlert.status).in_(("pending", "queued")))).all()
    count = 0
    for alert in alerts:
        if alert.status == "pending":
            alert.status, alert.updated_at = "cancelled", now
            db.add(alert)
            count += 1
        elif alert.message_id is not None:
            msg = db.get(Message, alert.message_id, with_for_update=True)
            if msg is not None and msg.status in outbox.UNSENT and msg.twilio_sid is None:
                msg.status, msg.updated_at = "cancelled", now
                msg.last_error = f"escalation {esc.code} acknowledged"
                alert.status, alert.updated_at = "cancelled", now
                db.add(msg)
                db.add(alert)
                count += 1
    return count


def acknowledge(db: Session, code: str, *, by: str, via: str, now: datetime,
                actor: str | None = None) -> AckResult:
    """Stop the climb: `by` (a navigator or staff name) has taken the escalation."""
    esc = _locked(db, code)
    if esc is None:
        return AckResult("unknown")
    if esc.state == "resolved":
        return AckResult("resolved", esc)
    if esc.state == "acknowledged":
        return AckResult("already", esc)
    esc.state, esc.acknowledged_at, esc.acknowledged_by = "acknowledged", now, by[:64]
    esc.next_alert_at, esc.updated_at = None, now
    db.add(esc)
    cancelled = _cancel_alerts(db, esc, now)
    waited = (now - esc.created_at).total_seconds()
    audit.record(db, actor=actor or f"staff:{by}", action="escalation.acknowledged",
                 entity="escalation", entity_id=esc.code, at=now,
                 new={"by": by, "via": via, "level": esc.level, "seconds": round(waited),
                      "alerts_cancelled": cancelled})
    logs.event(_log, "escalation_acknowledged", code=esc.code, by=by, via=via,
               level=esc.level, seconds=round(waited))
    return AckResult("acknowledged", esc)


def resolve(db: Session, code: str, *, note: str, by: str, now: datetime,
            actor: str | None = None) -> Escalation:
    """Close the escalation with a note. Resolving an unacknowledged one acknowledges it."""
    if not note.strip():
        raise EscalationError("a resolution needs a note: what was done")
    esc = _locked(db, code)
    if esc is None:
        raise EscalationError(f"no escalation {code.strip().upper()}")
    if esc.state == "resolved":
        raise EscalationError(f"{esc.code} was resolved already")
    if esc.state == "open":
        acknowledge(db, esc.code, by=by, via="resolve", now=now, actor=actor)
    esc.state, esc.resolved_at, esc.resolution_note = "resolved", now, note.strip()
    esc.next_alert_at, esc.updated_at = None, now
    db.add(esc)
    # The note stays on the escalation; the permanent trail records only that there is one.
    audit.record(db, actor=actor or f"staff:{by}", action="escalation.resolved",
                 entity="escalation", entity_id=esc.code, at=now,
                 new={"by": by, "note_chars": len(esc.resolution_note),
                      "seconds": round((now - esc.created_at).total_seconds())})
    logs.event(_log, "escalation_resolved", code=esc.code, by=by)
    return esc


# ---- navigators texting in ---------------------------------------------------------------------


@dataclass(slots=True)
class NavigatorOutcome:
    result: str  # duplicate | navigator_ack | navigator_ack_unknown | navigator_help | ...
    replies: list[str] = field(default_factory=list)
    navigator: str | None = None


@functools.cache
def _store_inbound_stmt(dialect: str) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    m = SQLModel.metadata.tables["message"]
    return insert(m).on_conflict_do_nothing(index_elements=["twilio_sid"]).returning(m.c.id)


def parse_ack(body: str) -> tuple[bool, str | None]:
    """(is it an ACK, the code if one was given): "ACK E7K2Q", "ack e7k2q", "Ack"."""
    words = _WORD.findall(body.upper())
    if not words or words[0] not in ("ACK", "ACKNOWLEDGE", "ACKNOWLEDGED"):
        return False, None
    code = next((w for w in words[1:] if _CODE.match(w)), None)
    return True, code


def navigator_reply(db: Session, inbound: Inbound, *, settings: Settings,
                    now: datetime) -> NavigatorOutcome | None:
    """A message from a navigator's registered phone: an ACK, or a hint. None when the
    number is no navigator's (the webhook then treats the sender as unknown)."""
    nav = navigators.find_by_phone(db, inbound.phone)
    if nav is None:
        return None
    conn = db.connection()
    stored = conn.execute(_store_inbound_stmt(conn.dialect.name), {
        "participant_id": None, "direction": "in", "channel": inbound.channel,
        "address": inbound.phone, "sender": inbound.to, "twilio_sid": inbound.sid,
        "body": inbound.body, "kind": "navigator", "status": "received", "attempts": 0,
        "created_at": now, "updated_at": now}).scalar_one_or_none()
    if stored is None:
        return NavigatorOutcome("duplicate", navigator=nav.name)
    out = NavigatorOutcome("navigator_help", navigator=nav.name)
    is_ack, code = parse_ack(inbound.body)
    if not is_ack:
        out.replies.append("Reply ACK and the code from the alert (e.g. ACK E7K2Q) to "
                           "acknowledge it.")
    else:
        if code is None:
            code, out.result, hint = _only_open_alert(db, nav)
            if code is None:
                out.replies.append(hint)
        if code is not None:
            _ack_reply(db, nav, code, now, out)
    for text in out.replies:
        conn.execute(sa.insert(SQLModel.metadata.tables["message"]), {
            "participant_id": None, "direction": "out", "channel": inbound.channel,
            "address": inbound.phone, "sender": inbound.to, "body": text,
            "kind": "navigator", "status": "sent", "attempts": 0, "reply_to_id": stored,
            "sent_at": now, "due_at": now, "created_at": now, "updated_at": now})
    logs.event(_log, out.result, navigator=nav.name, phone=mask_phone(inbound.phone))
    return out


def _only_open_alert(db: Session, nav: Navigator) -> tuple[str | None, str, str]:
    """A bare "ACK": fine when exactly one open escalation was alerted to this navigator."""
    codes = sorted(set(db.exec(
        select(Escalation.code)
        .join(EscalationAlert, col(EscalationAlert.escalation_id) == col(Escalation.id))
        .where(EscalationAlert.navigator_id == nav.id, Escalation.state == "open")).all()))
    if len(codes) == 1:
        return codes[0], "navigator_ack", ""
    if not codes:
        return None, "navigator_ack_nothing", "No open alert of yours to acknowledge."
    return None, "navigator_ack_which", (f"Several alerts are open: {', '.join(codes)}. "
                                         "Reply ACK and the code.")


def _ack_reply(db: Session, nav: Navigator, code: str, now: datetime,
               out: NavigatorOutcome) -> None:
    result = acknowledge(db, code, by=nav.name, via="sms", now=now,
                         actor=f"navigator:{nav.name}")
    esc = result.escalation
    if result.status == "unknown" or esc is None:
        out.result = "navigator_ack_unknown"
        out.replies.append(f"No escalation {code}. Reply ACK and the code from the alert.")
        return
    p = db.get(Participant, esc.participant_id)
    who = p.code if p is not None else "?"
    if result.status == "acknowledged":
        out.result = "navigator_ack"
        out.replies.append(f"Thank you. {esc.code} is acknowledged: participant {who}, "
                           f"{esc.reason} ({esc.severity}).")
    elif result.status == "already":
        out.result = "navigator_ack_already"
        when = esc.acknowledged_at.strftime("%H:%M UTC") if esc.acknowledged_at else "?"
        out.replies.append(f"{esc.code} was acknowledged by {esc.acknowledged_by} at {when}.")
    else:
        out.result = "navigator_ack_resolved"
        out.replies.append(f"{esc.code} is resolved already.")


# ---- reading ---------------------------------------------------------------------------------


def find(db: Session, code: str) -> Escalation | None:
    return db.exec(select(Escalation).where(Escalation.code == code.strip().upper())).first()


def alerts_of(db: Session, esc: Escalation) -> list[tuple[EscalationAlert, Navigator]]:
    rows = db.exec(select(EscalationAlert, Navigator)
                   .join(Navigator, col(Navigator.id) == col(EscalationAlert.navigator_id))
                   .where(EscalationAlert.escalation_id == esc.id)
                   .order_by(col(EscalationAlert.level), col(EscalationAlert.id))).all()
    return [(a, n) for a, n in rows]


@dataclass(frozen=True, slots=True)
class Stats:
    count: int
    median_s: float | None
    p90_s: float | None


def _stats(values: Iterable[float]) -> Stats:
    data = sorted(values)
    if not data:
        return Stats(0, None, None)
    # Nearest-rank p90: a value that really occurred, never an interpolation.
    p90 = data[max(math.ceil(0.9 * len(data)) - 1, 0)]
    return Stats(len(data), float(statistics.median(data)), float(p90))


def report(db: Session, since: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per severity: counts, and time-to-acknowledge / time-to-resolve (median, p90)."""
    query = select(Escalation)
    if since is not None:
        query = query.where(col(Escalation.created_at) >= since)
    rows = db.exec(query).all()
    out: dict[str, dict[str, Any]] = {}
    for severity in ("urgent", "high", "routine"):
        mine = [e for e in rows if e.severity == severity]
        out[severity] = {
            "raised": len(mine),
            "open": sum(1 for e in mine if e.state == "open"),
            "acknowledge": _stats((e.acknowledged_at - e.created_at).total_seconds()
                                  for e in mine if e.acknowledged_at is not None),
            "resolve": _stats((e.resolved_at - e.created_at).total_seconds()
                              for e in mine if e.resolved_at is not None),
        }
    return out


def describe(esc: Escalation, participant_code: str | None) -> Mapping[str, Any]:
    return {
        "code": esc.code, "participant": participant_code, "severity": esc.severity,
        "reason": esc.reason, "state": esc.state, "level": esc.level, "repeats": esc.repeats,
        "flow": esc.flow_id, "step": esc.step,
        "raised_at": esc.created_at.isoformat(),
        "next_alert_at": esc.next_alert_at.isoformat() if esc.next_alert_at else None,
        "acknowledged_at": esc.acknowledged_at.isoformat() if esc.acknowledged_at else None,
        "acknowledged_by": esc.acknowledged_by,
        "resolved_at": esc.resolved_at.isoformat() if esc.resolved_at else None,
        "resolution_note": esc.resolution_note,
    }
