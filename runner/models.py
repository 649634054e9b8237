"""The store's tables. Timestamps are naive UTC (plain DateTime columns); money is in minor units (cents).

Customers carry order aggregates (order_count, total_spent_cents, first/last order) that
imports keep current, so audience filters and the win-back trigger read one indexed row
instead of aggregating orders on every tick. Order lines repeat their order's customer and
placed_at for the same reason: the replenishment trigger's reorder check is one index probe.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

from sqlalchemy import Column, DateTime, Index, UniqueConstraint, text
from sqlalchemy import String as SAString
from sqlmodel import Field, SQLModel


def birthday_key(birthday: dt.date | None) -> str | None:
    """The month-day key ("MM-DD") the birthday trigger matches on."""
    return birthday.strftime("%m-%d") if birthday else None


def normalise_email(email: str) -> str:
    return email.strip().lower()


_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_address(email: str) -> bool:
    """Whether a normalised text has the shape of an email address: one @, a dotted domain, no spaces."""
    return _ADDRESS.match(email) is not None


class Customer(SQLModel, table=True):
    __table_args__ = (
        Index("ix_customer_birthday", "birthday_md", "time_zone"),
        Index("ix_customer_first_order", "time_zone", "first_order_at"),
        Index("ix_customer_created", "time_zone", "created_at"),
        Index("ix_customer_last_order", "last_order_at"),
        Index("ix_customer_time_zone", "time_zone"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str | None = Field(default=None, unique=True)
    email: str = Field(unique=True)
    first_name: str = ""
    last_name: str = ""
    birthday: dt.date | None = None
    birthday_md: str | None = Field(default=None, sa_column=Column(SAString(5)))
    time_zone: str | None = None
    locale: str | None = None  # Babel's spelling (fr_CA); None: the shop's (LIFECYCLE_SHOP_LOCALE)
    accepts_marketing: bool = False
    consent_at: dt.datetime | None = Field(default=None, sa_type=DateTime)
    created_at: dt.datetime = Field(sa_type=DateTime)
    order_count: int = 0
    total_spent_cents: int = 0
    first_order_at: dt.datetime | None = Field(default=None, sa_type=DateTime)
    last_order_at: dt.datetime | None = Field(default=None, sa_type=DateTime)


class CustomerTag(SQLModel, table=True):
    __tablename__ = "customer_tag"
    __table_args__ = (Index("ix_customer_tag_tag", "tag", "customer_id"),)

    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    tag: str = Field(primary_key=True)


class Product(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(unique=True)
    name: str = ""
    url: str | None = None
    image_url: str | None = None
    price_cents: int | None = None
    updated_at: dt.datetime | None = Field(default=None, sa_type=DateTime)


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_placed", "customer_id", "placed_at"),
        Index("ix_orders_placed", "placed_at"),
        Index("ix_orders_delivered", "delivered_at"),
        Index("ix_orders_name", "name"),  # delivery times name orders as the shop knows them
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True)
    name: str = ""
    customer_id: int = Field(foreign_key="customer.id")
    placed_at: dt.datetime = Field(sa_type=DateTime)
    delivered_at: dt.datetime | None = Field(default=None, sa_type=DateTime)
    cancelled_at: dt.datetime | None = Field(default=None, sa_type=DateTime)
    subtotal_cents: int = 0
    total_cents: int = 0
    currency: str = "USD"
    discount_code: str | None = None


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_line"
    __table_args__ = (
        Index("ix_order_line_order", "order_id"),
        Index("ix_order_line_placed", "placed_at"),
        Index("ix_order_line_reorder", "customer_id", "sku", "placed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id")
    customer_id: int = Field(foreign_key="customer.id")
    placed_at: dt.datetime = Field(sa_type=DateTime)
    sku: str
    name: str = ""
    quantity: int = 1
    unit_price_cents: int = 0


class ReorderForecast(SQLModel, table=True):
    """When a customer's next order is expected, as it stood when this order was placed: one row per
    order that was at least the customer's second (runner/importers/aggregates.py keeps it current).

    `orders` counts the customer's orders placed by then and not cancelled by then, this one
    included; `interval_seconds` is their mean interval, (this order - first order) / (orders - 1);
    `expected_at` is this order's instant plus that interval. Fixed at the order's instant, it reads
    the same live, at a past instant and in a simulation; the `predicted_reorder` trigger searches
    `expected_at` by range.
    """

    __tablename__ = "reorder_forecast"
    __table_args__ = (
        Index("ix_reorder_forecast_expected", "expected_at"),
        Index("ix_reorder_forecast_customer", "customer_id"),
    )

    order_id: int = Field(foreign_key="orders.id", primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    orders: int
    interval_seconds: int
    expected_at: dt.datetime = Field(sa_type=DateTime)


class Checkout(SQLModel, table=True):
    """A checkout the customer left unfinished (Shopify's abandoned checkouts export), with its cart.

    `abandoned_at` is when it was last touched (its update time, else its creation): the
    abandoned-checkout trigger counts its delay from there, through the index on it.
    """

    __table_args__ = (Index("ix_checkout_abandoned", "abandoned_at"),
                      Index("ix_checkout_customer", "customer_id", "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True)
    name: str = ""
    customer_id: int = Field(foreign_key="customer.id")
    created_at: dt.datetime = Field(sa_type=DateTime)
    abandoned_at: dt.datetime = Field(sa_type=DateTime)
    completed_at: dt.datetime | None = Field(default=None, sa_type=DateTime)
    recovery_url: str | None = None
    total_cents: int = 0
    currency: str = "USD"


class CheckoutLine(SQLModel, table=True):
    __tablename__ = "checkout_line"
    __table_args__ = (Index("ix_checkout_line_checkout", "checkout_id"),)

    id: int | None = Field(default=None, primary_key=True)
    checkout_id: int = Field(foreign_key="checkout.id")
    sku: str
    name: str = ""
    quantity: int = 1
    unit_price_cents: int = 0


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


class SegmentThreshold(SQLModel, table=True):
    """A percentile segment's threshold as one refresh found it (runner/thresholds.py): the `vip` segment's
    least spend, in minor units, at `percentile`, from the orders live at `computed_at`. Rows are kept, one
    per refresh, so that an order is compared with the threshold in effect when it was placed."""

    __tablename__ = "segment_threshold"

    segment: str = Field(primary_key=True)
    percentile: float = Field(primary_key=True)
    computed_at: dt.datetime = Field(sa_type=DateTime, primary_key=True)
    value: int


class ProductAffinity(SQLModel, table=True):
    """How often two products were bought in one order recently; feeds "often bought with"."""

    __tablename__ = "product_affinity"

    sku: str = Field(primary_key=True)
    related_sku: str = Field(primary_key=True)
    orders: int
