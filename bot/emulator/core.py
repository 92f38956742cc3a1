"""What the emulator does, independent of HTTP: accept, validate, record, fail, deliver."""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.engine.segments import segments

from .addresses import Channel, is_e164, mask, split_address, with_channel
from .callbacks import Delivery, DeliverySettings
from .errors import ApiError
from .inbound import WebhookError, inbound_form, post_inbound
from .rules import Rule, RuleSet, create_error, delivery_status, stage_of
from .state import API_VERSION, Message, MessageStore, new_sid, utcnow

log = logging.getLogger(__name__)

CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
MAX_BODY = 1600
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass
class EmulatorConfig:
    account_sid: str
    auth_token: str
    webhook_url: str | None = None
    #: API keys (SK sid → secret) accepted as Basic auth besides the account's own token.
    api_keys: dict[str, str] = field(default_factory=dict)
    #: The bot's numbers: the `To` of inbound messages and the sender for a Messaging Service.
    sms_number: str = "+15005550006"
    whatsapp_number: str | None = None
    messaging_service_sid: str | None = None
    #: Content templates (HX sid → body with {{1}} placeholders), to render `content_sid` sends.
    templates: dict[str, str] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    step_delay: float = 0.05
    callback_retries: int = 2
    callback_timeout: float = 10.0
    webhook_timeout: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> EmulatorConfig:
        values: dict[str, Any] = {
            "account_sid": settings.twilio_account_sid,
            "auth_token": settings.twilio_auth_token,
            "webhook_url": settings.public_base_url.rstrip("/") + "/twilio/messages",
            "sms_number": settings.sms_from,
            "whatsapp_number": split_address(settings.whatsapp_from)[1]
            if settings.whatsapp_from
            else None,
            "messaging_service_sid": settings.messaging_service_sid,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def render_template(template: str | None, content_sid: str, variables: dict[str, Any]) -> str:
    if template is None:
        # Unknown template: show what was asked for, so a transcript still says something.
        shown = ", ".join(f"{k}={v}" for k, v in variables.items())
        return f"[template {content_sid}{': ' + shown if shown else ''}]"
    for key, value in variables.items():
        template = template.replace("{{" + str(key) + "}}", str(value))
    return template


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = MessageStore()
        self.rules = RuleSet(config.rules)
        self.delivery = Delivery(
            self.store,
            DeliverySettings(
                auth_token=config.auth_token,
                step_delay=config.step_delay,
                retries=config.callback_retries,
                timeout=config.callback_timeout,
            ),
        )
        self._lock = threading.Lock()
        self.rejected = 0

    # -- authentication ------------------------------------------------------------------

    def authenticate(self, username: str | None, password: str | None) -> None:
        if username is None or password is None:
            raise ApiError(20003)
        if username == self.config.account_sid and password == self.config.auth_token:
            return
        if username.startswith("SK") and self.config.api_keys.get(username) == password:
            return
        raise ApiError(20003)

    def check_account(self, account_sid: str) -> None:
        if account_sid != self.config.account_sid:
            raise ApiError(20404, message=f"The requested resource /{API_VERSION}/Accounts/"
                           f"{account_sid} was not found")

    # -- REST: Messages --------------------------------------------------------------------

    def create_message(self, form: dict[str, list[str]]) -> dict[str, Any]:
        try:
            message, error_code = self._validate(form)
        except ApiError:
            with self._lock:
                self.rejected += 1
            raise
        record = self.store.add(message)
        final = delivery_status(error_code) if error_code is not None else "delivered"
        self.delivery.start(message.sid, error_code, final)
        log.info(
            "accepted %s to %s (%s segment%s)%s",
            message.sid,
            mask(message.to),
            message.num_segments,
            "" if message.num_segments == 1 else "s",
            f", will end {final} {error_code}" if error_code else "",
        )
        return self._resource(record)

    def _validate(self, form: dict[str, list[str]]) -> tuple[Message, int | None]:
        def one(name: str) -> str | None:
            values = form.get(name)
            return values[0] if values else None

        to = one("To")
        if not to:
            raise ApiError(21604)
        channel, number = split_address(to)
        if not is_e164(number):
            raise ApiError(21211, message=f"The 'To' number {to} is not a valid phone number.")

        service = one("MessagingServiceSid") or None
        if service is not None and not SERVICE_SID.match(service):
            raise ApiError(21701)
        from_ = one("From") or None
        if from_ is None:
            if service is None:
                raise ApiError(21603)
            from_ = self._sender(channel)  # the service's sender pool picks one
        if split_address(from_)[0] != channel:
            raise ApiError(21910)

        body = one("Body") or ""
        media_urls = [u for u in form.get("MediaUrl", []) if u]
        content_sid = one("ContentSid") or None
        content_variables = one("ContentVariables") or None
        if not body and not media_urls and content_sid is None:
            raise ApiError(21619)
        if len(body) > MAX_BODY:
            raise ApiError(21617)
        if content_sid is not None:
            if not CONTENT_SID.match(content_sid):
                raise ApiError(21655)
            variables = self._variables(content_variables)
            body = render_template(self.config.templates.get(content_sid), content_sid, variables)

        callback = one("StatusCallback") or None
        if callback is not None:
            parts = urllib.parse.urlsplit(callback)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ApiError(21609)

        error_code = self.rules.take(to)
        if error_code is not None and stage_of(error_code) == "create":
            log.info("refused a send to %s with rule %s", mask(to), error_code)
            raise create_error(error_code)

        message = Message(
            sid=new_sid("MM" if media_urls else "SM"),
            account_sid=self.config.account_sid,
            direction="outbound-api",
            to=to,
            from_=from_,
            body=body,
            status="queued",
            num_segments=1 if channel == "whatsapp" else segments(body),
            messaging_service_sid=service,
            media_urls=media_urls,
            content_sid=content_sid,
            content_variables=content_variables,
            status_callback=callback,
        )
        return message, error_code

    @staticmethod
    def _variables(raw: str | None) -> dict[str, Any]:
        if raw is None:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            raise ApiError(21656) from None
        if not isinstance(value, dict):
            raise ApiError(21656)
        return value

    def _sender(self, channel: Channel) -> str:
        if channel == "whatsapp":
            return with_channel("whatsapp", self.config.whatsapp_number or self.config.sms_number)
        return self.config.sms_number

    def fetch_message(self, sid: str) -> dict[str, Any]:
        record = self.store.get(sid)
        if record is None or record["account_sid"] != self.config.account_sid:
            raise ApiError(
                20404,
                message=f"The requested resource /{API_VERSION}/Accounts/"
                f"{self.config.account_sid}/Messages/{sid}.json was not found",
            )
        return self._resource(record)

    def list_messages(self, query: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        try:
            page_size = int(one("PageSize") or DEFAULT_PAGE_SIZE)
            page = int(one("Page") or 0)
        except ValueError:
            raise ApiError(20001, message="Invalid paging parameter") from None
        page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        page = max(page, 0)
        to, from_ = one("To"), one("From")
        # The REST API lists newest first.
        records = self.store.query(to=to, from_=from_, exact=True)[::-1]
        chunk = records[page * page_size : (page + 1) * page_size]

        base = f"/{API_VERSION}/Accounts/{self.config.account_sid}/Messages.json"

        def page_uri(n: int) -> str:
            params = {k: v for k, v in (("To", to), ("From", from_)) if v is not None}
            params.update({"PageSize": str(page_size), "Page": str(n)})
            if n:
                params["PageToken"] = f"PA{n}"
            return base + "?" + urllib.parse.urlencode(params)

        has_next = (page + 1) * page_size < len(records)
        return {
            "first_page_uri": page_uri(0),
            "end": page * page_size + max(len(chunk) - 1, 0),
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "messages": [self._resource(r) for r in chunk],
            "uri": page_uri(page),
            "page_size": page_size,
            "start": page * page_size,
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
        }

    @staticmethod
    def _resource(record: dict[str, Any]) -> dict[str, Any]:
        extra = {"index", "media_urls", "content_sid", "content_variables", "status_callback",
                 "history"}
        return {k: v for k, v in record.items() if k not in extra}

    # -- the participant's side ------------------------------------------------------------

    def inbound(self, payload: Any) -> dict[str, Any]:
        """A participant texts the bot: sign and POST the webhook, record the TwiML replies."""
        if not isinstance(payload, dict):
            raise ValueError("send a JSON object")
        sender = payload.get("from")
        body = payload.get("body", "")
        if not isinstance(sender, str) or not isinstance(body, str):
            raise ValueError("'from' and 'body' must be strings")
        prefixed, number = split_address(sender)
        channel = payload.get("channel") or prefixed
        if channel not in ("sms", "whatsapp"):
            raise ValueError("channel must be sms or whatsapp")
        if prefixed == "whatsapp" and channel != "whatsapp":
            raise ValueError("a whatsapp: sender needs channel whatsapp")
        if not is_e164(number):
            raise ValueError("'from' must be an E.164 number")
        to = payload.get("to")
        bot_number = split_address(to)[1] if isinstance(to, str) and to else None
        bot_number = bot_number or (
            self.config.whatsapp_number if channel == "whatsapp" else None
        ) or self.config.sms_number
        if not self.config.webhook_url:
            raise ValueError("the emulator has no webhook URL")

        sid = new_sid()
        form = inbound_form(
            sid=sid,
            account_sid=self.config.account_sid,
            channel=channel,
            participant=number,
            bot_number=bot_number,
            body=body,
            messaging_service_sid=self.config.messaging_service_sid,
            profile_name=_opt_str(payload, "profile_name"),
            button_text=_opt_str(payload, "button_text"),
            button_payload=_opt_str(payload, "button_payload"),
        )
        self.store.add(
            Message(
                sid=sid,
                account_sid=self.config.account_sid,
                direction="inbound",
                to=form["To"],
                from_=form["From"],
                body=body,
                status="received",
                num_segments=int(form["NumSegments"]),
                messaging_service_sid=self.config.messaging_service_sid,
            )
        )
        result: dict[str, Any] = {"sid": sid, "replies": [], "webhook_status": None, "error": None}
        try:
            status, replies = post_inbound(
                self.config.webhook_url, form, self.config.auth_token, self.config.webhook_timeout
            )
        except WebhookError as err:
            log.warning("webhook for %s failed: %s", sid, err)
            result.update(webhook_status=err.status, error=err.to_json())
            return result
        result["webhook_status"] = status
        for reply in replies:
            reply_to = reply.to or form["From"]
            reply_channel = split_address(reply_to)[0]
            record = self.store.add(
                Message(
                    sid=new_sid("MM" if reply.media_urls else "SM"),
                    account_sid=self.config.account_sid,
                    direction="outbound-reply",
                    to=reply_to,
                    from_=reply.from_ or form["To"],
                    body=reply.body,
                    status="delivered",
                    num_segments=1 if reply_channel == "whatsapp" else segments(reply.body),
                    messaging_service_sid=self.config.messaging_service_sid,
                    media_urls=list(reply.media_urls),
                    history=["queued", "sent", "delivered"],
                    date_sent=utcnow(),
                )
            )
            result["replies"].append(
                {k: record[k] for k in ("sid", "index", "to", "from", "body", "media_urls")}
            )
        log.info("inbound %s from %s: %d repl%s", sid, mask(form["From"]), len(replies),
                 "y" if len(replies) == 1 else "ies")
        return result

    def reset(self) -> None:
        self.store.clear()

    def close(self) -> None:
        self.delivery.stop()


def _opt_str(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    return value
