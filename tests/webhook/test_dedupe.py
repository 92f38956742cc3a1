"""Twilio retries: the same MessageSid is stored, stepped and answered once."""

from __future__ import annotations

import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from bot import conversation
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.models import Answer, Message, Participant
from bot.store.types import utcnow

from .conftest import Twilio, new_sid, participant, replies, rows, sign


def start_checkin(app: Flask, settings: Settings, p: Participant) -> None:
    with session_scope(settings.database_url) as db:
        conversation.start_flow(db, p, "daily_checkin", utcnow(), settings=settings,
                                registry=app.extensions["trialbot"].registry)


def assert_once(url: str, sid: str) -> None:
    inbound = rows(url, Message, Message.direction == "in")
    assert [m.twilio_sid for m in inbound] == [sid]
    out = rows(url, Message, Message.direction == "out", Message.status == "sent")
    assert len(out) == 1 and out[0].reply_to_id == inbound[0].id
    answers = rows(url, Answer)
    assert [(a.key, a.value_json) for a in answers] == [("wellbeing", "7")]


def test_the_same_message_three_times_in_a_row(app: Flask, app_settings: Settings,
                                               twilio: Twilio, enrolled: Participant) -> None:
    start_checkin(app, app_settings, enrolled)
    params = twilio.inbound_params("+16175550101", "7")
    first = replies(twilio.post("/twilio/messages", params))
    assert len(first) == 1 and "medicine" in first[0]
    for _ in range(2):
        assert replies(twilio.post("/twilio/messages", params)) == []
    assert_once(app_settings.database_url, params["MessageSid"])


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The app on a real threaded server, so requests truly overlap."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def post(base: str, path: str, params: dict[str, str]) -> tuple[int, bytes]:
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(base + path, data=data, method="POST", headers={
        "X-Twilio-Signature": sign(path, params),
        "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback only
        return resp.status, resp.read()


@pytest.mark.parametrize("copies", [3, 8])
def test_the_same_message_concurrently(copies: int, app: Flask, app_settings: Settings,
                                       twilio: Twilio, enrolled: Participant,
                                       served: str) -> None:
    start_checkin(app, app_settings, enrolled)
    params = twilio.inbound_params("+16175550101", "7")
    barrier = threading.Barrier(copies)
    results: list[tuple[int, bytes]] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait()
            results.append(post(served, "/twilio/messages", params))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(status for status, _ in results) == [200] * copies
    with_message = [body for _, body in results if b"<Message>" in body]
    assert len(with_message) == 1
    assert_once(app_settings.database_url, params["MessageSid"])


def test_messages_of_one_participant_are_stepped_in_order(
        app: Flask, app_settings: Settings, twilio: Twilio, enrolled: Participant,
        served: str) -> None:
    # Two different messages racing: each runs on the session the other left, none is lost.
    start_checkin(app, app_settings, enrolled)
    first = twilio.inbound_params("+16175550101", "7")
    second = twilio.inbound_params("+16175550101", "yes")
    barrier = threading.Barrier(2)

    def send(params: dict[str, str]) -> None:
        barrier.wait()
        post(served, "/twilio/messages", params)

    threads = [threading.Thread(target=send, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    url = app_settings.database_url
    assert len(rows(url, Message, Message.direction == "in")) == 2
    # Whichever came first, each was answered once and stepped the session the other left:
    # "7" then "yes" answers two questions; "yes" first is re-asked, then "7" answers it.
    assert len(rows(url, Message, Message.direction == "out", Message.status == "sent")) == 2
    keys = [a.key for a in sorted(rows(url, Answer), key=lambda a: a.id)]
    assert keys in (["wellbeing", "meds"], ["wellbeing"])
    assert participant(url).last_inbound_at is not None


def test_different_sids_are_different_messages(app: Flask, app_settings: Settings,
                                               twilio: Twilio, enrolled: Participant) -> None:
    start_checkin(app, app_settings, enrolled)
    twilio.sms("+16175550101", "7", sid=new_sid())
    twilio.sms("+16175550101", "yes", sid=new_sid())
    assert len(rows(app_settings.database_url, Message, Message.direction == "in")) == 2
    assert [a.key for a in rows(app_settings.database_url, Answer)] == ["wellbeing", "meds"]

