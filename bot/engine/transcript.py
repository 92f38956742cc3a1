"""Golden transcripts: scripted conversations checked against the engine, message by message.

A transcript is a YAML file (``tests/transcripts/<flow>/<case>.yaml``)::

    participant: {language: es, timezone: America/New_York, fields: {}}
    start: {flow: daily_checkin, params: {}, now: "2026-03-02T08:30:00"}
    exchange:
      - expect: ["Hola, ..."]          # every message of the last step, exact text
      - send: "siete"                 # the participant's reply
      - events: [{type: answer, key: wellbeing, value: 7}]   # partial dicts, in order
      - no_events: [{type: escalation}]
      - wait: 2h                      # or `day: +1`: moves the clock, fires due nudges
      - session: {status: waiting, step: meds}                # partial session JSON
      - start: {flow: daily_checkin}  # start another flow at the current time
      - outcome: completed

A naive `now` is participant-local time; `day: +N` keeps the local wall-clock time across
DST. Besides the engine's events, `{type: started, flow: ...}` marks each flow that starts
(by `start`, or as a follow-up that came due). Every message the bot sends must be checked
by an ``expect`` before the next action: a transcript is the whole conversation, not a
sample.

`Conversation` plays the shell's part without any I/O: it keeps the session, the pending
nudges and follow-ups, and a simulated clock. Moving the clock fires every nudge whose
deadline has come, in order and at its own time, exactly as the workers would; the
simulator (`bot.simulator`) drives the same class from a terminal.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .durations import parse_duration
from .events import (
    Event,
    FieldSet,
    FollowUpScheduled,
    KeywordSeen,
    MessageCreated,
    WaitStarted,
)
from .flow import Flow
from .languages import SUPPORTED, primary
from .localizer import Catalogs
from .runner import Reply, Timeout, resume, start
from .session import Participant, Session

#: Keys whose scalars stay exactly as written: a participant's "yes" or "0" is text, not
#: YAML's boolean or number.
_VERBATIM_KEYS = frozenset({"send", "expect"})
_PARTICIPANT_KEYS = frozenset({"id", "language", "timezone", "fields"})
_START_KEYS = frozenset({"flow", "params", "now"})
_ITEM_KEYS = frozenset({"send", "wait", "day", "expect", "events", "no_events", "outcome",
                        "session", "start"})


@dataclass(frozen=True, slots=True)
class FlowStarted(Event):
    """Reported by the conversation (not the engine) when a flow starts."""

    type: ClassVar[str] = "started"
    flow: str
    session: str


@dataclass(frozen=True, slots=True)
class Mismatch:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class TranscriptError(ValueError):
    """The transcript itself is malformed (as opposed to the bot disagreeing with it)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


# ---- the simulated shell --------------------------------------------------------------------


