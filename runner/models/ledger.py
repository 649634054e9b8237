"""The ledger of sends, with the skip reasons, the coupon codes handed out, and the campaigns' own state."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import DateTime, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class SendStatus(StrEnum):
    PLANNED = "planned"  # decided, not yet handed to the provider
    SENDING = "sending"  # handed to the provider; outcome not yet recorded (lease in lease_until)
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class SkipReason(StrEnum):
    """Why a send was skipped; on a row still planned or sent, why it was held back past its due instant."""

    NO_CONSENT = "no_consent"
    SUPPRESSED = "suppressed"
    EXPIRED = "expired"
    # sending policies (runner/policies/)
    SUNSET = "sunset"  # no order or click for the policy's period
    CAPPED = "capped"  # the frequency cap is reached
    SMART_SENDING = "smart_sending"  # other marketing mail too close
    PRIORITY = "priority"  # a higher-priority campaign of the same evaluation took the slot
    QUIET_HOURS = "quiet_hours"  # outside the send window on the customer's clock
    NO_COUPON = "no_coupon"  # the campaign's coupon pool had no code left (runner/coupons/)
    # journeys (runner/journeys/): the exit that stopped this step and every later one
    EXIT_ORDERED = "exit_ordered"  # the customer ordered since the journey began
    EXIT_CLICKED = "exit_clicked"  # the customer clicked the previous step's email


#: the skip reasons that end a journey: no later step follows a step skipped for one of them
JOURNEY_EXITS = (SkipReason.EXIT_ORDERED, SkipReason.EXIT_CLICKED)


def blocked_reason(suppressed: bool, accepts_marketing: bool, marketing: bool) -> SkipReason | None:
    """Why an address may not get a campaign's email now, or None when it may."""
    if suppressed:
        return SkipReason.SUPPRESSED
    if marketing and not accepts_marketing:
        return SkipReason.NO_CONSENT
    return None


class Send(SQLModel, table=True):
    """The ledger: one row per (campaign, occurrence); its uniqueness makes a second send impossible."""

    __table_args__ = (
        UniqueConstraint("campaign_id", "occurrence_key", name="uq_send_occurrence"),
        Index("ix_send_queue", "campaign_id", "status", "next_attempt_at"),
        Index("ix_send_customer", "customer_id"),
        Index("ix_send_provider_message", "provider_message_id"),  # webhook events without our ids
        # policies: a customer's recent mail, read from the index alone
        Index("ix_send_customer_mail", "customer_id", "status", "sent_at", "campaign_id"),
        # journeys: a step's rows settled since an instant, from which the next step is found
        Index("ix_send_journey_step", "campaign_id", "step", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str
    occurrence_key: str
    customer_id: int = Field(foreign_key="customer.id")
    order_id: int | None = None
    order_line_id: int | None = None
    due_at: dt.datetime = Field(sa_type=DateTime)
    reason: str = ""
    variant: str | None = None  # the campaign's message variant this send renders (A/B tests)
    step: int | None = None  # a journey's step (1, 2, ...); None for a campaign of one email
    status: str = SendStatus.PLANNED
    skip_reason: str | None = None
    attempts: int = 0
    next_attempt_at: dt.datetime | None = Field(default=None, sa_type=DateTime)
    lease_until: dt.datetime | None = Field(default=None, sa_type=DateTime)
    claim_token: str | None = Field(default=None, index=True)
    provider: str | None = None
    provider_message_id: str | None = None
    last_error: str | None = None
    created_at: dt.datetime = Field(sa_type=DateTime)
    updated_at: dt.datetime = Field(sa_type=DateTime)
    sent_at: dt.datetime | None = Field(default=None, sa_type=DateTime)


class CouponCode(SQLModel, table=True):
    """A code of an imported pool (runner/coupons/); `send_id` is the send it was handed out to, once.

    A code is unique in the store, whatever its pool: two pools can never hand out the same code.
    A send holds at most one code, so a send claimed again after a crash keeps the code it got.
    """

    __tablename__ = "coupon_code"
    __table_args__ = (
        UniqueConstraint("code", name="uq_coupon_code_code"),
        UniqueConstraint("send_id", name="uq_coupon_code_send"),
        # the next free codes of a pool, in import order, read from the index alone
        Index("ix_coupon_code_free", "pool", "id", sqlite_where=text("send_id IS NULL"),
              postgresql_where=text("send_id IS NULL")),
        Index("ix_coupon_code_pool_assigned", "pool", "assigned_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pool: str
    code: str
    imported_at: dt.datetime = Field(sa_type=DateTime)
    send_id: int | None = Field(default=None, foreign_key="send.id")
    assigned_at: dt.datetime | None = Field(default=None, sa_type=DateTime)


class CampaignState(SQLModel, table=True):
    """Per campaign: when it was first seen, when an evaluation last completed, and who is evaluating it now.

    first_seen_at is committed before the first evaluation plans anything, so a first tick that dies
    early still fixes how far back the campaign's window reaches. The evaluation lease (token and
    expiry) lets one tick or worker evaluate a campaign at a time; the others skip its evaluation.
    """

    __tablename__ = "campaign_state"

    campaign_id: str = Field(primary_key=True)
    first_seen_at: dt.datetime = Field(sa_type=DateTime)
    last_evaluated_at: dt.datetime | None = Field(default=None, sa_type=DateTime)
    evaluation_lease_token: str | None = None
    evaluation_lease_until: dt.datetime | None = Field(default=None, sa_type=DateTime)


class Meta(SQLModel, table=True):
    """Key/value facts about the store itself: the generated signing key, the affinity refresh, the demo mark.

    `schema_version` stays for releases before migrations, which check it; the schema's revision
    is Alembic's alembic_version table."""

    key: str = Field(primary_key=True)
    value: str
