"""Resend: up to 100 messages per `POST /emails/batch`, made safe to retry by an Idempotency-Key.

The key is derived from the batch's message idempotency keys, so every retry of the same batch
carries the same key and Resend answers it with the original result instead of sending again
(keys are kept for 24 hours). Batches are sent in permissive validation mode, so one invalid
message is reported in `errors` and does not stop the others.
https://resend.com/docs/dashboard/emails/idempotency-keys
https://resend.com/docs/dashboard/emails/batch-validation-modes
https://resend.com/docs/api-reference/errors
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import httpx

from ..models import SuppressionReason
from ..settings import Setting
from .base import OutgoingMessage, SendResult
from .http import HttpProvider, UnreadableAnswer, json_body, sanitize_tag
from .settings import HTTP_SETTINGS, parse_base_url

RESEND_API_KEY = Setting("LIFECYCLE_RESEND_API_KEY", "", "Resend API key (re_...) with sending access", secret=True)
RESEND_BASE_URL = Setting("LIFECYCLE_RESEND_BASE_URL", "https://api.resend.com", "Resend API base URL",
                          parse_base_url)

# Validation errors say in words which field they reject: "Invalid `to` field. ..." is the
# recipient's address (malformed, or a domain such as example.com that cannot receive mail);
# `from`, subject or content errors are the message. Addresses on Resend's own suppression list
# are accepted and reported later by event, so they cannot be seen here.
_INVALID_RECIPIENT = re.compile(r"^\s*invalid `to` field", re.IGNORECASE)


def rejected_address(message: str) -> SuppressionReason | None:
    return SuppressionReason.BOUNCED if _INVALID_RECIPIENT.match(message) else None


def batch_idempotency_key(messages: Sequence[OutgoingMessage]) -> str:
    """The same messages in the same order always give the same key (at most 256 characters)."""
    digest = hashlib.sha256("\n".join(m.idempotency_key for m in messages).encode()).hexdigest()
    return f"lifecycle-batch/{digest}"


class ResendProvider(HttpProvider):
    name = "resend"
    max_batch_size = 100
    max_request_size = 100
    default_request_rate = 2.0  # Resend's documented default: 2 requests per second per team
    credential_setting = RESEND_API_KEY
    base_url_setting = RESEND_BASE_URL
    settings = (RESEND_API_KEY, RESEND_BASE_URL, *HTTP_SETTINGS)

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        """One message in Resend's JSON shape; tag values restricted to [A-Za-z0-9_-]."""
        body: dict[str, Any] = {
            "from": message.from_,
            "to": [message.to],
            "subject": message.subject,
            "html": message.html,
            "text": message.text,
            "headers": dict(message.headers),
            "tags": [{"name": name, "value": sanitize_tag(value)} for name, value in message.metadata.items()],
        }
        if message.reply_to:
            body["reply_to"] = message.reply_to
        return body

    def build_request(self, messages: Sequence[OutgoingMessage]) -> httpx.Request:
        return self.request("POST", "/emails/batch", json=[self.payload(m) for m in messages], headers={
            "Authorization": f"Bearer {self._credential}",
            "Idempotency-Key": batch_idempotency_key(messages),
            "x-batch-validation": "permissive",
        })

    def parse_response(self, response: httpx.Response,
                       messages: Sequence[OutgoingMessage]) -> list[SendResult | None]:
        """`data` lists the created emails in request order; `errors` names the rejected ones by index.
        Together they account for every message exactly once, or the answer cannot be read."""
        body = json_body(response)
        if not isinstance(body, dict):
            raise UnreadableAnswer("not a JSON object")
        created, errors = body.get("data"), body.get("errors") or []
        if not isinstance(created, list) or not isinstance(errors, list):
            raise UnreadableAnswer('no "data" list of created emails')
        rejected = {e.get("index"): str(e.get("message") or "") for e in errors if isinstance(e, dict)}
        if (len(rejected) != len(errors) or not set(rejected) <= set(range(len(messages)))
                or len(created) + len(rejected) != len(messages)):
            raise UnreadableAnswer(f"{len(created)} created and {len(errors)} rejected for {len(messages)} messages")
        entries = iter(created)
        results: list[SendResult | None] = []
        for index in range(len(messages)):
            if index in rejected:
                text = rejected[index]
                results.append(SendResult.permanent(self.redact(f"resend: batch validation error: {text}"),
                                                    rejected_address(text)))
                continue
            entry = next(entries)
            email_id = entry.get("id") if isinstance(entry, dict) else None
            results.append(SendResult.accepted(email_id) if isinstance(email_id, str) and email_id else None)
        return results

    def parse_error(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> list[SendResult] | None:
        """409 means the Idempotency-Key was seen before: in flight (retry later) or with another payload.
        A 400/422 validation error rejecting `to` suppresses the address when the request carried one
        message (with several, which one it meant is unknowable); every other answer is the shared rule."""
        body = json_body(response)
        kind = body.get("name") if isinstance(body, dict) else None
        if response.status_code in (400, 422) and kind == "validation_error" and len(messages) == 1:
            text = str(body.get("message") or "")  # type: ignore[union-attr]
            if suppress := rejected_address(text):
                return [SendResult.permanent(self.redact(f"resend: HTTP {response.status_code} {kind}: {text}"),
                                             suppress)]
        if response.status_code != 409:
            return None
        reason = f"resend: HTTP 409 {kind}: {self.error_detail(response)}"
        if kind == "invalid_idempotent_request":
            # The same messages were sent with different content within 24 hours. Resend will
            # not send them again under this key, and a new key could deliver them twice.
            return [SendResult.permanent(reason + " (this batch was already submitted with different "
                                         "content in the last 24 hours; not sent again)")] * len(messages)
        # concurrent_idempotent_requests, or anything else: the first request is still in flight.
        return [SendResult.retryable(reason, self.retry_after(response) or 1.0)] * len(messages)
