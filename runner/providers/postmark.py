"""Postmark: up to 500 messages per `POST /email/batch`, each answered with its own ErrorCode.

https://postmarkapp.com/developer/user-guide/send-email-with-api/batch-emails
https://postmarkapp.com/developer/api/overview#error-codes
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Self

import httpx

from ..errors import ProviderError
from ..models import SuppressionReason
from ..settings import Setting, Settings
from .base import OutgoingMessage, SendResult
from .http import HttpProvider, UnreadableAnswer, json_body
from .settings import HTTP_SETTINGS, parse_base_url

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
# ErrorCode 406: the recipient is inactive ("Inactive recipients are ones that have generated a
# hard bounce, a spam complaint, or a manual suppression"; the answer does not say which).
INACTIVE_RECIPIENT = 406
# ErrorCode 300 covers every validation failure of the request; only those naming a recipient
# field ("Invalid 'To' address: ...", "Error parsing 'To': Illegal email ...") are about the
# address. "Invalid 'From' address", a bad Reply-To or metadata are about the message.
INVALID_EMAIL_REQUEST = 300
_RECIPIENT_FIELD = re.compile(r"^\s*(invalid|error\s+parsing)\s+'(to|cc|bcc)'", re.IGNORECASE)


def rejected_address(code: int, message: str) -> SuppressionReason | None:
    """The suppression a per-message ErrorCode calls for: only rejections of the address."""
    if code == INACTIVE_RECIPIENT or (code == INVALID_EMAIL_REQUEST and _RECIPIENT_FIELD.match(message)):
        return SuppressionReason.BOUNCED
    return None


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

    def parse_response(self, response: httpx.Response,
                       messages: Sequence[OutgoingMessage]) -> list[SendResult | None]:
        """A 200 holds one entry per message, in request order, each with its own ErrorCode."""
        entries = json_body(response)
        if not isinstance(entries, list):
            raise UnreadableAnswer("not a JSON array of results")
        if len(entries) != len(messages):
            # Which entry belongs to which message is unknowable when the counts differ.
            raise UnreadableAnswer(f"{len(entries)} results for {len(messages)} messages")
        return [self.read_entry(entry) for entry in entries]

    def read_entry(self, entry: Any) -> SendResult | None:
        """One message's result; None when the entry is not one Postmark documents."""
        if not isinstance(entry, dict):
            return None
        # Postmark omits ErrorCode on "Message accepted, but delivery may be delayed."
        code = entry.get("ErrorCode", 0)
        if not isinstance(code, int) or isinstance(code, bool):
            return None
        if code == 0:
            message_id = entry.get("MessageID")
            return SendResult.accepted(message_id) if isinstance(message_id, str) and message_id else None
        text = str(entry.get("Message") or "")
        reason = self.redact(f"postmark: ErrorCode {code}: {text}".strip())
        if code in RETRYABLE_CODES:
            return SendResult.retryable(reason)
        return SendResult.permanent(reason, rejected_address(code, text))

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
        # A rejection of the whole request names an address only when it carried one message.
        text = str(body.get("Message") or "") if isinstance(body, dict) else ""
        suppress = rejected_address(code, text) if isinstance(code, int) and len(messages) == 1 else None
        return [SendResult.permanent(reason, suppress)] * len(messages)
