"""The coordinator's simulator: a flow played in a terminal or from a script, no phone needed.

The conversation logic (session, nudges, follow-ups, the simulated clock) is
`bot.engine.transcript.Conversation`, the same code that checks golden transcripts, so what
the simulator shows is what a transcript of the same exchange would record. This module
adds the I/O: reading lines, the slash commands, and how messages and events are shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from .engine.durations import parse_duration
from .engine.events import (
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
from .engine.flow import Flow
from .engine.loader import flow_files, load_flow
from .engine.localizer import Catalogs
from .engine.problems import FlowError, Problem
from .engine.session import Participant
from .engine.transcript import Conversation, FlowStarted, zone

HELP = """\
Type the participant's replies. Commands:
  /wait 2h      move the clock forward (30m, 2h, 1d12h); due re-prompts and follow-ups fire
  /day +1       move to the same time N days later
  /now          show the simulated time
  /state        show the session as stored (JSON)
  /events       hide or show events (answers, escalations, keywords)
  /restart      start the flow again
  /quit         leave"""

Out = Callable[[str], None]
Style = Callable[[str], str]


def load_flows(folder: str | Path) -> dict[str, Flow]:
    """Every flow in `folder` by id; raise FlowError listing all problems found."""
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for path in flow_files([folder]):
        try:
            flow = load_flow(path)
        except FlowError as exc:
            problems.extend(exc.problems)
            continue
        if flow.id in flows:
            problems.append(Problem(str(path), 1, None, f"flow id `{flow.id}` is also used by "
                                    f"{flows[flow.id].path}", code="duplicate_flow"))
        flows[flow.id] = flow
    if problems:
        raise FlowError(problems)
    return flows


def when_text(when: datetime, tz_name: str) -> str:
    local = when.astimezone(zone(tz_name))
    return local.strftime("%a %Y-%m-%d %H:%M ") + (local.tzname() or tz_name)


def describe(event: Event, tz_name: str) -> str | None:
    """One line for an event, or None for those shown otherwise (messages)."""
    if isinstance(event, MessageCreated):
        return None
    if isinstance(event, AnswerRecorded):
        return f"answer {event.key} = {_value(event.value)}"
    if isinstance(event, AnswerRejected):
        return f"not understood (attempt {event.attempt})" + (
            ", no retries left" if event.final else "")
    if isinstance(event, WaitStarted):
        parts = []
        if event.reprompt_at:
            parts.append(f"re-prompt {when_text(event.reprompt_at, tz_name)}")
        if event.give_up_at:
            parts.append(f"give up {when_text(event.give_up_at, tz_name)}")
        return f"waiting at {event.step}" + (f" ({', '.join(parts)})" if parts else "")
    if isinstance(event, QuestionExpired):
        return f"no reply: {event.step} expired"
    if isinstance(event, FieldSet):
        return f"field {event.field} = {_value(event.value)}"
    if isinstance(event, EscalationRaised):
        return f"ESCALATION {event.severity}: {event.reason} (step {event.step})"
    if isinstance(event, KeywordSeen):
        return f"keyword {event.keyword}" + (f" -> {event.language}" if event.language else "")
    if isinstance(event, FollowUpScheduled):
        return f"follow-up {event.flow} due {when_text(event.due_at, tz_name)}"
    if isinstance(event, SessionEnded):
        return f"ended: {event.outcome}"
    if isinstance(event, FlowFailed):
        return f"FAILED at {event.step}: {event.reason}"
    if isinstance(event, FlowStarted):
        return f"started {event.flow} (session {event.session})"
    return f"{event.type} {json.dumps(event.to_dict(), ensure_ascii=False, default=str)}"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, int | float) \
        or isinstance(value, bool) else str(value)


class Simulator:
    """Reads participant lines and slash commands; prints messages and events."""

    def __init__(self, flows: Mapping[str, Flow], flow_id: str, participant: Participant,
                 now: datetime, catalogs: Catalogs, params: Mapping[str, Any] | None = None,
                 out: Out = print, dim: Style = str, echo_input: bool = False) -> None:
        self.flows = flows
        self.flow_id = flow_id
        self.initial = participant
        self.catalogs = catalogs
        self.params = dict(params or {})
        self.out = out
        self.dim = dim
        self.echo_input = echo_input
        self.show_events = True
        self.conv = Conversation(flows, participant, now, catalogs)

    @property
    def tz(self) -> str:
        return self.conv.participant.timezone

    def begin(self) -> None:
        self.out(self.dim(f"-- {when_text(self.conv.now, self.tz)}; /help for commands"))
        self._do(lambda: self.conv.start(self.flow_id, self.params))

    def run(self, lines: Iterable[str]) -> None:
        """Play lines until they run out or /quit."""
        for raw in lines:
            line = raw.rstrip("\r\n")
            text = line.strip()
            if self.echo_input and text and not text.startswith("#"):
                self.out(self.dim(f"-- {text}") if text.startswith("/") else f"you> {text}")
            if not self.handle(line):
                return

    def handle(self, line: str) -> bool:
        """One line of input; False means quit."""
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        if not text.startswith("/"):
            self._do(lambda: self.conv.reply(text))
            return True
        command, _, arg = text.partition(" ")
        arg = arg.strip()
        if command in ("/quit", "/exit", "/q"):
            return False
        if command == "/wait":
            try:
                delta = parse_duration(arg)
            except ValueError as exc:
                self.out(f"!! {exc}")
                return True
            self._do(lambda: self.conv.advance(delta))
            self._clock()
        elif command == "/day":
            try:
                days = int(arg or "1")
            except ValueError:
                self.out("!! write /day +1 (or any number of days)")
                return True
            self._do(lambda: self.conv.advance_days(days))
            self._clock()
        elif command == "/now":
            self._clock()
        elif command == "/state":
            session = self.conv.session
            self.out("(no session)" if session is None else
                     json.dumps(json.loads(session.to_json()), indent=2, ensure_ascii=False))
        elif command == "/events":
            self.show_events = not self.show_events
            self.out(self.dim(f"-- events {'shown' if self.show_events else 'hidden'}"))
        elif command == "/restart":
            self.conv = Conversation(self.flows, self.initial, self.conv.now, self.catalogs)
            self.out(self.dim("-- restarted"))
            self._do(lambda: self.conv.start(self.flow_id, self.params))
        else:
            self.out(HELP)
        return True

    def _clock(self) -> None:
        self.out(self.dim(f"-- now {when_text(self.conv.now, self.tz)}"))

    def _do(self, action: Callable[[], list[Event]]) -> None:
        try:
            events = action()
        except Exception as exc:  # show engine errors and keep the session going
            self.out(f"!! {type(exc).__name__}: {exc}")
            return
        self.show(events)

    def show(self, events: Iterable[Event]) -> None:
        for event in events:
            if isinstance(event, MessageCreated):
                first, *rest = event.text.split("\n")
                self.out("bot> " + first)
                for more in rest:
                    self.out("     " + more)
            elif self.show_events:
                line = describe(event, self.tz)
                if line:
                    self.out(self.dim("  · " + line))
