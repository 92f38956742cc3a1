"""Settings: their defaults, and what a process does with them at start."""

from __future__ import annotations

from redis import Redis

from bot.config import Settings
from workers import send


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
