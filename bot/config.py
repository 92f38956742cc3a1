"""Settings from the environment (and a `.env` file), with their defaults.

Beyond defaults: three study settings come from `study.yaml` when the environment does not
set them, and a process that talks to the real Twilio refuses the placeholders meant for
local runs (`Settings.require_live`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parents[1]

# Placeholders that let a checkout run against the emulator with nothing set; a process that
# would use them with the real Twilio refuses to start (`Settings.require_live`).
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32
PLACEHOLDER_AUTH_TOKEN = "test-auth-token"  # noqa: S105 - not a secret
DEV_SECRET_KEY = "dev-secret-change-me"  # noqa: S105 - not a secret
TWILIO_TEST_NUMBER = "+15005550006"
#: Settings that `study.yaml` in FLOWS_DIR gives when the environment does not: the field and
#: the file's key for it, so the coordinator's file is the one place for them.
STUDY_SETTINGS = {"study_name": "name", "study_contact": "contact",
                  "default_language": "default_language"}


class UnsafeSettings(RuntimeError):
    """A process that would talk to the real Twilio still has local-run placeholders."""


def load_env(env_file: str | Path | None = None) -> None:
    """Add `.env` at the checkout's root to the environment (what is already set wins).

    Also for settings read outside `Settings`, such as TRANSLATIONS_DIR."""
    load_dotenv(env_file or ROOT / ".env", override=False)


def _from_study(flows_dir: str, wanted: list[str]) -> dict[str, str]:
    """The `wanted` study settings that `study.yaml` has, read by the reader `bot flows check`
    uses, so what the check passed is what runs; its problems are the check's to report."""
    from .engine.check import load_study

    info, _problems = load_study(flows_dir)
    if info is None:
        return {}
    found = {"study_name": info.name, "study_contact": info.contact,
             "default_language": info.default_language}
    return {name: found[name].strip() for name in wanted if found[name].strip()}


def _default_database_url() -> str:
    instance = ROOT / "instance"
    return f"sqlite:///{instance / 'trialbot.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=_default_database_url)
    redis_url: str = "redis://localhost:6379/0"
    twilio_account_sid: str = PLACEHOLDER_ACCOUNT_SID
    twilio_auth_token: str = PLACEHOLDER_AUTH_TOKEN
    #: Where Twilio reaches us. Unset: workers ask for no status callbacks, and the webhook
    #: checks signatures against the URL each request came to.
    public_base_url: str = ""
    twilio_api_base_url: str | None = None
    sms_from: str = TWILIO_TEST_NUMBER
    whatsapp_from: str | None = None
    messaging_service_sid: str | None = None
    flows_dir: str = str(ROOT / "flows")
    # TRANSLATIONS_DIR is no field: catalogs and word lists sit in per-process caches that
    # read it from the environment themselves (`bot.i18n.translations_dir`).
    # These three: the environment, else study.yaml (`from_env`), else these defaults.
    default_language: str = "en"
    study_name: str = "the study"
    study_contact: str = TWILIO_TEST_NUMBER
    #: Key for pseudonyms and hashed phone numbers; must be set in production.
    secret_key: str = DEV_SECRET_KEY
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
        """The environment (and `.env`), then `overrides`, then `study.yaml` for the study
        settings neither gave (an empty STUDY_NAME counts as not given)."""
        load_env(env_file)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f.name.upper())
            if raw is None or (not raw and f.name in STUDY_SETTINGS):
                continue
            if f.type in ("int", int):
                values[f.name] = int(raw)
            elif f.type in ("bool", bool):
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = raw
        values.update(overrides)
        wanted = [name for name in STUDY_SETTINGS if name not in values]
        if wanted:
            values.update(_from_study(values.get("flows_dir") or cls.flows_dir, wanted))
        return cls(**values)

    def placeholders(self) -> list[str]:
        """Each setting still at its local-run placeholder (or empty), one line each; none
        when the process cannot reach the real Twilio (the emulator is set, or in tests)."""
        if self.testing or self.twilio_api_base_url:
            return []
        found = []
        for name, value, placeholder, is_, wanted in (
                ("SECRET_KEY", self.secret_key, DEV_SECRET_KEY, "the development default",
                 "a long random value, and keep it unchanged"),
                ("TWILIO_ACCOUNT_SID", self.twilio_account_sid, PLACEHOLDER_ACCOUNT_SID,
                 "the placeholder", "the study's Twilio account SID"),
                ("TWILIO_AUTH_TOKEN", self.twilio_auth_token, PLACEHOLDER_AUTH_TOKEN,
                 "the placeholder", "that account's auth token")):
            if value in ("", placeholder):
                found.append(f"{name} is {is_ if value else 'empty'}: set {wanted}")
        if (not self.messaging_service_sid and not self.whatsapp_from
                and self.sms_from in ("", TWILIO_TEST_NUMBER)):
            found.append("SMS_FROM, MESSAGING_SERVICE_SID, WHATSAPP_FROM: no sender is set "
                         f"(SMS_FROM defaults to Twilio's test number {TWILIO_TEST_NUMBER})")
        return found

    def require_live(self, process: str) -> None:
        """Raise `UnsafeSettings` naming every placeholder, if talking to the real Twilio."""
        found = self.placeholders()
        if found:
            raise UnsafeSettings(
                f"{process} will not start: it would talk to the real Twilio with settings "
                "meant for local runs.\n" + "\n".join(f"  {line}" for line in found)
                + "\nSet them in the environment or .env; or, to try the bot locally, set "
                "TWILIO_API_BASE_URL to the emulator (`bot run` does that).")
