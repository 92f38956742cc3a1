"""Twilio REST error responses, shaped like the real API's so client code sees real exceptions."""

from __future__ import annotations

from typing import Any

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"

#: Messages Twilio uses for the codes the emulator can produce.
MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "Invalid 'To' Phone Number",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21609: "Invalid StatusCallback url",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21619: "A text message body or media urls must be specified.",
    21655: "The ContentSid is Invalid",
    21656: "The ContentVariables Parameter is invalid",
    21701: "The Messaging Service Sid is invalid",
    21910: "Invalid From and To pair. From and To should be of the same channel",
    30003: "Unreachable destination handset",
    30006: "Landline or unreachable carrier",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
    11200: "HTTP retrieval failure",
    12100: "Document parse failure",
    12300: "Invalid Content-Type",
}

#: HTTP status for the create-time codes that are not plain 400s.
_HTTP_STATUS: dict[int, int] = {20003: 401, 20004: 405, 20404: 404, 20429: 429, 20500: 500}


def message_for(code: int) -> str:
    return MESSAGES.get(code, f"Error {code}")


class ApiError(Exception):
    """A request the emulator refuses, answered with Twilio's error JSON."""

    def __init__(self, code: int, status: int | None = None, message: str | None = None) -> None:
        self.code = code
        self.status = status or _HTTP_STATUS.get(code, 400)
        self.message = message or message_for(code)
        super().__init__(f"{self.status} {self.code} {self.message}")

    def payload(self) -> dict[str, Any]:
        # The legacy shape (code/message/more_info/status) that twilio-python maps to
        # TwilioRestException.code; it is what api.twilio.com/2010-04-01 answers.
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }
