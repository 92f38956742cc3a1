"""Settings from the environment (and a `.env` file); no logic beyond defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parents[1]


def _default_database_url() -> str:
    instance = ROOT / "instance"
    return f"sqlite:///{instance / 'trialbot.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=_default_database_url)
    redis_url: str = "redis://localhost:6379/0"
    twilio_account_sid: str = "AC" + "0" * 32  # a well-formed placeholder for local runs
    twilio_auth_token: str = "test-auth-token"  # noqa: S105 - a placeholder for local runs
    #: Where Twilio reaches us. Unset: workers ask for no status callbacks, and the webhook
    #: checks signatures against the URL each request came to.
    public_base_url: str = ""
    twilio_api_base_url: str | None = None
    sms_from: str = "+15005550006"
    whatsapp_from: str | None = None
    messaging_service_sid: str | None = None
    flows_dir: str = str(ROOT / "flows")
    translations_dir: str = str(ROOT / "translations")
    default_language: str = "en"
    study_name: str = "the study"
    study_contact: str = "+15005550006"
    #: Key for pseudonyms and hashed phone numbers; must be set in production.
    secret_key: str = "dev-secret-change-me"  # noqa: S105
    max_request_bytes: int = 64 * 1024
    # Outbound delivery (bot/outbox.py, workers/send.py); docs/operations.md explains them.
    #: WhatsApp templates for outside the 24 h window: a JSON or YAML file (bot/templates.py).
    whatsapp_templates: str | None = None
    #: Twilio's rate class of `sms_from`: long_code | toll_free | short_code.
    sms_sender_kind: str = "long_code"
    #: Overrides every sender's rate: units (SMS segments, WhatsApp messages) a second, or "off".
    send_rate_limit: str | None = None
    outbox_batch_size: int = 50
    outbox_send_threads: int = 8
    #: A claimed row not recorded within this many seconds is presumed lost with its worker.
    outbox_lease_seconds: int = 120
    # Escalation alerts by email (bot/escalation.py); without SMTP_HOST there are none.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "trialbot@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    testing: bool = False

    @classmethod
    def from_env(cls, env_file: str | None = None, **overrides: Any) -> Settings:
        load_dotenv(env_file or ROOT / ".env", override=False)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f.name.upper())
            if raw is None:
                continue
            if f.type in ("int", int):
                values[f.name] = int(raw)
            elif f.type in ("bool", bool):
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = raw
        return replace(cls(**values), **overrides)
