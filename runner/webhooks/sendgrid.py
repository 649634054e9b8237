"""SendGrid's signed Event Webhook: a JSON array of events per POST, signed with ECDSA P-256.

SendGrid signs the timestamp header followed by the raw body with its private key; the
`X-Twilio-Email-Event-Webhook-Signature` header holds the base64 DER signature, checked here
against the verification key from Mail Settings > Event Webhook (base64 DER, as the dashboard
shows it, or PEM). Custom args dispatch sets (`campaign_id`, `send_id`) come back as top-level
fields of each event.
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from typing import Any, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..models import EventType
from ..settings import Setting, Settings
from .base import (
    ProviderEvent,
    Webhook,
    WebhookBatch,
    as_address,
    as_send_id,
    derived_event_id,
    from_unix,
    header,
    tolerance,
)

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


def parse_public_key(raw: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER (SubjectPublicKeyInfo) or PEM, on the P-256 curve."""
    text = raw.strip()
    try:
        key = (serialization.load_pem_public_key(text.encode()) if text.startswith("-----BEGIN")
               else serialization.load_der_public_key(base64.b64decode(text, validate=True)))
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("expected the base64 verification key SendGrid shows for the signed event webhook") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("expected an ECDSA P-256 public key")
    return key


SENDGRID_WEBHOOK_PUBLIC_KEY = Setting(
    "LIFECYCLE_SENDGRID_WEBHOOK_PUBLIC_KEY", "",
    "SendGrid signed event webhook verification key (Settings > Mail Settings > Event Webhook), base64",
    parse_public_key)

# SendGrid's events -> ours; bounces, drops and the rest are decided in `_type`.
SIMPLE_TYPES = {
    "delivered": EventType.DELIVERED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "spamreport": EventType.COMPLAINED,
    "unsubscribe": EventType.UNSUBSCRIBED,
    "group_unsubscribe": EventType.UNSUBSCRIBED,
}
# A drop because the address is on SendGrid's own suppression lists says the same as the original event.
DROP_REASONS = {
    "bounced address": EventType.BOUNCED,
    "spam reporting address": EventType.COMPLAINED,
    "unsubscribed address": EventType.UNSUBSCRIBED,
}


class SendGridWebhook(Webhook):
    name = "sendgrid"
    settings = (SENDGRID_WEBHOOK_PUBLIC_KEY,)

    def __init__(self, public_key: ec.EllipticCurvePublicKey, **options: Any) -> None:
        super().__init__(**options)
        self.public_key = public_key

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(cls.require_secret(settings, SENDGRID_WEBHOOK_PUBLIC_KEY), tolerance=tolerance(settings))

    def read(self, headers: Mapping[str, str], body: bytes, now: dt.datetime) -> WebhookBatch:
        signature, timestamp = header(headers, SIGNATURE_HEADER), header(headers, TIMESTAMP_HEADER)
        if signature is None or timestamp is None:
            raise self.refuse("the request is not signed (enable Signed Event Webhook Requests)")
        try:
            self.public_key.verify(base64.b64decode(signature, validate=True), timestamp.encode() + body,
                                   ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise self.refuse("the signature does not match the body and the verification key") from None
        self.check_fresh(timestamp, now)
        items = self.parse_json(body)
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise self.malformed("expected a JSON array of event objects")
        return WebhookBatch([self._event(item, now) for item in items])

    def _event(self, item: dict[str, Any], now: dt.datetime) -> ProviderEvent:
        kind = str(item.get("event") or "")
        event_type, detail = self._type(kind, item)
        if kind in {"bounce", "dropped"}:
            kind = f"{kind}/{item.get('type') or item.get('reason') or ''}"
        email = as_address(item.get("email"))
        message_id = item.get("sg_message_id")
        return ProviderEvent(
            provider_event_id=str(item.get("sg_event_id") or derived_event_id(item)),
            type=event_type if email else None, provider_type=kind, email=email or "",
            occurred_at=from_unix(item.get("timestamp")) or now, send_id=as_send_id(item.get("send_id")),
            # sg_message_id is the X-Message-Id the send was answered with, plus ".filter..." routing parts
            message_id=message_id.split(".", 1)[0] if isinstance(message_id, str) and message_id else None,
            detail=detail)

    @staticmethod
    def _type(kind: str, item: dict[str, Any]) -> tuple[EventType | None, dict[str, Any]]:
        if kind in SIMPLE_TYPES:
            detail: dict[str, Any] = {}
            if kind == "click" and item.get("url"):
                detail["url"] = item["url"]
            if kind == "open" and "sg_machine_open" in item:
                detail["machine_open"] = bool(item["sg_machine_open"])  # Apple Mail Privacy Protection
            return SIMPLE_TYPES[kind], detail
        reason = {"reason": item["reason"]} if item.get("reason") else {}
        if kind == "bounce":
            # "blocked" is a refusal of this message (reputation, content), not of the address
            return (EventType.SOFT_BOUNCED if item.get("type") == "blocked" else EventType.BOUNCED), reason
        if kind == "dropped":
            return DROP_REASONS.get(str(item.get("reason") or "").strip().lower()), reason
        return None, {}
