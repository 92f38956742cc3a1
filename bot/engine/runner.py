"""The conversation engine: `start` and `resume`, pure functions of their arguments.

Given a flow, a session, an input and `now`, they return the new session and the events
that happened. Nothing here sends, stores, schedules or reads the clock; the shell does.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from . import understand
from .events import (
    AnswerRecorded,
    AnswerRejected,
    EscalationRaised,
    Event,
    FieldSet,
    FlowFailed,
    FollowUpScheduled,
    KeywordSeen,
    MessageCreated,
    QuestionExpired,
    SessionEnded,
    WaitStarted,
)
from .flow import Flow, Step, Text
from .languages import SUPPORTED
from .localizer import Catalogs, Localizer
from .session import Participant, Session, Wait
from .system_texts import SYSTEM_TEXTS, system_context
from .understand.types import Choice, Keyword
from .understand.words import choice_synonyms

#: Steps one resume may take without waiting for the participant: a guard against loops.
MAX_STEPS_PER_RESUME = 100

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)\}")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Reply:
    """An inbound message from the participant."""

    text: str


@dataclass(frozen=True, slots=True)
class Timeout:
    """A scheduled nudge for a wait: re-prompt or give up, whichever is due at `now`."""

    wait_id: str


Resume = Reply | Timeout


class VersionMismatch(ValueError):
    """The shell passed a different flow version from the one the session started on."""


def start(flow: Flow, participant: Participant, now: datetime, catalogs: Catalogs,
          params: Mapping[str, Any] | None = None,
          session_id: str | None = None) -> tuple[Session, list[Event]]:
    """Start `flow` for `participant` at `now` (aware)."""
    session = Session(
        id=session_id or uuid.uuid4().hex, flow_id=flow.id, flow_version=flow.version,
        participant_id=participant.id, language=participant.language, started_at=now,
        params=dict(params or {}), updated_at=now,
    )
    run = _Run(flow, session, participant, now, catalogs)
    run.walk(flow.start)
    return run.session, run.events


def resume(flow: Flow, session: Session, participant: Participant, event: Resume,
           now: datetime, catalogs: Catalogs) -> tuple[Session, list[Event]]:
    """Resume `session` with a reply or a timeout at `now`. The input session is not changed."""
    if flow.id != session.flow_id or flow.version != session.flow_version:
        raise VersionMismatch(
            f"session {session.id} runs {session.flow_id} v{session.flow_version}, "
            f"got {flow.id} v{flow.version}")
    run = _Run(flow, session.copy(), participant, now, catalogs)
    if isinstance(event, Reply):
        run.reply(event.text)
    else:
        run.timeout(event.wait_id)
    if run.events:
        run.session.updated_at = now
    return run.session, run.events


def restart_wait(flow: Flow, session: Session, wait_id: str,
                 now: datetime) -> tuple[Session, list[Event]]:
    """Start the clock of wait `wait_id` again at `now`, as if its question had just been asked.

    For a question the participant could not see when it was asked (a WhatsApp template that
    does not show the text): their time to answer starts when it reaches them. The re-prompt
    count starts again too, since re-prompts sent meanwhile went out the same unseen way;
    invalid answers, which the participant did write, stay counted. A session not waiting on
    `wait_id` comes back unchanged with no events, and so does one whose times would not move.
    The input session is not changed.
    """
    if flow.id != session.flow_id or flow.version != session.flow_version:
        raise VersionMismatch(
            f"session {session.id} runs {session.flow_id} v{session.flow_version}, "
            f"got {flow.id} v{flow.version}")
    after = session.copy()
    wait = after.wait
    if not after.is_waiting or wait is None or wait.id != wait_id or wait.step not in flow.by_id:
        return after, []
    step = flow.by_id[wait.step]
    # The times `_Run.ask` gives a new wait.
    reprompt_at = now + step.reprompt_after \
        if step.reprompt_after and step.reprompts > 0 else None
    give_up_at = now + step.give_up_after if step.give_up_after else None
    if (wait.reprompt_at, wait.give_up_at, wait.reprompts) == (reprompt_at, give_up_at, 0):
        return after, []
    wait.reprompt_at, wait.give_up_at, wait.reprompts = reprompt_at, give_up_at, 0
    after.updated_at = now
    return after, [WaitStarted(wait_id=wait.id, step=step.id, reprompt_at=reprompt_at,
                               give_up_at=give_up_at)]


class _Run:
    """One sprint: a mutable working copy of the session and the events so far."""

    def __init__(self, flow: Flow, session: Session, participant: Participant, now: datetime,
                 catalogs: Catalogs) -> None:
        self.flow = flow
        self.session = session
        self.participant = participant
        self.now = now
        self.catalogs = catalogs
        self.loc: Localizer = catalogs(session.language)
        self.events: list[Event] = []
        self.steps = 0
        # Key of the answer just recorded: `answer` in the branch/set/escalate steps that
        # follow a question refers to it.
        self.last_key: str | None = None

    # ---- text ---------------------------------------------------------------------------

    def lookup(self, path: str) -> Any:
        root, _, rest = path.partition(".")
        if root == "answer":
            key = self._current_key() or self.last_key
            return self.session.answers.get(key) if key else None
        if root == "answers":
            return self.session.answers.get(rest)
        if root == "params":
            return self.session.params.get(rest)
        if root == "participant":
            if rest in self.session.fields:
                return self.session.fields[rest]
            if rest == "language":
                return self.session.language
            if rest == "timezone":
                return self.participant.timezone
            return self.participant.fields.get(rest)
        return None

    def _current_key(self) -> str | None:
        step_id = self.session.step
        if step_id is None or step_id not in self.flow.by_id:
            return None
        step = self.flow.by_id[step_id]
        return (step.save_as or step.id) if step.kind == "ask" else None

    def _show(self, value: Any) -> str:
        if isinstance(value, bool):
            return self.loc.translate(system_context("word.yes" if value else "word.no"),
                                      "yes" if value else "no")
        if isinstance(value, str) and _ISO_DATETIME.match(value):
            when = datetime.fromisoformat(value)
            if when.tzinfo is not None:  # e.g. a visit time in UTC: say it in local time
                when = when.astimezone(_zone(self.participant.timezone))
            return self.loc.format_when(when, True)
        if isinstance(value, str) and _ISO_DATE.match(value):
            return self.loc.format_when(datetime.fromisoformat(value), False)
        if isinstance(value, list):
            return ", ".join(self._show(v) for v in value)
        return "" if value is None else str(value)

    def render(self, template: str, extra: Mapping[str, Any] | None = None) -> str:
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if extra and name in extra:
                return str(extra[name])
            return self._show(self.lookup(name))

        return _PLACEHOLDER.sub(sub, template) if "{" in template else template

    def text(self, text: Text) -> str:
        return self.render(self.loc.translate(text.context, text.source))

    def system(self, key: str, **extra: Any) -> str:
        return self.render(self.loc.translate(system_context(key), SYSTEM_TEXTS[key]), extra)

    def say(self, body: str, step: str, *contexts: str, urgent: bool = False) -> None:
        self.events.append(MessageCreated(text=body, step=step, language=self.loc.language,
                                          contexts=contexts, urgent=urgent))

    def question(self, step: Step) -> str:
        assert step.text is not None and step.answer is not None
        body = self.text(step.text)
        answer = step.answer
        if answer.choices and answer.show_choices:
            lines = [f"{i}. {self.text(c.label)}" for i, c in enumerate(answer.choices, 1)]
            body = body + "\n" + "\n".join(lines)
        return body

    # ---- walking ------------------------------------------------------------------------

    def walk(self, step_id: str | None) -> None:
        """Run steps from `step_id` until the flow waits, ends or fails."""
        while True:
            if step_id is None:
                self.end("completed", self.session.step)
                return
            self.steps += 1
            if self.steps > MAX_STEPS_PER_RESUME:
                self.session.status = "failed"
                self.session.wait = None
                self.events.append(FlowFailed(step=step_id, reason="too many steps without a "
                                              "question: the flow loops"))
                self.events.append(SessionEnded(outcome="failed", step=step_id))
                return
            step = self.flow.by_id.get(step_id)
            if step is None:
                self.session.status = "failed"
                self.events.append(FlowFailed(step=step_id, reason="no such step"))
                self.events.append(SessionEnded(outcome="failed", step=step_id))
                return
            self.session.step = step.id
            step_id = self.execute(step)
            if self.session.status in ("waiting", "completed", "failed"):
                return

    def execute(self, step: Step) -> str | None:
        kind = step.kind
        if kind == "send":
            assert step.text is not None
            self.say(self.text(step.text), step.id, step.text.context)
            return step.next
        if kind == "ask":
            self.ask(step)
            return None
        if kind == "branch":
            return self.route(step)
        if kind == "set":
            for name, expr in step.assignments:
                value = _eval_value(expr.tree, self.lookup)
                previous = self.lookup(f"participant.{name}")
                self.session.fields[name] = value
                self.events.append(FieldSet(field=name, value=value, previous=previous))
                if name == "language" and isinstance(value, str) and value in SUPPORTED:
                    # The participant chose a language: speak it from the next message on.
                    self.session.language = value
                    self.loc = self.catalogs(value)
            return step.next
        if kind == "escalate":
            if step.condition is None or step.condition.evaluate(self.lookup):
                self.events.append(EscalationRaised(severity=step.severity or "routine",
                                                    reason=step.reason or "unspecified",
                                                    step=step.id, flow=self.flow.id))
            return step.next
        if kind == "schedule":
            self.events.append(FollowUpScheduled(flow=step.schedule_flow or "",
                                                 due_at=self.due(step), step=step.id))
            return step.next
        # end
        if step.text is not None:
            self.say(self.text(step.text), step.id, step.text.context)
        self.end(step.outcome, step.id)
        return None

    def due(self, step: Step) -> datetime:
        # Whole days count on the participant's calendar (09:00 stays 09:00 across DST);
        # hours and minutes are elapsed time (`after: 1h` is one real hour, DST night or not).
        zone = _zone(self.participant.timezone)
        after = step.schedule_after or timedelta(0)
        days = timedelta(days=after.days)
        wall_day = self.now.astimezone(zone).replace(tzinfo=None) + days
        local = (_localize(wall_day, zone).astimezone(_UTC) + (after - days)).astimezone(zone)
        if step.schedule_at is None:
            return local
        hour, minute = (int(x) for x in step.schedule_at.split(":"))
        wall = local.replace(hour=hour, minute=minute, second=0, microsecond=0, tzinfo=None)
        at = _localize(wall, zone)
        if at <= self.now:
            at = _localize(wall + timedelta(days=1), zone)
        return at

    def end(self, outcome: str, step: str | None) -> None:
        self.session.status = "failed" if outcome == "failed" else "completed"
        self.session.outcome = outcome
        self.session.wait = None
        self.events.append(SessionEnded(outcome=outcome, step=step))

    def route(self, step: Step) -> str | None:
        for rule in step.rules:
            if rule.condition is None or rule.condition.evaluate(self.lookup):
                return rule.goto
        return step.next

    # ---- waiting ------------------------------------------------------------------------

    def ask(self, step: Step) -> None:
        assert step.text is not None
        self.say(self.question(step), step.id, step.text.context)
        self.session.sprint += 1
        wait = Wait(
            id=f"{self.session.id}-{self.session.sprint}", step=step.id,
            reprompt_at=self.now + step.reprompt_after
            if step.reprompt_after and step.reprompts > 0 else None,
            give_up_at=self.now + step.give_up_after if step.give_up_after else None,
        )
        self.session.wait = wait
        self.session.status = "waiting"
        self.events.append(WaitStarted(wait_id=wait.id, step=step.id,
                                       reprompt_at=wait.reprompt_at, give_up_at=wait.give_up_at))

    def leave_wait(self) -> None:
        self.session.wait = None
        self.session.status = "active"

    def reply(self, text: str) -> None:
        keyword = _keyword(text, self.session.language)
        if keyword is not None and keyword.kind == "language" and self.answers_question(text):
            keyword = None  # "Español" answering "Which language?" is an answer, not a switch
        if keyword is not None:
            self.events.append(KeywordSeen(keyword=keyword.kind, language=keyword.language))
            if keyword.kind == "language" and keyword.language:
                self.switch_language(keyword.language)
            return
        wait = self.session.wait
        if not self.session.is_waiting or wait is None:
            return
        step = self.flow.by_id[wait.step]
        if wait.kind == "confirm":
            self.confirm(step, wait, text)
            return
        ok, value = self.parse(step, text)
        if ok:
            if step.answer is not None and step.answer.type in ("date", "datetime"):
                self.ask_confirmation(step, wait, value)
                return
            self.record(step, value)
            return
        self.invalid(step, wait)

    def answers_question(self, text: str) -> bool:
        wait = self.session.wait
        if not self.session.is_waiting or wait is None or wait.kind != "answer":
            return False
        return self.parse(self.flow.by_id[wait.step], text)[0]

    def switch_language(self, language: str) -> None:
        self.session.language = language
        self.loc = self.catalogs(language)
        wait = self.session.wait
        if self.session.is_waiting and wait is not None:
            step = self.flow.by_id[wait.step]
            if wait.kind == "confirm":  # repeat what is being confirmed, not the question
                self.ask_confirmation(step, wait, wait.pending)
                return
            assert step.text is not None
            self.say(self.question(step), step.id, step.text.context)

    def parse(self, step: Step, text: str) -> tuple[bool, Any]:
        answer = step.answer
        assert answer is not None
        lang = self.session.language
        kind = answer.type
        if kind == "text":
            cleaned = text.replace("\x00", "").strip()
            return bool(cleaned), cleaned
        if kind == "yes_no":
            yn = _yes_no(text, lang)
            return yn is not None, yn
        if kind in ("number", "scale"):
            n = _number(text, lang, answer.minimum, answer.maximum)
            return n is not None, n
        if kind in ("choice", "multi_choice"):
            choices = tuple(Choice(c.value, (c.label.source, self.loc.translate(c.label.context,
                                                                                c.label.source),
                                             *c.synonyms,
                                             *choice_synonyms(lang, c.value, self.flow.id,
                                                              step.id))) for c in answer.choices)
            if kind == "choice":
                picked = _choice(text, lang, choices)
                return picked is not None, picked
            many = understand.parse_multi_choice(text, lang, choices)
            return bool(many), many
        local_now = self.now.astimezone(_zone(self.participant.timezone))
        when = understand.parse_when(text, lang, local_now)
        # A day without a time does not answer "when": the hint asks for both.
        if when is None or (kind == "datetime" and not when.has_time):
            return False, None
        if kind == "date":
            return True, when.at.date().isoformat()
        return True, when.at.isoformat()

    def ask_confirmation(self, step: Step, wait: Wait, value: Any) -> None:
        has_time = step.answer is not None and step.answer.type == "datetime"
        shown = self.loc.format_when(datetime.fromisoformat(value), has_time)
        wait.kind = "confirm"
        wait.pending = value
        body = self.system("confirm.when", when=shown)
        # The date often opens the sentence, and some locales write it lowercase ("mar, 3 ...").
        self.say(body[:1].upper() + body[1:], step.id, system_context("confirm.when"))

    def confirm(self, step: Step, wait: Wait, text: str) -> None:
        yn = _yes_no(text, self.session.language)
        if yn is True:
            self.record(step, wait.pending)
            return
        if yn is False:
            wait.kind = "answer"
            wait.pending = None
            self.say(self.system("confirm.again"), step.id, system_context("confirm.again"))
            return
        ok, value = self.parse(step, text)  # they may simply write another date
        if ok:
            self.ask_confirmation(step, wait, value)
            return
        self.invalid(step, wait)

    def record(self, step: Step, value: Any) -> None:
        assert step.answer is not None
        key = step.save_as or step.id
        self.session.answers[key] = value
        self.last_key = key
        self.events.append(AnswerRecorded(step=step.id, key=key, value=value,
                                          answer_type=step.answer.type))
        self.leave_wait()
        self.walk(self.route(step))

    def hint(self, step: Step) -> tuple[str, str]:
        if step.hint is not None:
            return self.text(step.hint), step.hint.context
        answer = step.answer
        assert answer is not None
        key = f"hint.{answer.type}"
        if answer.type in ("number", "scale"):
            if answer.minimum is None or answer.maximum is None:
                key = "hint.number_any"
            else:
                key = "hint.number"
            return (self.system(key, min=answer.minimum, max=answer.maximum),
                    system_context(key))
        return self.system(key), system_context(key)

    def invalid(self, step: Step, wait: Wait) -> None:
        wait.invalid += 1
        final = wait.invalid > step.max_invalid
        self.events.append(AnswerRejected(step=step.id, attempt=wait.invalid, final=final))
        if not final:
            body, context = self.hint(step)
            self.say(body, step.id, context)
            return
        # Retries used up: take the coordinator's path, or move on without an answer.
        self.leave_wait()
        self.walk(step.on_invalid or step.next)

    def timeout(self, wait_id: str) -> None:
        wait = self.session.wait
        if not self.session.is_waiting or wait is None or wait.id != wait_id:
            return  # the session has moved on since this nudge was scheduled
        step = self.flow.by_id[wait.step]
        if wait.give_up_at is not None and self.now >= wait.give_up_at:
            self.events.append(QuestionExpired(step=step.id))
            self.leave_wait()
            if step.on_give_up:
                self.walk(step.on_give_up)
            else:
                self.end("expired", step.id)
            return
        if wait.reprompt_at is None or self.now < wait.reprompt_at:
            return  # early or duplicate nudge
        wait.reprompts += 1
        if step.reprompt is not None:
            self.say(self.text(step.reprompt), step.id, step.reprompt.context)
        else:
            assert step.text is not None
            self.say(self.question(step), step.id, step.text.context)
        more = wait.reprompts < step.reprompts and step.reprompt_after is not None
        wait.reprompt_at = self.now + step.reprompt_after if more and step.reprompt_after else None
        if wait.give_up_at is not None and wait.reprompt_at is not None \
                and wait.reprompt_at >= wait.give_up_at:
            wait.reprompt_at = None
        self.events.append(WaitStarted(wait_id=wait.id, step=step.id,
                                       reprompt_at=wait.reprompt_at, give_up_at=wait.give_up_at))


def _eval_value(tree: tuple[Any, ...], lookup: Any) -> Any:
    """`set:` values are plain values or paths; conditions evaluate to booleans."""
    if tree[0] == "lit":
        return tree[1]
    if tree[0] == "name":
        return lookup(tree[1])
    if tree[0] == "list":
        return [_eval_value(t, lookup) for t in tree[1]]
    from .expr import _eval

    return _eval(tree, lookup)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _localize(wall: datetime, zone: ZoneInfo) -> datetime:
    """Attach `zone` to a wall-clock time; a time skipped by a DST jump moves forward."""
    aware = wall.replace(tzinfo=zone)
    roundtrip = aware.astimezone(_UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != wall:  # nonexistent: fold=0 gives the pre-jump offset
        return roundtrip
    return aware


# ---- memoised reply parsers -------------------------------------------------------------------
# Replies repeat a great deal across participants ("yes", "7", "no"), and the parsers are pure
# functions of their arguments, so a small cache takes most of their cost off a resume. Long
# replies are rarely repeated and are parsed every time. Dates depend on `now`: never cached.

_MEMO_SIZE = 8192
_MEMO_MAX_TEXT = 64


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _keyword_memo(text: str, lang: str) -> Keyword | None:
    return understand.detect_keyword(text, lang)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _yes_no_memo(text: str, lang: str) -> bool | None:
    return understand.parse_yes_no(text, lang)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _number_memo(text: str, lang: str, lo: int | None, hi: int | None) -> int | None:
    return understand.parse_number(text, lang, lo, hi)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _choice_memo(text: str, lang: str, choices: tuple[Choice, ...]) -> str | None:
    return understand.parse_choice(text, lang, choices)


def _keyword(text: str, lang: str) -> Keyword | None:
    if len(text) > _MEMO_MAX_TEXT:
        return understand.detect_keyword(text, lang)
    return _keyword_memo(text, lang)


def _yes_no(text: str, lang: str) -> bool | None:
    if len(text) > _MEMO_MAX_TEXT:
        return understand.parse_yes_no(text, lang)
    return _yes_no_memo(text, lang)


def _number(text: str, lang: str, lo: int | None, hi: int | None) -> int | None:
    if len(text) > _MEMO_MAX_TEXT:
        return understand.parse_number(text, lang, lo, hi)
    return _number_memo(text, lang, lo, hi)


def _choice(text: str, lang: str, choices: tuple[Choice, ...]) -> str | None:
    if len(text) > _MEMO_MAX_TEXT:
        return understand.parse_choice(text, lang, choices)
    return _choice_memo(text, lang, choices)


def clear_parse_cache() -> None:
    """Forget memoised parses: after the word lists change, and in benchmarks."""
    for memo in (_keyword_memo, _yes_no_memo, _number_memo, _choice_memo):
        memo.cache_clear()
