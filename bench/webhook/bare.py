"""The baseline: a Flask endpoint that answers every POST with the same TwiML, nothing else.

Served by the same gunicorn settings as the real webhook, it measures what the web stack
alone costs on this machine, so the webhook's figure can be read as a ratio of it.
"""

from __future__ import annotations

from flask import Flask, Response

REPLY = ('<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
         "How do you feel today? Reply with a number from 0 to 10.</Message></Response>")


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/twilio/messages")
    def messages() -> Response:
        return Response(REPLY, mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
