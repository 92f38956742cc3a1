"""Conversation state between two resumes. Serialises to JSON; no behaviour here."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import Any, Literal

Status = Literal["active", "waiting", "completed", "failed"]
WaitKind = Literal["answer", "confirm"]


@dataclass(frozen=True, slots=True)
class Participant:
    """What the engine may know about a participant: no phone number, no name required."""

    id: str
    language: str = "en"
    timezone: str = "UTC"
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Wait:
    id: str
    step: str
    kind: WaitKind = "answer"
    invalid: int = 0
    reprompts: int = 0
    reprompt_at: datetime | None = None
    give_up_at: datetime | None = None
    pending: Any = None  # a parsed date awaiting the participant's confirmation


@dataclass(slots=True)
class Session:
    id: str
    flow_id: str
    flow_version: int
    participant_id: str
    language: str
    started_at: datetime
    status: Status = "active"
    step: str | None = None
    wait: Wait | None = None
    sprint: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    updated_at: datetime | None = None

    @property
    def is_waiting(self) -> bool:
        return self.status == "waiting" and self.wait is not None

    def copy(self) -> Session:
        wait = None
        if self.wait is not None:
            w = self.wait
            wait = Wait(w.id, w.step, w.kind, w.invalid, w.reprompts, w.reprompt_at,
                        w.give_up_at, w.pending)
        return Session(self.id, self.flow_id, self.flow_version, self.participant_id,
                       self.language, self.started_at, self.status, self.step, wait,
                       self.sprint, dict(self.answers), dict(self.fields), dict(self.params),
                       self.outcome, self.updated_at)

    def to_json(self) -> str:
        # The same JSON `dataclasses.asdict` gave, without its deep copy of every value:
        # json.dumps walks the dicts itself, so a shallow dict of the fields is enough.
        data = {name: getattr(self, name) for name in _SESSION_FIELDS}
        if self.wait is not None:
            data["wait"] = {name: getattr(self.wait, name) for name in _WAIT_FIELDS}
        return json.dumps(data, default=_default, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Session:
        data = json.loads(text)
        wait = data.pop("wait")
        for key in ("started_at", "updated_at"):
            data[key] = _dt(data[key])
        if wait is not None:
            wait["reprompt_at"] = _dt(wait["reprompt_at"])
            wait["give_up_at"] = _dt(wait["give_up_at"])
            data["wait"] = Wait(**wait)
        return cls(**data)


_SESSION_FIELDS = tuple(f.name for f in fields(Session))
_WAIT_FIELDS = tuple(f.name for f in fields(Wait))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)  # what asdict did for a dataclass held in a value
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
