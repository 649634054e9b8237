"""Tables a nightly job rebuilds from the orders: reorder forecasts, segment thresholds, product affinity."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Index
from sqlmodel import Field, SQLModel


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


class SegmentThreshold(SQLModel, table=True):
    """A percentile segment's threshold as one refresh found it (runner/segments/thresholds.py): the `vip` segment's
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
