"""Postmark: up to 500 messages per `POST /email/batch`, each answered with its own ErrorCode.

https://postmarkapp.com/developer/user-guide/send-email-with-api/batch-emails
https://postmarkapp.com/developer/api/overview#error-codes
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import httpx

from ..errors import ProviderError
from ..settings import Setting, Settings
from .base import OutgoingMessage, SendResult
from .http import HTTP_SETTINGS, HttpProvider, json_body, parse_base_url

POSTMARK_SERVER_TOKEN = Setting("LIFECYCLE_POSTMARK_SERVER_TOKEN", "",
                                "Postmark server API token (Servers > API Tokens)", secret=True)
POSTMARK_MESSAGE_STREAM = Setting("LIFECYCLE_POSTMARK_MESSAGE_STREAM", "broadcast",
                                  "Postmark message stream ID; lifecycle mail is marketing, so a Broadcasts stream")
POSTMARK_BASE_URL = Setting("LIFECYCLE_POSTMARK_BASE_URL", "https://api.postmarkapp.com",
                            "Postmark API base URL", parse_base_url)

# Per-message (and whole-request) ErrorCodes worth retrying: 429 rate limit, 100 maintenance.
RETRYABLE_CODES = frozenset({100, 429})
# Whole-request ErrorCodes meaning the account cannot send at all: bad token, no credits,
# account pending approval, account may not send.
UNUSABLE_CODES = frozenset({10, 405, 412, 413})


class PostmarkProvider(HttpProvider):
    name = "postmark"
    max_batch_size = 500
    max_request_size = 500
    credential_setting = POSTMARK_SERVER_TOKEN
    base_url_setting = POSTMARK_BASE_URL
    settings = (POSTMARK_SERVER_TOKEN, POSTMARK_MESSAGE_STREAM, POSTMARK_BASE_URL, *HTTP_SETTINGS)

    def __init__(self, server_token: str, *, message_stream: str = "broadcast", **options: Any) -> None:
        super().__init__(server_token, **options)
        self.message_stream = message_stream

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        return super().from_settings(settings, **{"message_stream": settings[POSTMARK_MESSAGE_STREAM]} | options)

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        """One message in Postmark's JSON shape."""
        body: dict[str, Any] = {
            "From": message.from_,
            "To": message.to,
            "Subject": message.subject,
            "HtmlBody": message.html,
            "TextBody": message.text,
            "MessageStream": self.message_stream,
            "Tag": message.campaign_id,
            "Metadata": message.metadata,
            "Headers": [{"Name": name, "Value": value} for name, value in message.headers.items()],
        }
        if message.reply_to:
            body["ReplyTo"] = message.reply_to
        return body

    def build_request(self, messages: Sequence[OutgoingMessage]) -> httpx.Request:
        return self.request("POST", "/email/batch", json=[self.payload(m) for m in messages],
                            headers={"X-Postmark-Server-Token": self._credential, "Accept": "application/json"})

    def parse_response(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """A 200 holds one entry per message, in request order, each with its own ErrorCode."""
        entries = json_body(response)
        if not isinstance(entries, list):
            entries = []
        results = []
        for position in range(len(messages)):
            entry = entries[position] if position < len(entries) and isinstance(entries[position], dict) else None
            if entry is None:
                # Postmark took the request (2xx) but said nothing about this message: treat it as
                # sent rather than risk a duplicate; only its MessageID is lost.
                results.append(SendResult.accepted(None))
                continue
            code = entry.get("ErrorCode", 0)
            if code == 0:
                results.append(SendResult.accepted(entry.get("MessageID")))
                continue
            reason = self.redact(f"postmark: ErrorCode {code}: {entry.get('Message', '')}".strip())
            results.append(SendResult.retryable(reason) if code in RETRYABLE_CODES else SendResult.permanent(reason))
        return results

    def parse_error(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> list[SendResult] | None:
        """422 rejects the whole request with one ErrorCode."""
        if response.status_code != 422:
            return None
        body = json_body(response)
        code = body.get("ErrorCode") if isinstance(body, dict) else None
        reason = f"postmark: HTTP 422 ErrorCode {code}: {self.error_detail(response)}"
        if code in UNUSABLE_CODES:
            raise ProviderError(reason, f"check {POSTMARK_SERVER_TOKEN.name} and the Postmark account's status")
        if code in RETRYABLE_CODES:
            return [SendResult.retryable(reason, self.retry_after(response))] * len(messages)
        return [SendResult.permanent(reason)] * len(messages)
