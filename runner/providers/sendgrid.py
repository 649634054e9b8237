"""SendGrid: one `POST /v3/mail/send` per message, answered 202 with an X-Message-Id header.

Every lifecycle email has its own subject and body, so messages cannot share one request's
content; SendGrid's up-to-1000 personalizations only vary recipients and substitutions. Each
request carries one message with one personalization for its one recipient.
https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

import httpx

from ..models import SuppressionReason
from ..settings import Setting
from .base import OutgoingMessage, SendResult
from .http import HttpProvider, UnreadableAnswer, json_body
from .settings import HTTP_SETTINGS, parse_base_url

SENDGRID_API_KEY = Setting("LIFECYCLE_SENDGRID_API_KEY", "",
                           "SendGrid API key with the Mail Send permission", secret=True)
SENDGRID_BASE_URL = Setting("LIFECYCLE_SENDGRID_BASE_URL", "https://api.sendgrid.com",
                            "SendGrid API base URL (https://api.eu.sendgrid.com for EU regional subusers)",
                            parse_base_url)

# A 400 names the field it rejects: an invalid recipient is reported on the personalization's
# `to` email ("Does not contain a valid address."); any other field (from, reply_to, content,
# subject, ...) is a fault of the message. Addresses on SendGrid's own bounce, spam-report or
# unsubscribe lists are accepted (202) and dropped later, so they cannot be seen here.
_RECIPIENT_FIELD = re.compile(r"^personalizations\.\d+\.to\.\d+\.email$")
_INVALID_ADDRESS = re.compile(r"\bvalid (email )?address", re.IGNORECASE)


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

    def parse_response(self, response: httpx.Response,
                       messages: Sequence[OutgoingMessage]) -> list[SendResult | None]:
        """Success is documented as 202 Accepted with the message id in the X-Message-Id header."""
        message_id = response.headers.get("X-Message-Id")
        if response.status_code != 202 or not message_id:
            raise UnreadableAnswer("not 202 Accepted with an X-Message-Id header")
        return [SendResult.accepted(message_id)]

    def parse_error(self, response: httpx.Response,
                    messages: Sequence[OutgoingMessage]) -> list[SendResult] | None:
        """A 400 that rejects the recipient's address suppresses it; every other one is the shared rule."""
        body = json_body(response)
        errors = body.get("errors") if response.status_code == 400 and isinstance(body, dict) else None
        for error in errors if isinstance(errors, list) else []:
            if not isinstance(error, dict):
                continue
            field, text = str(error.get("field") or ""), str(error.get("message") or "")
            if _RECIPIENT_FIELD.match(field) and _INVALID_ADDRESS.search(text):
                reason = self.redact(f"sendgrid: HTTP 400 {field}: {text}")
                return [SendResult.permanent(reason, SuppressionReason.BOUNCED)] * len(messages)
        return None
