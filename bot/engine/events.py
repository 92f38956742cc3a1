"""What the engine reports. It never acts: the shell turns each event into effects
(rows, replies, outbox messages, scheduled nudges, alerts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class MessageCreated(Event):
    """A message for the participant, already rendered in `language`."""

    type: ClassVar[str] = "message"
    text: str
    step: str
    language: str
    contexts: tuple[str, ...] = ()
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class WaitStarted(Event):
    """The session waits for a reply; the shell schedules nudges at the deadlines."""

    type: ClassVar[str] = "wait"
    wait_id: str
    step: str
    reprompt_at: datetime | None
    give_up_at: datetime | None


@dataclass(frozen=True, slots=True)
class AnswerRecorded(Event):
    type: ClassVar[str] = "answer"
    step: str
    key: str
    value: Any
    answer_type: str


@dataclass(frozen=True, slots=True)
class AnswerRejected(Event):
    """A reply that did not fit the question; `final` when the retries are used up."""

    type: ClassVar[str] = "invalid"
    step: str
    attempt: int
    final: bool = False


@dataclass(frozen=True, slots=True)
class QuestionExpired(Event):
    type: ClassVar[str] = "expired"
    step: str


@dataclass(frozen=True, slots=True)
class FieldSet(Event):
    type: ClassVar[str] = "field"
    field: str
    value: Any
    previous: Any = None


@dataclass(frozen=True, slots=True)
class EscalationRaised(Event):
    type: ClassVar[str] = "escalation"
    severity: str
    reason: str
    step: str
    flow: str


@dataclass(frozen=True, slots=True)
class KeywordSeen(Event):
    """stop / start / help / language: enforcing them is the shell's job."""

    type: ClassVar[str] = "keyword"
    keyword: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class FollowUpScheduled(Event):
    type: ClassVar[str] = "follow_up"
    flow: str
    due_at: datetime
    step: str


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    type: ClassVar[str] = "ended"
    outcome: str
    step: str | None = None


@dataclass(frozen=True, slots=True)
class FlowFailed(Event):
    """The flow could not go on (e.g. a loop with no question in it)."""

    type: ClassVar[str] = "failed"
    step: str
    reason: str


def event_as_dict(event: Event) -> dict[str, Any]:
    data = asdict(event)
    data["type"] = event.type
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}