class Conversation:
    """One participant's conversations under a simulated clock: the shell, minus the I/O."""

    def __init__(self, flows: Mapping[str, Flow], participant: Participant, now: datetime,
                 catalogs: Catalogs, session_prefix: str = "s") -> None:
        if now.tzinfo is None:
            raise ValueError("the conversation clock needs an aware datetime")
        self.flows = flows
        self.participant = participant
        self.now = now
        self.catalogs = catalogs
        self.session: Session | None = None
        self.sessions: list[Session] = []  # finished ones, oldest first
        self._prefix = session_prefix
        self._count = 0
        self._seq = 0
        self._nudges: list[tuple[datetime, int, str]] = []
        self._follow_ups: list[tuple[datetime, int, str]] = []
        self._deferred: list[str] = []  # follow-ups that came due mid-conversation

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.participant.timezone)

    @property
    def in_progress(self) -> bool:
        return self.session is not None and self.session.is_waiting

    def start(self, flow_id: str, params: Mapping[str, Any] | None = None) -> list[Event]:
        flow = self._flow(flow_id)
        if self.session is not None:
            self.sessions.append(self.session)
        self._count += 1
        sid = f"{self._prefix}{self._count}"
        session, events = start(flow, self.participant, self.now, self.catalogs,
                                params=params, session_id=sid)
        self.session = session
        out: list[Event] = [FlowStarted(flow=flow.id, session=sid), *events]
        self._apply(events)
        return out + self._start_deferred()

    def reply(self, text: str) -> list[Event]:
        if self.session is None:
            return []
        flow = self._flow(self.session.flow_id)
        self.session, events = resume(flow, self.session, self.participant, Reply(text),
                                      self.now, self.catalogs)
        self._apply(events)
        return events + self._start_deferred()

    def advance(self, delta: timedelta) -> list[Event]:
        return self.move_to(self.now + delta)

    def advance_days(self, days: int) -> list[Event]:
        """Same local wall-clock time `days` calendar days later (DST-safe)."""
        local = self.now.astimezone(self.zone)
        wall = local.replace(tzinfo=None) + timedelta(days=days)
        return self.move_to(localize(wall, self.zone))

    def move_to(self, target: datetime) -> list[Event]:
        """Move the clock to `target`, firing due nudges and follow-ups at their own times."""
        out: list[Event] = []
        while True:
            due = self._next_due(target)
            if due is None:
                break
            when, kind, payload = due
            self.now = max(self.now, when)
            if kind == "nudge":
                out += self._fire(payload)
            elif self.in_progress:
                self._deferred.append(payload)  # the shell waits for the current flow
            else:
                out += self.start(payload)
        self.now = max(self.now, target)
        return out + self._start_deferred()

    def pending(self) -> list[tuple[datetime, str, str]]:
        """What is scheduled: (when, "nudge" | "follow_up", wait id or flow id), in order."""
        items = [(w, "nudge", p) for w, _, p in self._nudges]
        items += [(w, "follow_up", p) for w, _, p in self._follow_ups]
        return sorted(items)

    # ---- internals ----------------------------------------------------------------------

    def _flow(self, flow_id: str) -> Flow:
        try:
            return self.flows[flow_id]
        except KeyError:
            raise KeyError(f"no flow `{flow_id}` (have: {', '.join(sorted(self.flows))})") \
                from None

    def _next_due(self, target: datetime) -> tuple[datetime, str, str] | None:
        """Take the earliest nudge or follow-up due by `target` (ties: first scheduled)."""
        nudge = self._nudges[0] if self._nudges else None
        follow = self._follow_ups[0] if self._follow_ups else None
        if nudge is not None and (follow is None or nudge[:2] <= follow[:2]):
            if nudge[0] > target:
                return None
            heapq.heappop(self._nudges)
            return nudge[0], "nudge", nudge[2]
        if follow is not None and follow[0] <= target:
            heapq.heappop(self._follow_ups)
            return follow[0], "follow_up", follow[2]
        return None

    def _fire(self, wait_id: str) -> list[Event]:
        if self.session is None:
            return []
        # Every nudge goes to the engine, stale ones included: telling them apart is its job.
        flow = self._flow(self.session.flow_id)
        self.session, events = resume(flow, self.session, self.participant, Timeout(wait_id),
                                      self.now, self.catalogs)
        self._apply(events)
        return events + self._start_deferred()

    def _push(self, heap: list[tuple[datetime, int, str]], when: datetime, payload: str) -> None:
        self._seq += 1
        heapq.heappush(heap, (when, self._seq, payload))

    def _apply(self, events: Sequence[Event]) -> None:
        """What the shell does with each event that affects later turns."""
        for event in events:
            if isinstance(event, WaitStarted):
                for when in (event.reprompt_at, event.give_up_at):
                    if when is not None:
                        self._push(self._nudges, when, event.wait_id)
            elif isinstance(event, FollowUpScheduled):
                self._push(self._follow_ups, event.due_at, event.flow)
            elif isinstance(event, FieldSet):
                fields = {**self.participant.fields, event.field: event.value}
                self.participant = replace(self.participant, fields=fields)
                if event.field == "language" and event.value in SUPPORTED:
                    self.participant = replace(self.participant, language=str(event.value))
            elif isinstance(event, KeywordSeen) and event.keyword == "language" \
                    and event.language:
                self.participant = replace(self.participant, language=event.language)

    def _start_deferred(self) -> list[Event]:
        out: list[Event] = []
        while self._deferred and not self.in_progress:
            out += self.start(self._deferred.pop(0))
        return out


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone `{name}`") from None


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """Attach `tz` to a wall-clock time; a time skipped by a DST jump moves forward."""
    aware = wall.replace(tzinfo=tz)
    back = aware.astimezone(ZoneInfo("UTC")).astimezone(tz)
    return back if back.replace(tzinfo=None) != wall else aware


