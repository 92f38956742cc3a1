"""Settings: their defaults, and what a process does with them at start."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from redis import Redis

from bot import create_app
from bot.cli import main
from bot.config import ROOT, Settings, UnsafeSettings
from workers import send, worker
from workers.scheduler import Scheduler


def test_without_a_public_url_workers_ask_for_no_status_callbacks(redis_url: str) -> None:
    settings = Settings(twilio_api_base_url="http://127.0.0.1:9")
    assert settings.public_base_url == ""
    redis = Redis.from_url(redis_url)
    ctx = send.SendContext.create(settings, redis)
    try:
        assert ctx.status_callback is None
    finally:
        ctx.close()
        redis.close()
    with_url = send.SendContext.create(
        Settings(twilio_api_base_url="http://127.0.0.1:9", public_base_url="https://b.example/"),
        Redis.from_url(redis_url))
    try:
        assert with_url.status_callback == "https://b.example/twilio/status"
    finally:
        with_url.close()


# ---- placeholders are refused where the real Twilio would see them ---------------------------

LIVE = {"secret_key": "k" * 40, "twilio_account_sid": "AC" + "1" * 32,
        "twilio_auth_token": "f" * 32, "sms_from": "+16175550100"}
NAMES = ("SECRET_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SMS_FROM")


def _problems(**values: Any) -> str:
    return "\n".join(Settings(**values).placeholders())


def test_every_placeholder_is_named() -> None:
    found = Settings().placeholders()
    assert len(found) == 4
    for name, line in zip(NAMES, found, strict=True):
        assert line.startswith(name)
    with pytest.raises(UnsafeSettings) as caught:
        Settings().require_live("The web app")
    message = str(caught.value)
    assert message.startswith("The web app will not start")
    assert all(name in message for name in NAMES)
    assert "TWILIO_API_BASE_URL" in message


@pytest.mark.parametrize("name", LIVE)
def test_each_setting_is_named_until_it_is_set(name: str) -> None:
    others = {k: v for k, v in LIVE.items() if k != name}
    assert _problems(**others).startswith(name.upper())
    assert _problems(**others, **{name: ""}).startswith(name.upper())
    assert _problems(**LIVE) == ""


@pytest.mark.parametrize("sender", [{"messaging_service_sid": "MG" + "1" * 32},
                                    {"whatsapp_from": "whatsapp:+16175550100"}])
def test_a_messaging_service_or_a_whatsapp_sender_is_a_sender(sender: dict[str, str]) -> None:
    others = {k: v for k, v in LIVE.items() if k != "sms_from"}
    assert _problems(**others) != ""
    assert _problems(**others, **sender) == ""


def test_the_emulator_and_the_tests_need_nothing_set() -> None:
    assert Settings(twilio_api_base_url="http://127.0.0.1:8010").placeholders() == []
    assert Settings(testing=True).placeholders() == []
    Settings(testing=True).require_live("The worker")


def test_the_web_app_refuses_placeholders_before_touching_the_database(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    with pytest.raises(UnsafeSettings, match="The web app will not start"):
        create_app(Settings(database_url=f"sqlite:///{db}", flows_dir=str(ROOT / "flows")))
    assert not db.exists()


def test_the_web_app_starts_with_real_settings(settings: Settings, redis_url: str) -> None:
    app = create_app(replace(settings, testing=False, redis_url=redis_url, **LIVE))
    assert app.test_client().get("/healthz").status_code == 200


@pytest.mark.parametrize("command", [["worker", "--burst"], ["scheduler", "--once"]])
def test_worker_and_scheduler_refuse_placeholders(command: list[str], tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    result = CliRunner().invoke(main, command, obj=Settings(database_url=f"sqlite:///{db}"))
    assert result.exit_code == 1
    assert f"bot {command[0]} will not start" in result.output
    assert all(name in result.output for name in NAMES)
    assert not db.exists()  # refused before migrating anything


def test_the_worker_and_scheduler_loops_refuse_placeholders(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        with pytest.raises(UnsafeSettings, match="The worker"):
            worker.run(Settings(), redis=redis, burst=True)
        with pytest.raises(UnsafeSettings, match="The scheduler"):
            Scheduler(Settings(), redis).run()
    finally:
        redis.close()


# ---- study.yaml gives the study's name, contact and default language -------------------------

STUDY_ENV = ("STUDY_NAME", "STUDY_CONTACT", "DEFAULT_LANGUAGE", "FLOWS_DIR")


@pytest.fixture
def study_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in STUDY_ENV:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", folder)
    study = folder / "study.yaml"
    study.write_text("name: HEART-2\ncontact: \"+1 617 555 0100\"\ndefault_language: es\n"
                     + study.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def test_study_settings_come_from_study_yaml(study_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env(flows_dir=str(study_dir))
    assert (settings.study_name, settings.study_contact, settings.default_language) == (
        "HEART-2", "+1 617 555 0100", "es")
    monkeypatch.setenv("FLOWS_DIR", str(study_dir))
    assert Settings.from_env().study_name == "HEART-2"


def test_the_environment_and_overrides_win_over_study_yaml(
        study_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDY_NAME", "From the environment")
    monkeypatch.setenv("STUDY_CONTACT", "")  # empty: not set
    settings = Settings.from_env(flows_dir=str(study_dir), default_language="fr")
    assert (settings.study_name, settings.study_contact, settings.default_language) == (
        "From the environment", "+1 617 555 0100", "fr")


def test_without_them_in_study_yaml_the_defaults_stay(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in STUDY_ENV:
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    expected = (defaults.study_name, defaults.study_contact, defaults.default_language)
    for text in (None, "escalation: {emergency_number: \"911\"}\n", "name: [unclosed\n",
                 "name: {a: 1}\ncontact: \"\"\n"):
        if text is not None:
            (tmp_path / "study.yaml").write_text(text, encoding="utf-8")
        settings = Settings.from_env(flows_dir=str(tmp_path))
        assert (settings.study_name, settings.study_contact,
                settings.default_language) == expected, text


def test_the_running_app_uses_study_yaml(study_dir: Path, db_url: str, redis_url: str) -> None:
    app = create_app({"database_url": db_url, "redis_url": redis_url,
                      "flows_dir": str(study_dir), "testing": True})
    settings = app.extensions["trialbot"].settings
    assert (settings.study_name, settings.study_contact, settings.default_language) == (
        "HEART-2", "+1 617 555 0100", "es")
