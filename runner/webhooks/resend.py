"""Resend's webhooks: one JSON event per POST, signed the Svix way.

Headers `svix-id`, `svix-timestamp` and `svix-signature`; the signature is the base64
HMAC-SHA256 of `id.timestamp.body` under the endpoint's signing secret (`whsec_` + base64 key),
listed as space-separated `v1,<signature>` entries (several while a secret is rotated). The
`svix-id` is the same on every retry of one event, so it is the event's id here. Tags dispatch
set (`campaign_id`, `send_id`) come back in `data.tags`.
https://resend.com/docs/dashboard/webhooks/verify-webhooks-requests
https://docs.svix.com/receiving/verifying-payloads/how-manual
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Self

from ..models import EventType
from ..settings import Setting, Settings
from .base import ProviderEvent, Webhook, WebhookBatch, as_address, as_send_id, from_iso, header, tolerance

SECRET_PREFIX = "whsec_"


def parse_signing_secret(raw: str) -> bytes:
    """The HMAC key inside a `whsec_...` signing secret."""
    text = raw.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected the whsec_... signing secret Resend shows for the webhook") from None
    if not key:
        raise ValueError("expected the whsec_... signing secret Resend shows for the webhook")
    return key


RESEND_WEBHOOK_SECRET = Setting("LIFECYCLE_RESEND_WEBHOOK_SECRET", "",
                                "Resend webhook signing secret (whsec_..., Webhooks > the endpoint)",
                                parse_signing_secret, secret=True)

SIMPLE_TYPES = {
    "email.delivered": EventType.DELIVERED,
    "email.opened": EventType.OPENED,
    "email.clicked": EventType.CLICKED,
    "email.complained": EventType.COMPLAINED,
}
BOUNCE_TYPES = {"Permanent": EventType.BOUNCED, "Transient": EventType.SOFT_BOUNCED,
                "Undetermined": EventType.SOFT_BOUNCED}
# Resend refused to send because the address is on its suppression list: the original event again.
SUPPRESSED_BECAUSE = {"previous_bounce": EventType.BOUNCED, "previous_complaint": EventType.COMPLAINED}


class ResendWebhook(Webhook):
    name = "resend"
    settings = (RESEND_WEBHOOK_SECRET,)

    def __init__(self, signing_key: bytes, **options: Any) -> None:
        super().__init__(**options)
        self._key = signing_key

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(cls.require_secret(settings, RESEND_WEBHOOK_SECRET), tolerance=tolerance(settings))

    def read(self, headers: Mapping[str, str], body: bytes, now: dt.datetime) -> WebhookBatch:
        message_id, timestamp = header(headers, "svix-id"), header(headers, "svix-timestamp")
        signatures = header(headers, "svix-signature")
        if message_id is None or timestamp is None or signatures is None:
            raise self.refuse("the request is not signed (svix-id, svix-timestamp and svix-signature headers)")
        signed = f"{message_id}.{timestamp}.".encode() + body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest())
        given = [entry.partition(",")[2].encode() for entry in signatures.split() if entry.startswith("v1,")]
        # compare against every entry, not stopping at the first match, so timing says nothing
        if not sum(hmac.compare_digest(expected, candidate) for candidate in given):
            raise self.refuse("no signature matches the body and the signing secret")
        self.check_fresh(timestamp, now)
        payload = self.parse_json(body)
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or not isinstance(payload.get("type"), str):
            raise self.malformed("expected an object with type and data")
        return WebhookBatch(self._events(message_id, payload, data, now))

    def _events(self, event_id: str, payload: dict[str, Any], data: dict[str, Any],
                now: dt.datetime) -> list[ProviderEvent]:
        kind = payload["type"]
        event_type = SIMPLE_TYPES.get(kind)
        detail: dict[str, Any] = {}
        if kind == "email.bounced" and isinstance(data.get("bounce"), dict):
            bounce = data["bounce"]
            kind = f"{kind}/{bounce.get('type')}/{bounce.get('subType')}"
            event_type = BOUNCE_TYPES.get(str(bounce.get("type")))
            detail["reason"] = bounce.get("message")
        elif kind == "email.suppressed" and isinstance(data.get("suppressed"), dict):
            suppressed = data["suppressed"]
            kind = f"{kind}/{suppressed.get('reason')}"
            event_type = SUPPRESSED_BECAUSE.get(str(suppressed.get("reason")))
            detail["reason"] = suppressed.get("message")
        elif kind == "email.clicked" and isinstance(data.get("click"), dict):
            detail["url"] = data["click"].get("link")
        tags = data.get("tags") if isinstance(data.get("tags"), dict) else {}
        send_id = as_send_id(tags.get("send_id")) or as_send_id(_header_value(data.get("headers"), "x-send-id"))
        recipients = [a for a in (as_address(r) for r in data.get("to") or [] if isinstance(r, str)) if a] \
            if isinstance(data.get("to"), list) else []
        occurred_at = from_iso(payload.get("created_at")) or now
        email_id = data.get("email_id") if isinstance(data.get("email_id"), str) else None
        detail = {k: v for k, v in detail.items() if v}
        if not recipients:
            return [ProviderEvent(event_id, None, kind, "", occurred_at, send_id, email_id, detail)]
        # one row per recipient; lifecycle emails have exactly one, so the id is svix-id itself
        return [ProviderEvent(event_id if len(recipients) == 1 else f"{event_id}/{email}", event_type, kind, email,
                              occurred_at, send_id, email_id, detail) for email in recipients]


def _header_value(headers: Any, name: str) -> str | None:
    """A header from Resend's `[{name, value}]` list, by case-insensitive name."""
    for entry in headers if isinstance(headers, list) else []:
        if isinstance(entry, dict) and str(entry.get("name", "")).lower() == name:
            return entry.get("value")
    return None
