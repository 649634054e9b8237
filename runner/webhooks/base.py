"""The provider-webhook extension point: one required method, `events`, that authenticates a request
and reads it into normalized events; and the errors a request can be refused with.

    WebhookError (LifecycleError)   base; `status` is the HTTP status the web route answers with
    ├── UnknownWebhookProvider      404: no webhook registered under that name
    ├── WebhookNotConfigured        503: the provider's secret setting is empty or malformed
    ├── WebhookUnauthorized         401: unsigned, forged, wrongly keyed or stale; nothing changed
    ├── WebhookTooLarge             413: the body is over LIFECYCLE_HTTP_MAX_BODY_BYTES
    └── WebhookMalformed            400: the body is not what the provider documents
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from ..errors import LifecycleError
from ..models import EventType, normalise_email
from ..settings import Setting, Settings, parse_positive_int

WEBHOOK_TOLERANCE_SECONDS = Setting(
    "LIFECYCLE_WEBHOOK_TOLERANCE_SECONDS", "300",
    "how far a signed webhook's timestamp may be from now, either way, before the request is refused as stale "
    "(protects against replayed captures)", parse_positive_int)
WEBHOOK_SETTINGS = (WEBHOOK_TOLERANCE_SECONDS,)


class WebhookError(LifecycleError):
    """A webhook request was refused; `status` is the HTTP answer. Nothing was changed."""

    status: ClassVar[int] = 400


class UnknownWebhookProvider(WebhookError):
    status = 404


class WebhookNotConfigured(WebhookError):
    status = 503  # providers retry 5xx, so events posted before the secret is set are not lost


class WebhookUnauthorized(WebhookError):
    status = 401


class WebhookTooLarge(WebhookError):
    status = 413


class WebhookMalformed(WebhookError):
    status = 400


@dataclass(frozen=True)
class ProviderEvent:
    """One event as a provider reported it, in the runner's terms.

    `type` is None for the provider's events the runner does not record (sent, deferred, ...);
    `provider_type` is the provider's own name for it. `send_id` is the ledger id dispatch put in
    the message's tags/metadata; `message_id` the provider's message id in the form dispatch
    stored it (`send.provider_message_id`). `occurred_at` is naive UTC.
    """

    provider_event_id: str
    type: EventType | None
    provider_type: str
    email: str
    occurred_at: dt.datetime
    send_id: int | None = None
    message_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookBatch:
    """What one authenticated request said. `nonce` is a value the provider signs only once (Mailgun's
    token, whose signature does not cover the event): a second request carrying it is refused."""

    events: list[ProviderEvent]
    nonce: str | None = None


class Webhook(ABC):
    """Reads one provider's webhook requests. Subclasses implement `read` and usually `from_settings`.

    `read` must authenticate the request before it returns anything, raising WebhookUnauthorized
    for an unsigned, forged or stale one and WebhookMalformed for a body it cannot read.
    """

    name: ClassVar[str]
    settings: ClassVar[tuple[Setting, ...]] = ()

    def __init__(self, *, tolerance: dt.timedelta = dt.timedelta(seconds=300)) -> None:
        self.tolerance = tolerance

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(tolerance=tolerance(settings))

    @abstractmethod
    def read(self, headers: Mapping[str, str], body: bytes, now: dt.datetime) -> WebhookBatch:
        """Authenticate the request and read its events. `headers` have lower-case names; `now` is naive UTC."""

    # ---- helpers the providers share

    def refuse(self, reason: str) -> WebhookUnauthorized:
        return WebhookUnauthorized(f"{self.name} webhook refused: {reason}",
                                   f"check the {self.name} webhook's secret setting against the provider's dashboard")

    def malformed(self, reason: str) -> WebhookMalformed:
        return WebhookMalformed(f"{self.name} webhook body is malformed: {reason}",
                                f"the {self.name} webhook posts JSON as documented in docs/deliverability.md")

    def check_fresh(self, timestamp: str | int | float | None, now: dt.datetime) -> None:
        """Refuse a signed timestamp (Unix seconds) further from `now` than the tolerance, either way."""
        try:
            moment = dt.datetime.fromtimestamp(float(timestamp), dt.UTC).replace(tzinfo=None)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError, OSError):
            raise self.refuse("the signed timestamp is missing or not a number") from None
        if abs(moment - now) > self.tolerance:
            raise self.refuse(f"the signed timestamp is more than {int(self.tolerance.total_seconds())} s "
                              "from now (stale or replayed)")

    def parse_json(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise self.malformed("not JSON") from None

    @classmethod
    def require_secret(cls, settings: Settings, setting: Setting) -> Any:
        """A setting the webhook cannot authenticate without; WebhookNotConfigured when empty or malformed."""
        if not settings.raw(setting).strip():
            raise WebhookNotConfigured(f"the {cls.name} webhook is not configured: {setting.name} is not set",
                                       f"set it in the environment: {setting.help}")
        try:
            return settings[setting]
        except LifecycleError as exc:
            raise WebhookNotConfigured(f"the {cls.name} webhook is not configured: {exc}", exc.hint) from None


def tolerance(settings: Settings) -> dt.timedelta:
    return dt.timedelta(seconds=settings[WEBHOOK_TOLERANCE_SECONDS])


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by its lower-case name, None when absent or empty."""
    value = headers.get(name)
    return value.strip() or None if isinstance(value, str) else None


def derived_event_id(event: Any) -> str:
    """A stable id for an event the provider gives none: the SHA-256 of its canonical JSON, so the
    same event retried is the same id and any other event is not."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def as_address(value: Any) -> str | None:
    """A recipient as the store keeps addresses, or None when the field is missing."""
    return normalise_email(value) if isinstance(value, str) and "@" in value else None


def as_send_id(value: Any) -> int | None:
    """The ledger id from a tag or header value ("123"), or None when it is absent or not an id."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return int(text) if text.isdigit() and len(text) < 19 else None


def from_unix(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(float(value), dt.UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def from_iso(value: Any) -> dt.datetime | None:
    """An ISO 8601 instant as naive UTC (naive input is taken as UTC), or None when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
