"""The trial engagement bot: `create_app` builds the Flask app that serves Twilio's webhooks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # flask is imported when an app is built, so `bot.engine` stays light
    from flask import Flask

__all__ = ["create_app"]


def _settings(config: Any) -> Any:
    from .config import Settings

    if config is None:
        return Settings.from_env()
    if isinstance(config, Settings):
        return config
    if isinstance(config, Mapping):
        return Settings.from_env(**dict(config))
    raise TypeError("config must be Settings, a mapping of overrides, or None")


def _prepare_database(url: str) -> None:
    """SQLite is the embedded default, so the app brings its schema up to date itself.

    PostgreSQL is migrated by the operator (`bot db upgrade` or the deploy step) before the
    new code serves: several app processes racing to migrate is how outages start.
    """
    from .store.db import is_sqlite

    if not is_sqlite(url):
        return
    try:
        from .store import schema
    except ImportError:  # pragma: no cover - before the migrations existed
        from sqlmodel import SQLModel

        from .store import models  # noqa: F401 - registers the tables
        from .store.db import get_engine

        SQLModel.metadata.create_all(get_engine(url))
        return
    schema.upgrade(url)


def _warm_up(default_language: str) -> None:
    """Load word tables and catalogs now, not in some participant's first request."""
    from .engine import understand
    from .engine.languages import SUPPORTED
    from .engine.understand import redflags
    from .system_messages import catalogs_with_fallback

    for lang in SUPPORTED:
        understand.detect_keyword("ok", lang)
        understand.parse_yes_no("ok", lang)
        understand.parse_number("1", lang)
        catalogs_with_fallback(lang, default_language)
    redflags.warm_up(SUPPORTED)


def create_app(config: Any = None) -> Flask:
    """Build the app. `config`: a `Settings`, a dict of overrides, or None (the environment)."""
    from flask import Flask, Response, g, request

    from . import logs
    from .flow_registry import FlowRegistry, set_default
    from .store.db import session_scope
    from .webhook import BotState, bp

    settings = _settings(config)
    if not logs.is_configured():
        logs.configure()
    log = logs.get_logger("app")
    unsafe = settings.placeholders()
    if unsafe:  # said in the log as well: gunicorn's traceback may be all the operator sees
        logs.event(log, "placeholder_settings", level=50, settings=unsafe)
    settings.require_live("The web app")

    app = Flask(__name__)
    app.config.update(TESTING=settings.testing, MAX_CONTENT_LENGTH=settings.max_request_bytes,
                      MAX_FORM_MEMORY_SIZE=settings.max_request_bytes)
    _prepare_database(settings.database_url)

    registry = FlowRegistry(settings.flows_dir)
    set_default(registry)
    try:
        with session_scope(settings.database_url) as db:
            count = registry.sync(db)
        logs.event(log, "flows_loaded", flows=count)
    except Exception as exc:  # noqa: BLE001 - e.g. PostgreSQL not migrated yet
        logs.event(log, "flows_not_stored", level=40, error=type(exc).__name__)

    _warm_up(settings.default_language)
    app.extensions["trialbot"] = BotState(settings=settings, registry=registry)
    app.register_blueprint(bp)

    @app.before_request
    def _request_id() -> None:
        g.started = time.perf_counter()
        rid = logs.new_request_id(request.headers.get("X-Request-Id"))
        g.request_id = rid
        g.request_id_token = logs.request_id_var.set(rid)

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        rid = g.get("request_id")
        if rid:
            response.headers["X-Request-Id"] = rid
        return response

    @app.teardown_request
    def _forget_request_id(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            logs.request_id_var.reset(token)

    return app
