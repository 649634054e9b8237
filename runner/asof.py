"""The store as it stood at an instant: which orders were live then, and the customer aggregates they give.

Imports keep order aggregates on each customer (count, total spent, first and last order) and live
evaluation reads them: one indexed row instead of aggregating orders on every tick. They describe the
store as it is, so at an instant before the store's latest order they would answer with orders not yet
placed. `holds_orders_after` tells the two cases apart with one probe of the placed_at index; where it
says so, triggers and audience filters use these expressions instead, which derive the same figures
from the orders live at the instant through the (customer_id, placed_at) index.

`at` is either a datetime (one instant for the whole query) or an SQL expression of whole seconds
(an instant per row, as the simulation of a period uses).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from .models import Customer, Order
from .sql import epoch_seconds, stamp_from_epoch

Instant = dt.datetime | ColumnElement[Any]


def holds_orders_after(connection: Connection | Session, at: dt.datetime) -> bool:
    """Whether any order was placed after `at` (naive UTC): one probe of the placed_at index."""
    latest = connection.execute(select(func.max(Order.placed_at))).scalar()
    return latest is not None and latest > at


def not_cancelled_by(cancelled_at: Any, at: Instant) -> ColumnElement[bool]:
    """Not cancelled as of `at`: a cancellation after it has not happened yet."""
    return or_(cancelled_at.is_(None), cancelled_at > at)


def live_at(order: Any, at: Instant) -> ColumnElement[bool]:
    """`order` (the Order entity or an alias of it) was placed by `at` and not cancelled by then."""
    return and_(order.placed_at <= at, not_cancelled_by(order.cancelled_at, at))


def shifted(at: Instant, delta: dt.timedelta) -> Instant:
    """`at + delta`, computed in Python for a datetime and in SQL for an expression."""
    if isinstance(at, dt.datetime):
        return at + delta
    return stamp_from_epoch(epoch_seconds(at) + int(delta.total_seconds()))


def customer_aggregate_at(name: str, at: Instant) -> ColumnElement[Any]:
    """One of the stored aggregates (order_count, total_spent, first_order_at, last_order_at) of the
    customer in the enclosing query, from their orders live at `at`: a correlated index range scan."""
    order = aliased(Order)
    value = {
        "order_count": func.count(order.id),
        "total_spent": func.coalesce(func.sum(order.total_cents), 0),
        "first_order_at": func.min(order.placed_at),
        "last_order_at": func.max(order.placed_at),
    }[name]
    return (select(value).where(order.customer_id == Customer.id, live_at(order, at))
            .correlate_except(order).scalar_subquery())


AGGREGATES = ("order_count", "total_spent", "first_order_at", "last_order_at")
