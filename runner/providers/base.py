"""The mail-provider extension point: one required method, `send_batch`."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from enum import StrEnum
from functools import cached_property
from typing import ClassVar, Self

from ..models import SuppressionReason
from ..rendering.mime import SMTP_COMPAT32, mime_bytes
from ..rendering.templates import RenderedEmail
from ..settings import Setting, Settings


@dataclass(frozen=True)
class OutgoingMessage:
    """A rendered email ready for a provider.

    `mime_bytes` is the complete standards-compliant message, built on first use (providers that post
    JSON never need it), and `mime` the same as a Message object; the other fields are its parts for
    APIs that take JSON. `date` is the instant the message is stamped with. `idempotency_key` is
    stable across retries of the same ledger row, so a provider that supports idempotency never
    delivers a retried message twice.
    `headers` holds the extra headers every provider must pass on (List-Unsubscribe,
    X-Campaign-ID, X-Send-ID).
    """

    idempotency_key: str
    campaign_id: str
    send_id: int | None
    to: str
    from_: str
    subject: str
    html: str
    text: str
    date: dt.datetime
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    is_test: bool = False

    @classmethod
    def from_rendered(cls, rendered: RenderedEmail, *, idempotency_key: str, campaign_id: str,
                      send_id: int | None, to: str, headers: Mapping[str, str], date: dt.datetime,
                      is_test: bool = False) -> OutgoingMessage:
        return cls(idempotency_key=idempotency_key, campaign_id=campaign_id, send_id=send_id, to=to,
                   from_=rendered.from_, subject=rendered.subject, html=rendered.html, text=rendered.text,
                   date=date, reply_to=rendered.reply_to, headers=dict(headers), is_test=is_test)

    @cached_property
    def mime_bytes(self) -> bytes:
        """The message as sent: what the file provider writes and an SMTP server receives."""
        return mime_bytes(self, to=self.to, headers=self.headers, date=self.date)

    @cached_property
    def mime(self) -> Message:
        """`mime_bytes` as a Message object (the same bytes, the same Message-ID)."""
        return message_from_bytes(self.mime_bytes, policy=SMTP_COMPAT32)

    @property
    def metadata(self) -> dict[str, str]:
        """What providers attach as tags/metadata so webhook events map back to the ledger."""
        meta = {"campaign_id": self.campaign_id}
        if self.send_id is not None:
            meta["send_id"] = str(self.send_id)
        return meta


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    RETRYABLE = "retryable"  # worth trying again later: 429, 5xx, timeouts, dropped connections
    PERMANENT = "permanent"  # will never succeed as it is: invalid recipient, rejected content


@dataclass(frozen=True)
class SendResult:
    """What became of one message. `suppress` is set only on a permanent rejection of the
    recipient's ADDRESS (invalid, unknown mailbox, inactive after a hard bounce or a complaint):
    the dispatcher then suppresses the address with that reason and `error` as the detail, in the
    same transaction as the result. A rejection of the message itself (sender, content, size)
    never sets it."""

    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the provider asked us to wait, when it said
    suppress: SuppressionReason | None = None

    def __post_init__(self) -> None:
        if self.suppress is not None and self.outcome is not Outcome.PERMANENT:
            raise ValueError("only a permanent rejection can suppress an address")

    @classmethod
    def accepted(cls, message_id: str | None) -> SendResult:
        return cls(Outcome.ACCEPTED, provider_message_id=message_id)

    @classmethod
    def retryable(cls, error: str, retry_after: float | None = None) -> SendResult:
        return cls(Outcome.RETRYABLE, error=error, retry_after=retry_after)

    @classmethod
    def permanent(cls, error: str, suppress: SuppressionReason | None = None) -> SendResult:
        return cls(Outcome.PERMANENT, error=error, suppress=suppress)


def keep_accepted(results: Sequence[SendResult | None], total: int, reason: str) -> list[SendResult] | None:
    """After an error stopped a batch part-way: None when nothing was accepted (the caller raises,
    and the dispatcher gives the attempt back); otherwise the accepted results as they are, so the
    ledger never sends them again, and `reason` as a retryable failure for the rest."""
    padded = [*results, *[None] * (total - len(results))]
    if not any(r is not None and r.outcome is Outcome.ACCEPTED for r in padded):
        return None
    return [r if r is not None and r.outcome is not Outcome.RETRYABLE else SendResult.retryable(reason)
            for r in padded]


class Provider(ABC):
    """Delivers batches of messages. Subclasses implement `send_batch` and usually `from_settings`.

    `send_batch` returns one result per message, in order, and does not raise for per-message
    failures; it raises ProviderError only when the provider cannot be used at all.
    """

    name: ClassVar[str]
    max_batch_size: ClassVar[int] = 1
    #: True when `send_batch` may run in several threads at once; the dispatcher then keeps up to
    #: LIFECYCLE_DISPATCH_CONCURRENCY requests in flight while it renders the next batches
    concurrent: ClassVar[bool] = False
    settings: ClassVar[tuple[Setting, ...]] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls()

    @abstractmethod
    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Hand the messages to the provider; one result per message, in the same order."""

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in an error message or log line."""
        return ()

    def redact(self, text: str) -> str:
        """`text` with every secret masked. (Values under 6 characters are no real credential and
        would mask half of every message, so they are left alone.)"""
        for secret in self.secrets():
            if len(secret) >= 6:
                text = text.replace(secret, "********")
        return text

    def close(self) -> None:
        """Release connections. Called once when the program is done with the provider."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
