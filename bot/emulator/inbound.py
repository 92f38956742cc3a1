"""Playing Twilio towards the bot: a participant's message becomes a signed webhook POST,
and the TwiML the bot answers with becomes the replies Twilio would deliver."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET  # noqa: S405 - parses only the configured webhook's answer
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from bot.engine.segments import segments

from .addresses import Channel, with_channel
from .errors import message_for
from .state import API_VERSION
from .transport import post_signed_form

TWIML_TYPES = frozenset({"text/xml", "application/xml"})


@dataclass(frozen=True)
class Reply:
    body: str
    to: str | None = None  # <Message to="..."> overrides the default (the sender)
    from_: str | None = None
    media_urls: list[str] = field(default_factory=list)


class WebhookError(Exception):
    """The webhook's answer was not something Twilio could use (Twilio's 11200/12100/12300)."""

    def __init__(self, code: int, detail: str, status: int | None = None) -> None:
        self.code = code
        self.detail = detail
        self.status = status
        super().__init__(f"{code} {message_for(code)}: {detail}")

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": message_for(self.code), "detail": self.detail}


def _country(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return ""
    # Fictional test numbers (+1 555 01xx) have no region; fall back to the country code's.
    return (phonenumbers.region_code_for_number(parsed)
            or phonenumbers.region_code_for_country_code(parsed.country_code or 0) or "")


def inbound_form(
    *,
    sid: str,
    account_sid: str,
    channel: Channel,
    participant: str,
    bot_number: str,
    body: str,
    messaging_service_sid: str | None = None,
    profile_name: str | None = None,
    button_text: str | None = None,
    button_payload: str | None = None,
) -> dict[str, str]:
    """The fields Twilio posts for an incoming message (numbers without channel prefixes)."""
    form = {
        "ToCountry": _country(bot_number),
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": _country(participant),
        "To": with_channel(channel, bot_number),
        "ToZip": "",
        "NumSegments": "1" if channel == "whatsapp" else str(segments(body)),
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": with_channel(channel, participant),
        "ApiVersion": API_VERSION,
    }
    if messaging_service_sid:
        form["MessagingServiceSid"] = messaging_service_sid
    if channel == "whatsapp":
        # WhatsApp carries no geography but names the profile and the WhatsApp id (digits).
        for key in ("ToCountry", "ToState", "ToCity", "ToZip", "FromZip", "FromState",
                    "FromCity", "FromCountry"):
            del form[key]
        form["WaId"] = participant.lstrip("+")
        form["ProfileName"] = profile_name or "Participant"
        form["MessageType"] = "text"
        if button_text is not None:
            form["MessageType"] = "button"
            form["ButtonText"] = button_text
            form["ButtonPayload"] = button_payload or button_text
    return form


def post_inbound(
    webhook_url: str, form: dict[str, str], auth_token: str, timeout: float = 15.0
) -> tuple[int, list[Reply]]:
    """POST to the bot and read its TwiML. Returns (HTTP status, replies)."""
    try:
        result = post_signed_form(
            webhook_url,
            form,
            auth_token,
            timeout=timeout,
            extra_headers={"I-Twilio-Idempotency-Token": str(uuid.uuid4())},
        )
    except (OSError, ValueError) as err:
        raise WebhookError(11200, f"{type(err).__name__}: {err}") from err
    if not 200 <= result.status < 300:
        raise WebhookError(11200, f"HTTP {result.status}", result.status)
    if result.status == 204 or not result.body.strip():
        return result.status, []
    if result.content_type not in TWIML_TYPES:
        raise WebhookError(12300, f"Content-Type {result.content_type or 'missing'}", 200)
    return result.status, parse_twiml(result.body)


def parse_twiml(document: bytes) -> list[Reply]:
    """The <Message> verbs of a TwiML <Response>, in order."""
    try:
        root = ET.fromstring(document)  # noqa: S314 - the bot under test is trusted
    except ET.ParseError as err:
        raise WebhookError(12100, str(err), 200) from err
    if root.tag != "Response":
        raise WebhookError(12100, f"root element is <{root.tag}>, not <Response>", 200)
    replies: list[Reply] = []
    for verb in root:
        if verb.tag != "Message":
            continue  # <Redirect> and friends are out of scope for a message emulator
        body_el = verb.find("Body")
        text = body_el.text if body_el is not None else verb.text
        media = [(m.text or "").strip() for m in verb.findall("Media") if (m.text or "").strip()]
        replies.append(
            Reply(
                body=(text or "").strip(),
                to=verb.get("to"),
                from_=verb.get("from"),
                media_urls=media,
            )
        )
    return replies
