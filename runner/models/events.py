"""What the shop hears back: provider events, webhook nonces, NPS answers."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class EventType(StrEnum):
    """What a provider reported about a message, in the runner's words."""

    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"  # hard: the address does not work
    SOFT_BOUNCED = "soft_bounced"  # temporary: full mailbox, greylisting, a block
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"


class Event(SQLModel, table=True):
    """One provider event, stored once: (provider, provider_event_id) is unique, so a replay changes nothing."""

    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id", name="uq_event_provider_event"),
        Index("ix_event_send_type", "send_id", "type"),
        Index("ix_event_customer_type_at", "customer_id", "type", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str
    provider_event_id: str
    type: str
    send_id: int | None = Field(default=None, foreign_key="send.id")
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    email: str
    occurred_at: dt.datetime = Field(sa_type=DateTime)
    received_at: dt.datetime = Field(sa_type=DateTime)
    detail: str | None = None  # JSON: the provider's own event name, bounce reason, clicked URL, ...


class WebhookNonce(SQLModel, table=True):
    """Signed values a provider uses once (Mailgun's tokens), kept while a replay could still pass the
    timestamp check, so a captured request cannot be posted again with another event."""

    __tablename__ = "webhook_nonce"
    __table_args__ = (Index("ix_webhook_nonce_seen", "seen_at"),)

    provider: str = Field(primary_key=True)
    nonce: str = Field(primary_key=True)
    seen_at: dt.datetime = Field(sa_type=DateTime)


class NpsResponse(SQLModel, table=True):
    """A customer's answer to the Net Promoter Score question of one email: one row per send.

    A later click on another score of the same email changes `score` and `changed_at`; `answered_at`
    keeps the first answer's time. Audience filters read a customer's latest score through the
    (customer_id, changed_at) index; the report groups by the answered_at index.
    """

    __tablename__ = "nps_response"
    __table_args__ = (
        Index("ix_nps_response_customer", "customer_id", "changed_at"),
        Index("ix_nps_response_answered", "answered_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    send_id: int = Field(foreign_key="send.id", unique=True)
    customer_id: int = Field(foreign_key="customer.id")
    campaign_id: str
    score: int  # 0 to 10
    answered_at: dt.datetime = Field(sa_type=DateTime)
    changed_at: dt.datetime = Field(sa_type=DateTime)
