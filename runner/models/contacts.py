"""What a contact allows: suppressed addresses with their history, and consent changes."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import DateTime, Index
from sqlmodel import Field, SQLModel


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    MANUAL = "manual"
    FORGOTTEN = "forgotten"  # the customer's data was erased on request (runner/privacy/)


class Suppression(SQLModel, table=True):
    """Addresses never to email. `email` is the address, or for an erased customer a non-address
    text the engine's join can never match to a real address: the keyed hash of the old address
    (`hmac-sha256:<hex>`, how a re-import is recognised) or the erased customer's placeholder."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)
    reason: str
    created_at: dt.datetime = Field(sa_type=DateTime)
    detail: str | None = None
    source: str | None = None  # who added it: "cli", "import", "webhook:<provider>", ...


class SuppressionAction(StrEnum):
    ADDED = "added"
    REMOVED = "removed"


class SuppressionHistory(SQLModel, table=True):
    """Every change to the suppression list, so a removal is never silent."""

    __tablename__ = "suppression_history"
    __table_args__ = (Index("ix_suppression_history_email", "email", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str
    action: str
    reason: str
    source: str | None = None
    detail: str | None = None
    at: dt.datetime = Field(sa_type=DateTime)


class ConsentChange(SQLModel, table=True):
    """One change of a customer's marketing consent: before and after, when, and where it came from
    (`import:<file>`, `unsubscribe-link`, `webhook:<provider>`, `provider-rejection:<provider>`,
    `manual`, `forget`)."""

    __tablename__ = "consent_change"
    __table_args__ = (Index("ix_consent_change_customer", "customer_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    accepted_before: bool
    accepted_after: bool
    at: dt.datetime = Field(sa_type=DateTime)
    source: str
