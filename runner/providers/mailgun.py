"""Mailgun: one multipart `POST /v3/{domain}/messages` per message, in the US or EU region.

https://documentation.mailgun.com/docs/mailgun/api-reference/api-overview
https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/track-tagging
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any, Self
from urllib.parse import quote

import httpx

from ..models import SuppressionReason
from ..settings import Setting, Settings
from .base import OutgoingMessage, SendResult
from .http import HttpProvider, UnreadableAnswer, json_body, sanitize_tag
from .settings import HTTP_SETTINGS, parse_base_url

REGION_URLS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}


def parse_region(raw: str) -> str:
    value = raw.strip().lower()
    if value not in REGION_URLS:
        raise ValueError("expected us or eu")
    return value


def parse_optional_base_url(raw: str) -> str | None:
    return parse_base_url(raw) if raw.strip() else None


MAILGUN_API_KEY = Setting("LIFECYCLE_MAILGUN_API_KEY", "", "Mailgun API key (or a domain sending key)", secret=True)
MAILGUN_DOMAIN = Setting("LIFECYCLE_MAILGUN_DOMAIN", "", "Mailgun sending domain, e.g. mg.shop.example.com")
MAILGUN_REGION = Setting("LIFECYCLE_MAILGUN_REGION", "us",
                         "region the Mailgun domain was created in: us (api.mailgun.net) or eu (api.eu.mailgun.net)",
                         parse_region)
MAILGUN_BASE_URL = Setting("LIFECYCLE_MAILGUN_BASE_URL", "",
                           "Mailgun API base URL; empty = the region's URL", parse_optional_base_url)

# Mailgun's 429 body says "... try again after 120 seconds" where other APIs send Retry-After.
_TRY_AGAIN = re.compile(r"try again after (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
# A 400 says in words what it rejects: "to parameter is not a valid address" is the recipient;
# a bad from, a missing body or oversized options are the message. Addresses on Mailgun's own
# bounce, complaint or unsubscribe lists are accepted (200) and fail later, so they cannot be seen here.
_INVALID_RECIPIENT = re.compile(r"^\W*to\W* parameter is not a valid address", re.IGNORECASE)


class MailgunProvider(HttpProvider):
    name = "mailgun"
    max_batch_size = 100
    max_request_size = 1
    credential_setting = MAILGUN_API_KEY
    base_url_setting = MAILGUN_BASE_URL
    settings = (MAILGUN_API_KEY, MAILGUN_DOMAIN, MAILGUN_REGION, MAILGUN_BASE_URL, *HTTP_SETTINGS)

    def __init__(self, api_key: str, domain: str, *, region: str = "us", base_url: str | None = None,
                 **options: Any) -> None:
        super().__init__(api_key, base_url=base_url or REGION_URLS[region], **options)
        self.domain = domain
        self._authorization = "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode()

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        return cls(settings.require(MAILGUN_API_KEY), settings.require(MAILGUN_DOMAIN),
                   region=settings[MAILGUN_REGION], base_url=settings[MAILGUN_BASE_URL],
                   **cls.http_options(settings) | options)

    def secrets(self) -> tuple[str, ...]:
        return (self._credential, self._authorization.removeprefix("Basic "))

    def fields(self, message: OutgoingMessage) -> list[tuple[str, str]]:
        """The form fields for one message, in order; repeated names are allowed."""
        fields = [("from", message.from_), ("to", message.to), ("subject", message.subject)]
        fields += [(name, value) for name, value in (("text", message.text), ("html", message.html)) if value]
        fields += [(f"h:{name}", value) for name, value in message.headers.items()]
        if message.reply_to:
            fields.append(("h:Reply-To", message.reply_to))
        fields.append(("o:tag", sanitize_tag(message.campaign_id, 128)))  # ASCII, at most 128 characters
        fields += [(f"v:{name}", value) for name, value in message.metadata.items()]
        return fields

    def build_request(self, messages: Sequence[OutgoingMessage]) -> httpx.Request:
        (message,) = messages
        # Fields as filename-less parts: multipart/form-data, as the API documents, without files.
        parts = [(name, (None, value.encode())) for name, value in self.fields(message)]
        return self.request("POST", f"/v3/{quote(self.domain, safe='')}/messages", files=parts,
                            headers={"Authorization": self._authorization})

    def parse_response(self, response: httpx.Response,
                       messages: Sequence[OutgoingMessage]) -> list[SendResult | None]:
        """Success is documented as 200 with {"id": "<message id>", "message": "Queued. Thank you."}."""
        body = json_body(response)
        message_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise UnreadableAnswer('not a JSON object with the message "id"')
        return [SendResult.accepted(message_id)]

    def parse_error(self, response: httpx.Response,
                    messages: Sequence[OutgoingMessage]) -> list[SendResult] | None:
        """A 400 that rejects the recipient's address suppresses it; every other one is the shared rule."""
        body = json_body(response)
        text = str(body.get("message") or "") if response.status_code == 400 and isinstance(body, dict) else ""
        if not _INVALID_RECIPIENT.match(text):
            return None
        reason = self.redact(f"mailgun: HTTP 400: {text}")
        return [SendResult.permanent(reason, SuppressionReason.BOUNCED)] * len(messages)

    def endpoint_hint(self) -> str:
        return (f"check {MAILGUN_DOMAIN.name} and {MAILGUN_REGION.name} (a domain lives in one region)"
                f" or {MAILGUN_BASE_URL.name}")

    def retry_after(self, response: httpx.Response) -> float | None:
        hint = super().retry_after(response)
        if hint is None and response.status_code == 429:
            match = _TRY_AGAIN.search(response.text)
            hint = float(match.group(1)) if match else None
        return hint
