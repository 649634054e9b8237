"""The shop's own records: customers, products, orders and their lines, abandoned checkouts.

Customers carry order aggregates (order_count, total_spent_cents, first/last order) that
imports keep current, so audience filters and the win-back trigger read one indexed row
instead of aggregating orders on every tick. Order lines repeat their order's customer and
placed_at for the same reason: the replenishment trigger's reorder check is one index probe.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import Column, DateTime, Index
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
