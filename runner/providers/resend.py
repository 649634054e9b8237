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
from collections.abc import Sequence
from typing import Any

import httpx

from ..settings import Setting
from .base import OutgoingMessage, SendResult
from .http import HTTP_SETTINGS, HttpProvider, json_body, parse_base_url, sanitize_tag

RESEND_API_KEY = Setting("LIFECYCLE_RESEND_API_KEY", "", "Resend API key (re_...) with sending access", secret=True)
RESEND_BASE_URL = Setting("LIFECYCLE_RESEND_BASE_URL", "https://api.resend.com", "Resend API base URL",
                          parse_base_url)


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

    def parse_response(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """`data` lists the created emails in request order; `errors` names the rejected ones by index."""
        body = json_body(response)
        body = body if isinstance(body, dict) else {}
        rejected = {e.get("index"): e.get("message", "") for e in body.get("errors") or [] if isinstance(e, dict)}
        created = iter(body.get("data") or [])
        results = []
        for index in range(len(messages)):
            if index in rejected:
                results.append(SendResult.permanent(self.redact(f"resend: {rejected[index]}")))
                continue
            entry = next(created, None)
            # A 2xx without an entry still means Resend took the batch: count it as sent (no id)
            # rather than risk sending it twice.
            results.append(SendResult.accepted(entry.get("id") if isinstance(entry, dict) else None))
        return results

    def parse_error(self, response: httpx.Response, messages: Sequence[OutgoingMessage]) -> list[SendResult] | None:
        """409 means the Idempotency-Key was seen before: in flight (retry later) or with another payload."""
        if response.status_code != 409:
            return None
        body = json_body(response)
        kind = body.get("name") if isinstance(body, dict) else None
        reason = f"resend: HTTP 409 {kind}: {self.error_detail(response)}"
        if kind == "invalid_idempotent_request":
            # The same messages were sent with different content within 24 hours. Resend will
            # not send them again under this key, and a new key could deliver them twice.
            return [SendResult.permanent(reason + " (this batch was already submitted with different "
                                         "content in the last 24 hours; not sent again)")] * len(messages)
        # concurrent_idempotent_requests, or anything else: the first request is still in flight.
        return [SendResult.retryable(reason, self.retry_after(response) or 1.0)] * len(messages)