# ---- reading transcripts ------------------------------------------------------------------


class _Map(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]


class _List(list[Any]):
    line: int = 0


def _line(value: Any, default: int = 0) -> int:
    return int(getattr(value, "line", default) or default)


def _convert(node: yaml.Node, verbatim: bool = False) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = _Map()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            out[key] = _convert(value_node, verbatim or key in _VERBATIM_KEYS)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = _List(_convert(v, verbatim) for v in node.value)
        seq.line = node.start_mark.line + 1
        return seq
    if verbatim and isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return yaml.SafeLoader("").construct_object(node, deep=True)


def parse_transcript(text: str, path: str = "<transcript>") -> Any:
    """Parse transcript YAML, keeping line numbers; raise TranscriptError if it is not YAML."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise TranscriptError(mark.line + 1 if mark else 1,
                              f"YAML syntax: {exc.problem or exc}") from None
    finally:
        loader.dispose()
    if node is None:
        raise TranscriptError(1, "the transcript is empty")
    return _convert(node)


# ---- checking -------------------------------------------------------------------------------


def run_transcript(data: Any, path: str, flows: Mapping[str, Flow],
                   catalogs: Catalogs) -> list[Mismatch]:
    """Play the transcript against the engine; return every disagreement, or [] if none."""
    try:
        return _Check(data, path, flows, catalogs).run()
    except TranscriptError as exc:
        return [Mismatch(path, exc.line, str(exc))]


def _when(value: Any, tz: ZoneInfo, line: int) -> datetime:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    else:
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            raise TranscriptError(line, f"`{value}` is not a date and time like "
                                  "2026-03-02T08:30:00") from None
    return localize(when, tz) if when.tzinfo is None else when


class _Check:
    def __init__(self, data: Any, path: str, flows: Mapping[str, Flow],
                 catalogs: Catalogs) -> None:
        self.path = path
        self.flows = flows
        self.catalogs = catalogs
        self.out: list[Mismatch] = []
        if not isinstance(data, _Map):
            raise TranscriptError(1, "a transcript is a mapping with `participant`, `start` "
                                  "and `exchange`")
        self.data = data
        self.batch: list[Event] = []
        self.unchecked: list[str] = []
        self.batch_line = 1

    def fail(self, line: int, message: str) -> None:
        self.out.append(Mismatch(self.path, line, message))

    def section(self, key: str, kind: type) -> Any:
        value = self.data.get(key)
        if not isinstance(value, kind):
            what = "a mapping" if kind is _Map else "a list"
            raise TranscriptError(self.data.key_lines.get(key, 1), f"`{key}` must be {what}")
        return value

    def run(self) -> list[Mismatch]:
        for key in sorted(set(self.data) - {"participant", "start", "exchange", "description"}):
            self.fail(self.data.key_lines[key], f"unknown transcript key `{key}`")
        who = self.section("participant", _Map)
        begin = self.section("start", _Map)
        exchange = self.section("exchange", _List)
        # A misspelt key would silently fall back to a default (UTC, English): refuse it.
        for section, allowed in ((who, _PARTICIPANT_KEYS), (begin, _START_KEYS)):
            for key in sorted(set(section) - allowed):
                self.fail(section.key_lines[key], f"unknown key `{key}`; use "
                          + ", ".join(sorted(allowed)))
        try:
            tz = zone(str(who.get("timezone", "UTC")))
        except ValueError as exc:
            raise TranscriptError(who.key_lines.get("timezone", who.line), str(exc)) from None
        language = primary(str(who.get("language", "en")))
        if language not in SUPPORTED:
            raise TranscriptError(who.key_lines.get("language", who.line),
                                  f"`{who.get('language')}` is not one of "
                                  + ", ".join(SUPPORTED))
        if not isinstance(who.get("fields") or {}, Mapping):
            raise TranscriptError(who.key_lines["fields"], "`fields` must be a mapping")
        participant = Participant(id=str(who.get("id", "participant")),
                                  language=language,
                                  timezone=str(who.get("timezone", "UTC")),
                                  fields=dict(who.get("fields") or {}))
        if "now" not in begin:
            raise TranscriptError(begin.line, "`start` needs `now`, e.g. now: 2026-03-02T08:30:00")
        now = _when(begin["now"], tz, begin.key_lines["now"])
        self.conv = Conversation(self.flows, participant, now, self.catalogs)
        if not self.act(begin.line, lambda: self.start(begin)):
            return self.out
        for item in exchange:
            if not isinstance(item, _Map) or len(item) != 1:
                self.fail(_line(item, exchange.line),
                          "each exchange item is one of: " + ", ".join(sorted(_ITEM_KEYS)))
                continue
            (key, value), = item.items()
            if key not in _ITEM_KEYS:
                self.fail(item.line, f"unknown exchange item `{key}`; use one of "
                          + ", ".join(sorted(_ITEM_KEYS)))
                continue
            if not self.item(key, value, item.line):
                return self.out
        self.check_unchecked(_line(exchange, 1), end=True)
        return self.out

    # ---- actions ------------------------------------------------------------------------

    def start(self, spec: _Map) -> list[Event]:
        if "flow" not in spec:
            raise TranscriptError(spec.line, "`start` needs `flow:`")
        params = spec.get("params") or {}
        if not isinstance(params, Mapping):
            raise TranscriptError(spec.key_lines.get("params", spec.line),
                                  "`params` must be a mapping")
        flow = self.flows.get(str(spec["flow"]))
        missing = [p for p in (flow.params if flow else ()) if p not in params]
        if missing:
            raise TranscriptError(spec.line, f"flow `{spec['flow']}` needs params: "
                                  + ", ".join(missing))
        return self.conv.start(str(spec["flow"]),
                               {k: _param(v) for k, v in params.items()})

    def act(self, line: int, action: Callable[[], list[Event]]) -> bool:
        """Run one action; False when the engine raised and the transcript cannot go on."""
        self.check_unchecked(line)
        try:
            self.batch = action()
        except TranscriptError:
            raise
        except Exception as exc:  # any engine failure is a finding, reported in place
            self.fail(line, f"the engine raised {type(exc).__name__}: {exc}")
            return False
        self.batch_line = line
        self.unchecked = [e.text for e in self.batch if isinstance(e, MessageCreated)]
        return True

    def item(self, key: str, value: Any, line: int) -> bool:
        if key == "send":
            return self.act(line, lambda: self.conv.reply(str(value)))
        if key == "wait":
            try:
                delta = parse_duration(str(value))
            except ValueError as exc:
                raise TranscriptError(line, str(exc)) from None
            return self.act(line, lambda: self.conv.advance(delta))
        if key == "day":
            try:
                days = int(str(value).strip())
            except ValueError:
                raise TranscriptError(line, f"`day: {value}` must be like +1 or +14") from None
            return self.act(line, lambda: self.conv.advance_days(days))
        if key == "start":
            spec = value if isinstance(value, _Map) else _Map(flow=value)
            if not isinstance(value, _Map):
                spec.line, spec.key_lines = line, {"flow": line}
            return self.act(line, lambda: self.start(spec))
        if key == "expect":
            self.expect(value, line)
        elif key == "events":
            self.events(value, line)
        elif key == "no_events":
            self.no_events(value, line)
        elif key == "outcome":
            self.outcome(value, line)
        else:
            self.session(value, line)
        return True

    # ---- checks -------------------------------------------------------------------------

    def check_unchecked(self, line: int, end: bool = False) -> None:
        if not self.unchecked:
            return
        where = "at the end" if end else "before this step"
        shown = "; ".join(_quote(t) for t in self.unchecked)
        self.fail(self.batch_line, f"the bot sent {len(self.unchecked)} message(s) that no "
                  f"`expect` checks ({where}, line {line}): {shown}")
        self.unchecked = []

    def expect(self, value: Any, line: int) -> None:
        wanted = [value] if isinstance(value, str) else list(value or [])
        got = [e.text for e in self.batch if isinstance(e, MessageCreated)]
        self.unchecked = []
        if wanted == got:
            return
        lines = getattr(value, "line", line)
        if len(wanted) != len(got):
            self.fail(lines, f"expected {len(wanted)} message(s), the bot sent {len(got)}:"
                      + "".join(f"\n    bot: {_quote(t)}" for t in got))
            return
        for i, (want, have) in enumerate(zip(wanted, got, strict=True), 1):
            if want != have:
                self.fail(lines, f"message {i} differs:\n    expected: {_quote(want)}"
                          f"\n    bot sent: {_quote(have)}{_first_difference(want, have)}")

    def events(self, value: Any, line: int) -> None:
        if not isinstance(value, list):
            raise TranscriptError(line, "`events` must be a list of partial events")
        actual = [e.to_dict() for e in self.batch]
        pos = 0
        for want in value:
            if not isinstance(want, Mapping):
                raise TranscriptError(_line(value, line), "each event is a mapping, "
                                      "e.g. {type: answer, key: wellbeing, value: 7}")
            found = next((i for i in range(pos, len(actual)) if _matches(want, actual[i])), None)
            if found is None:
                earlier = any(_matches(want, a) for a in actual[:pos])
                note = " (it came earlier: events are checked in order)" if earlier else ""
                self.fail(_line(want, line), f"no event {_brief(want)}{note}; events were:"
                          + "".join(f"\n    {_brief(a)}" for a in actual
                                    if a["type"] not in ("message",)))
                continue
            pos = found + 1

    def no_events(self, value: Any, line: int) -> None:
        if not isinstance(value, list):
            raise TranscriptError(line, "`no_events` must be a list of partial events")
        for want in value:
            for actual in (e.to_dict() for e in self.batch):
                if isinstance(want, Mapping) and _matches(want, actual):
                    self.fail(_line(want, line), f"unexpected event {_brief(actual)}")

    def outcome(self, value: Any, line: int) -> None:
        session = self.conv.session
        if session is None:
            self.fail(line, "no flow has started")
        elif session.is_waiting:
            self.fail(line, f"expected outcome `{value}` but the flow is still waiting at "
                      f"step `{session.step}`")
        elif session.outcome != str(value):
            self.fail(line, f"expected outcome `{value}`, got `{session.outcome}`")

    def session(self, value: Any, line: int) -> None:
        if self.conv.session is None:
            self.fail(line, "no flow has started")
            return
        if not isinstance(value, Mapping):
            raise TranscriptError(line, "`session` must be a mapping of expected values")
        actual = json.loads(self.conv.session.to_json())
        if not _matches(value, actual):
            self.fail(line, f"session differs: expected {_brief(value)}; it is "
                      f"{_brief({k: actual.get(k) for k in value})}")


def _param(value: Any) -> Any:
    """Parameters travel as JSON between shell and engine: datetimes become ISO text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _matches(want: Any, have: Any) -> bool:
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(
            k in have and _matches(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list | tuple) and len(want) == len(have) and all(
            _matches(w, h) for w, h in zip(want, have, strict=True))
    if isinstance(want, datetime | date) or (isinstance(want, str) and isinstance(have, str)
                                             and want != have):
        return _same_time(want, have)
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    return bool(want == have)


def _same_time(want: Any, have: Any) -> bool:
    try:
        w = want if isinstance(want, datetime) else datetime.fromisoformat(str(want))
        h = datetime.fromisoformat(str(have))
    except ValueError:
        return False
    if (w.tzinfo is None) != (h.tzinfo is None):
        return False
    return w == h


def _brief(data: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in data.items()
                           if k != "contexts") + "}"


def _value(v: Any) -> str:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, str):
        return _quote(v) if (" " in v or not v) else v
    return json.dumps(v, ensure_ascii=False, default=str)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _first_difference(want: str, have: str) -> str:
    i = next((i for i, (a, b) in enumerate(zip(want, have, strict=False)) if a != b),
             min(len(want), len(have)))
    return f"\n    (first difference at character {i + 1})"


__all__ = [
    "Conversation", "FlowStarted", "Mismatch", "TranscriptError", "localize",
    "parse_transcript", "run_transcript", "zone",
]
