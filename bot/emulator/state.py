"""The emulator's memory: every message it accepted, received or replied, in arrival order."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from .addresses import same_number
from .errors import message_for

API_VERSION = "2010-04-01"
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "received", "read", "canceled"})


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime | None) -> str | None:
    # The REST API writes dates as RFC 2822 in GMT: "Thu, 24 Aug 2023 05:01:45 +0000".
    return format_datetime(moment) if moment else None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Message:
    sid: str
    account_sid: str
    direction: str
    to: str
    from_: str | None
    body: str
    status: str
    num_segments: int
    messaging_service_sid: str | None = None
    media_urls: list[str] = field(default_factory=list)
    content_sid: str | None = None
    content_variables: str | None = None
    status_callback: str | None = None
    error_code: int | None = None
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)
    date_sent: datetime | None = None
    history: list[str] = field(default_factory=list)
    index: int = -1

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The Message resource exactly as the REST API returns it."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": message_for(self.error_code) if self.error_code else None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri.removesuffix(".json") + "/Media.json"},
            "to": self.to,
            "uri": self.uri,
        }

    def record(self) -> dict[str, Any]:
        """The inspection view (`/_emulator/messages`): the resource plus what was asked for."""
        return {
            **self.resource(),
            "index": self.index,
            "media_urls": list(self.media_urls),
            "content_sid": self.content_sid,
            "content_variables": self.content_variables,
            "status_callback": self.status_callback,
            "history": list(self.history),
        }


class MessageStore:
    """Thread-safe; readers get copies (dicts), never the live objects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._by_sid: dict[str, Message] = {}
        # Indexes keep growing across resets so a poller's `since` never skips new messages.
        self._next_index = 0

    def add(self, message: Message) -> dict[str, Any]:
        with self._lock:
            message.index = self._next_index
            self._next_index += 1
            if not message.history:
                message.history.append(message.status)
            self._messages.append(message)
            self._by_sid[message.sid] = message
            return message.record()

    def set_status(
        self, sid: str, status: str, error_code: int | None = None
    ) -> dict[str, Any] | None:
        with self._lock:
            message = self._by_sid.get(sid)
            if message is None:  # reset while its callbacks were still running
                return None
            message.status = status
            message.error_code = error_code
            message.date_updated = utcnow()
            if status == "sent" and message.date_sent is None:
                message.date_sent = message.date_updated
            message.history.append(status)
            return message.record()

    def get(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            message = self._by_sid.get(sid)
            return message.record() if message else None

    def query(
        self,
        *,
        to: str | None = None,
        from_: str | None = None,
        since: int = 0,
        exact: bool = False,
    ) -> list[dict[str, Any]]:
        """Records in arrival order. `exact` compares addresses as written (the REST API's
        filters); otherwise `to=+1555...` also finds `whatsapp:+1555...`."""

        def hit(value: str | None, wanted: str | None) -> bool:
            if wanted is None:
                return True
            if value is None:
                return False
            return value == wanted if exact else same_number(value, wanted)

        with self._lock:
            return [
                m.record()
                for m in self._messages
                if m.index >= since and hit(m.to, to) and hit(m.from_, from_)
            ]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._by_sid.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)
