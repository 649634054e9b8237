"""Postmark's webhooks: one JSON record per POST, authenticated by HTTP basic auth on the URL.

Postmark signs nothing; the webhook URL carries a user name and password
(`https://USER:PASSWORD@shop.example.com/webhooks/postmark`), which Postmark sends as an
`Authorization: Basic` header and which is compared here in constant time. The body's
integrity and freshness rest on that secret and on TLS, so there is no timestamp to check.
https://postmarkapp.com/developer/webhooks/webhooks-overview
https://postmarkapp.com/developer/webhooks/bounce-webhook
https://postmarkapp.com/developer/webhooks/subscription-change-webhook
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from collections.abc import Mapping
from typing import Any, Self

from ..models import EventType
from ..settings import Setting, Settings
from .base import (
    ProviderEvent,
    Webhook,
    WebhookBatch,
    as_address,
    as_send_id,
    derived_event_id,
    from_iso,
    header,
    tolerance,
)

POSTMARK_WEBHOOK_USERNAME = Setting("LIFECYCLE_POSTMARK_WEBHOOK_USERNAME", "",
                                    "user name in the Postmark webhook URL's basic auth")
POSTMARK_WEBHOOK_PASSWORD = Setting("LIFECYCLE_POSTMARK_WEBHOOK_PASSWORD", "",
                                    "password in the Postmark webhook URL's basic auth (a long random string)",
                                    secret=True)

# Bounce types (the `Type` field): which mean the address is dead, which are temporary.
HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress"})
SOFT_BOUNCES = frozenset({"Transient", "SoftBounce", "DnsError", "Blocked", "SpamNotification", "DMARCPolicy"})


class PostmarkWebhook(Webhook):
    name = "postmark"
    settings = (POSTMARK_WEBHOOK_USERNAME, POSTMARK_WEBHOOK_PASSWORD)

    def __init__(self, username: str, password: str, **options: Any) -> None:
        super().__init__(**options)
        self._expected = f"{username}:{password}".encode()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(cls.require_secret(settings, POSTMARK_WEBHOOK_USERNAME),
                   cls.require_secret(settings, POSTMARK_WEBHOOK_PASSWORD), tolerance=tolerance(settings))

    def read(self, headers: Mapping[str, str], body: bytes, now: dt.datetime) -> WebhookBatch:
        self._authenticate(header(headers, "authorization"))
        record = self.parse_json(body)
        if not isinstance(record, dict) or not isinstance(record.get("RecordType"), str):
            raise self.malformed("expected one JSON object with a RecordType")
        return WebhookBatch([self._event(record, now)])

    def _authenticate(self, authorization: str | None) -> None:
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "basic" or not credentials:
            raise self.refuse("no basic auth credentials (put them in the webhook URL)")
        try:
            given = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise self.refuse("the basic auth credentials are not base64") from None
        if not hmac.compare_digest(given, self._expected):
            raise self.refuse("wrong user name or password")

    def _event(self, record: dict[str, Any], now: dt.datetime) -> ProviderEvent:
        kind = record["RecordType"]
        event_type: EventType | None = None
        detail: dict[str, Any] = {}
        email = as_address(record.get("Recipient")) or as_address(record.get("Email"))
        stamp = record.get("ReceivedAt") or record.get("DeliveredAt") or record.get("BouncedAt") \
            or record.get("ChangedAt")
        event_id = derived_event_id(record)
        if kind == "Delivery":
            event_type = EventType.DELIVERED
        elif kind == "Open":
            event_type = EventType.OPENED
            detail["first_open"] = bool(record.get("FirstOpen"))
        elif kind == "Click":
            event_type = EventType.CLICKED
            detail["url"] = record.get("OriginalLink")
        elif kind in {"Bounce", "SpamComplaint"}:
            bounce_type = str(record.get("Type") or "")
            kind = f"{kind}/{bounce_type}"
            event_type = _bounce_type(bounce_type)
            detail["reason"] = record.get("Description") or record.get("Details")
            if record.get("ID") is not None:  # bounces and complaints have ids; other records do not
                event_id = f"bounce:{record['ID']}"
        elif kind == "SubscriptionChange":
            # Bounces and complaints arrive as their own records; this one adds the recipients who used
            # Postmark's unsubscribe link. Reactivations are not applied: see `lifecycle suppress remove`.
            origin, reason = record.get("Origin"), record.get("SuppressionReason")
            kind = f"{kind}/{reason}/{origin}"
            if record.get("SuppressSending") is True and reason == "ManualSuppression" and origin == "Recipient":
                event_type = EventType.UNSUBSCRIBED
        metadata = record.get("Metadata") if isinstance(record.get("Metadata"), dict) else {}
        message_id = record.get("MessageID")
        return ProviderEvent(
            provider_event_id=event_id, type=event_type if email else None, provider_type=kind,
            email=email or "", occurred_at=from_iso(stamp) or now, send_id=as_send_id(metadata.get("send_id")),
            message_id=message_id if isinstance(message_id, str) else None,
            detail={k: v for k, v in detail.items() if v is not None})


def _bounce_type(bounce_type: str) -> EventType | None:
    if bounce_type in HARD_BOUNCES:
        return EventType.BOUNCED
    if bounce_type == "SpamComplaint":
        return EventType.COMPLAINED
    if bounce_type == "Unsubscribe":
        return EventType.UNSUBSCRIBED
    if bounce_type in SOFT_BOUNCES:
        return EventType.SOFT_BOUNCED
    return None  # auto-responders, address changes, challenge requests: not about deliverability
