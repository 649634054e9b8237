"""SendGrid: one `POST /v3/mail/send` per message, answered 202 with an X-Message-Id header.

Every lifecycle email has its own subject and body, so messages cannot share one request's
content; SendGrid's up-to-1000 personalizations only vary recipients and substitutions. Each
request carries one message with one personalization for its one recipient.
https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

import httpx

from ..settings import Setting
from .base import OutgoingMessage, SendResult
from .http import HTTP_SETTINGS, HttpProvider, parse_base_url

SENDGRID_API_KEY = Setting("LIFECYCLE_SENDGRID_API_KEY", "",
                           "SendGrid API key with the Mail Send permission", secret=True)
SENDGRID_BASE_URL = Setting("LIFECYCLE_SENDGRID_BASE_URL", "https://api.sendgrid.com",
                            "SendGrid API base URL (https://api.eu.sendgrid.com for EU regional subusers)",
                            parse_base_url)


def address(value: str) -> dict[str, str]:
    """"Name <a@example.com>" as SendGrid's {"email", "name"} object."""
    name, email = parseaddr(value)
    return {"email": email or value, "name": name} if name else {"email": email or value}


class SendGridProvider(HttpProvider):
    name = "sendgrid"
    max_batch_size = 100
    max_request_size = 1
    credential_setting = SENDGRID_API_KEY
    base_url_setting = SENDGRID_BASE_URL
    settings = (SENDGRID_API_KEY, SENDGRID_BASE_URL, *HTTP_SETTINGS)

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        """One message in SendGrid's v3 Mail Send shape."""
        content = [{"type": kind, "value": value}
                   for kind, value in (("text/plain", message.text), ("text/html", message.html)) if value]
        body: dict[str, Any] = {
            "personalizations": [{"to": [address(message.to)], "custom_args": message.metadata}],
            "from": address(message.from_),
            "subject": message.subject,
            "content": content,
            "headers": dict(message.headers),
            "categories": [message.campaign_id[:255]],
        }
        if message.reply_to:
            body["reply_to"] = address(message.reply_to)
        return body

    def build_request(self, messages: Sequence[OutgoingMessage]) -> httpx.Request:
        (message,) = messages
        return self.request("POST", "/v3/mail/send", json=self.payload(message),
                            headers={"Authorization": f"Bearer {self._credential}"})

    def parse_response(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return [SendResult.accepted(response.headers.get("X-Message-Id"))]
