"""Recomputing the order aggregates stored on each customer from the orders table, set-based."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, ScalarSelect, Table, and_, func, select, update
from sqlalchemy.orm import Session

from ..models import Customer, Order

# Ids per UPDATE statement: far below SQLite's bound-parameter limit, small enough to keep
# each statement's lock short on PostgreSQL.
ID_CHUNK = 500


def _tables() -> tuple[Table, Table]:
    return cast(Table, Customer.__table__), cast(Table, Order.__table__)


def refresh_customer_aggregates(connection_or_session: Connection | Session,
                                customer_ids: Iterable[int] | None = None) -> None:
    """Set order_count, total_spent_cents, first_order_at and last_order_at from the customers' orders.

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
        return
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), ID_CHUNK):
        conn.execute(statement.where(customer.c.id.in_(ids[start:start + ID_CHUNK])))
