"""Recomputing what the store derives from the orders table, set-based: the order aggregates stored on
each customer, and the reorder forecasts of their orders."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, ScalarSelect, Table, and_, delete, func, insert, select, true, update
from sqlalchemy.orm import Session

from ..asof import not_cancelled_by
from ..models import Customer, Order, ReorderForecast
from ..sql import epoch_seconds, stamp_from_epoch

# Ids per UPDATE statement: far below SQLite's bound-parameter limit, small enough to keep
# each statement's lock short on PostgreSQL.
ID_CHUNK = 500


def _tables() -> tuple[Table, Table]:
    return cast(Table, Customer.__table__), cast(Table, Order.__table__)


def refresh_customer_aggregates(connection_or_session: Connection | Session,
                                customer_ids: Iterable[int] | None = None) -> None:
    """Set order_count, total_spent_cents, first_order_at and last_order_at from the customers' orders,
    and rebuild their orders' reorder forecasts (`refresh_reorder_forecasts`).

    Cancelled orders (cancelled_at set) do not count. One UPDATE with correlated subqueries
    per chunk of ids (or one for every customer when `customer_ids` is None). Runs inside the
    caller's transaction; committing is the caller's business.
    """
    conn = (connection_or_session.connection() if isinstance(connection_or_session, Session)
            else connection_or_session)
    customer, orders = _tables()
    live = and_(orders.c.customer_id == customer.c.id, orders.c.cancelled_at.is_(None))

    def scalar(expression: ColumnElement[Any]) -> ScalarSelect[Any]:
        return select(expression).where(live).correlate(customer).scalar_subquery()

    statement = update(customer).values(
        order_count=scalar(func.count(orders.c.id)),
        total_spent_cents=scalar(func.coalesce(func.sum(orders.c.total_cents), 0)),
        first_order_at=scalar(func.min(orders.c.placed_at)),
        last_order_at=scalar(func.max(orders.c.placed_at)),
    )
    if customer_ids is None:
        conn.execute(statement)
        refresh_reorder_forecasts(conn)
        return
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start:start + ID_CHUNK]
        conn.execute(statement.where(customer.c.id.in_(chunk)))
        refresh_reorder_forecasts(conn, chunk)


def refresh_reorder_forecasts(conn: Connection, customer_ids: list[int] | None = None) -> None:
    """Rebuild the reorder_forecast rows of these customers' orders (every customer's when None).

    For each order, the customer's orders placed by its instant and not cancelled by then (itself
    included) give the count and the first instant: the mean interval is (order - first) / (count - 1),
    in whole seconds, and the next order is expected that long after this one. Orders that were
    not at least the customer's second then get no row. One INSERT ... SELECT whose two correlated
    aggregates are range scans of (customer_id, placed_at).
    """
    forecast, orders = cast(Table, ReorderForecast.__table__), _tables()[1]
    this, earlier = orders.alias("this_order"), orders.alias("earlier")
    mine = true() if customer_ids is None else forecast.c.customer_id.in_(customer_ids)
    conn.execute(delete(forecast).where(mine))
    counted = and_(earlier.c.customer_id == this.c.customer_id, earlier.c.placed_at <= this.c.placed_at,
                   not_cancelled_by(earlier.c.cancelled_at, this.c.placed_at))
    history = (
        select(this.c.id, this.c.customer_id, this.c.placed_at,
               select(func.count()).where(counted).scalar_subquery().label("orders"),
               select(func.min(earlier.c.placed_at)).where(counted).scalar_subquery().label("first_at"))
        .where(not_cancelled_by(this.c.cancelled_at, this.c.placed_at),
               true() if customer_ids is None else this.c.customer_id.in_(customer_ids))
        .subquery("history"))
    h = history.c
    interval = (epoch_seconds(h.placed_at) - epoch_seconds(h.first_at)) // (h.orders - 1)
    rows = select(h.id, h.customer_id, h.orders, interval, stamp_from_epoch(epoch_seconds(h.placed_at) + interval)
                  ).where(h.orders >= 2)
    conn.execute(insert(forecast).from_select(
        ["order_id", "customer_id", "orders", "interval_seconds", "expected_at"], rows))
