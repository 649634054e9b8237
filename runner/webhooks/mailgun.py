"""Mailgun's webhooks: one JSON event per POST, signed inside the body.

The body is `{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}`; the
signature is the hex HMAC-SHA256 of timestamp + token under the account's HTTP webhook signing
key (Settings > Webhooks). User variables dispatch set (`v:campaign_id`, `v:send_id`) come back in
`event-data.user-variables`.
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
https://documentation.mailgun.com/docs/mailgun/user-manual/events/
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Self

from ..models import EventType
from ..settings import Setting, Settings
from .base import ProviderEvent, Webhook, WebhookBatch, as_address, as_send_id, derived_event_id, from_unix, tolerance

MAILGUN_WEBHOOK_SIGNING_KEY = Setting("LIFECYCLE_MAILGUN_WEBHOOK_SIGNING_KEY", "",
                                      "Mailgun HTTP webhook signing key (Settings > Webhooks)", secret=True)

SIMPLE_TYPES = {
    "delivered": EventType.DELIVERED,
    "opened": EventType.OPENED,
    "clicked": EventType.CLICKED,
    "complained": EventType.COMPLAINED,
    "unsubscribed": EventType.UNSUBSCRIBED,
}
# A permanent failure because the address is on Mailgun's own lists says what the original event said.
SUPPRESSED_BECAUSE = {"suppress-complaint": EventType.COMPLAINED, "suppress-unsubscribe": EventType.UNSUBSCRIBED}


class MailgunWebhook(Webhook):
    name = "mailgun"
    settings = (MAILGUN_WEBHOOK_SIGNING_KEY,)

    def __init__(self, signing_key: str, **options: Any) -> None:
        super().__init__(**options)
        self._key = signing_key.encode()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(cls.require_secret(settings, MAILGUN_WEBHOOK_SIGNING_KEY), tolerance=tolerance(settings))

    def read(self, headers: Mapping[str, str], body: bytes, now: dt.datetime) -> WebhookBatch:
        payload = self.parse_json(body)
        signature = payload.get("signature") if isinstance(payload, dict) else None
        if not isinstance(signature, dict):
            raise self.refuse("the body has no signature object")
        timestamp, token, given = (signature.get(k) for k in ("timestamp", "token", "signature"))
        if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in (timestamp, token, given)):
            raise self.refuse("the signature object lacks timestamp, token or signature")
        expected = hmac.new(self._key, f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(given).lower()):
            raise self.refuse("the signature does not match the signing key")
        self.check_fresh(timestamp, now)
        data = payload.get("event-data")
        if not isinstance(data, dict):
            raise self.malformed("expected an event-data object")
        return WebhookBatch([self._event(data, now)], nonce=str(token))

    def _event(self, data: dict[str, Any], now: dt.datetime) -> ProviderEvent:
        kind = str(data.get("event") or "")
        event_type: EventType | None = SIMPLE_TYPES.get(kind)
        detail: dict[str, Any] = {}
        if kind == "clicked" and data.get("url"):
            detail["url"] = data["url"]
        if kind == "failed":
            severity, reason = data.get("severity"), data.get("reason")
            kind = f"failed/{severity}/{reason}"
            status = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
            detail["reason"] = status.get("description") or status.get("message") or reason
            if severity == "permanent":
                event_type = SUPPRESSED_BECAUSE.get(str(reason), EventType.BOUNCED)
            elif severity == "temporary":
                event_type = EventType.SOFT_BOUNCED
        variables = data.get("user-variables") if isinstance(data.get("user-variables"), dict) else {}
        message = data.get("message") if isinstance(data.get("message"), dict) else {}
        headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
        message_id = headers.get("message-id")
        email = as_address(data.get("recipient"))
        return ProviderEvent(
            provider_event_id=str(data.get("id") or derived_event_id(data)), type=event_type if email else None,
            provider_type=kind, email=email or "", occurred_at=from_unix(data.get("timestamp")) or now,
            send_id=as_send_id(variables.get("send_id")),
            # the send was answered with the Message-Id in angle brackets, as it is stored in the ledger
            message_id=f"<{message_id.strip('<>')}>" if isinstance(message_id, str) and message_id else None,
            detail={k: v for k, v in detail.items() if v})
