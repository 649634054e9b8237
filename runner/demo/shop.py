"""A deterministic synthetic coffee shop: demo data for trying campaigns and rows for benchmarks.

`generate_shop(store, now=...)` fills an empty store with customers, orders and order lines
drawn from one `random.Random(seed)`, so the same (customers, seed, now) always gives the same
rows. It never reads the clock: every timestamp is placed relative to `now`.

The shape is meant to exercise every built-in trigger:

- many one-time buyers, some occasional buyers, and a core of regulars who reorder their
  coffee or tea every few weeks; some regulars stop, so there are lapsed customers (and a
  few whose last order is 90 days old, give or take hours, in every 250 of the first 5,000);
- orders in the last few days, none of the very recent ones delivered yet, and one customer
  in every 250 (of the first 5,000) with two orders on the same day, the second their fifth;
- in every 250 of the first 5,000, a second order that takes a customer's spending past 500,
  and first orders a year before today and before yesterday in the customer's own time zone
  (first-order anniversaries due at whatever local hour a campaign picks);
- birthdays for about 70%, with 29 February and today's and tomorrow's month-day planted
  among the first 5,000;
- time zones on both sides of UTC, some customers without consent, about 2% suppressed.

It scales to a million customers: customers are generated and inserted in chunks with
SQLAlchemy Core executemany, primary keys are assigned here, and nothing proportional to the
whole store is kept in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, literal, select

from ..errors import StoreError
from ..importers.aggregates import refresh_reorder_forecasts
from ..models import Customer, CustomerTag, Order, OrderLine, Product, Suppression
from ..store import Store, sqlite_pragmas, utc_naive
from .catalogue import PRODUCTS
from .generator import ShopGenerator, table

CHUNK_CUSTOMERS = 5000
VIP_SHARE = 0.02  # the top 2% of spenders are tagged "vip"


@dataclass(frozen=True)
class ShopSummary:
    """How many rows `generate_shop` wrote."""

    customers: int
    orders: int
    lines: int
    products: int
    suppressed: int


def generate_shop(store: Store, *, customers: int = 2000, now: dt.datetime, seed: int = 7,
                  progress: Callable[[int], None] | None = None,
                  chunk_size: int = CHUNK_CUSTOMERS) -> ShopSummary:
    """Fill an initialised, empty store with a synthetic coffee shop whose history ends at `now`.

    The same (customers, seed, now) gives the same rows every time, whatever the chunk size;
    `now` is aware UTC or naive UTC. Customers are generated and committed `chunk_size` at a
    time, and `progress(customers_done)` is called after each chunk.

    The loaded tables' secondary (non-unique) indexes are dropped for the load and built again
    at the end, also when the load fails: building an index once is faster than keeping it
    current through millions of inserts.
    """
    if customers < 0 or chunk_size < 1:
        raise ValueError("customers must be 0 or more and chunk_size 1 or more")
    generator = ShopGenerator(customers=customers, now=utc_naive(now), seed=seed)
    indexes = sorted((index for model in (Customer, CustomerTag, Order, OrderLine)
                      for index in table(model).indexes if not index.unique), key=lambda index: str(index.name))
    with store.engine.connect() as conn:
        _refuse_non_empty(conn, store)
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # a bulk load into a fresh file: durability per chunk is not needed
            sqlite_pragmas(conn, synchronous="OFF", cache_size=-131072)
        try:
            for index in indexes:
                index.drop(conn, checkfirst=True)
            conn.commit()
            conn.execute(insert(table(Product)), generator.product_rows())
            conn.commit()
            for chunk in generator.chunks(customers, chunk_size):
                chunk.insert(conn)
                conn.commit()
                if progress is not None:
                    progress(chunk.last_customer_id)
            conn.execute(_vip_tags(customers))
            conn.commit()
        finally:
            conn.rollback()
            for index in indexes:
                index.create(conn, checkfirst=True)
            conn.commit()
            if sqlite:  # the connection goes back to the pool: restore the store's settings
                sqlite_pragmas(conn, synchronous="NORMAL", cache_size=-2000)
        refresh_reorder_forecasts(conn)  # once the (customer_id, placed_at) index is back
        conn.commit()
    return ShopSummary(customers=customers, orders=generator.orders_written, lines=generator.lines_written,
                       products=len(PRODUCTS), suppressed=generator.suppressed_written)


def holds_shop_data(conn: Connection) -> bool:
    """Whether any customers, orders, products or suppressions are in the store."""
    return any(conn.execute(select(func.count()).select_from(table(model))).scalar_one()
               for model in (Customer, Order, Product, Suppression))


def _refuse_non_empty(conn: Connection, store: Store) -> None:
    if holds_shop_data(conn):
        raise StoreError(f"the store at {store.display_url} already holds data",
                         "generate the demo shop into a new, empty database")


def _vip_tags(customers: int) -> Any:
    """Tag the top spenders "vip" in SQL, so no spend ranking is kept in Python."""
    limit = max(1, round(customers * VIP_SHARE))
    customer = table(Customer)
    top = (select(customer.c.id, literal("vip"))
           .where(customer.c.total_spent_cents > 0)
           .order_by(customer.c.total_spent_cents.desc(), customer.c.id)
           .limit(limit))
    return insert(table(CustomerTag)).from_select(["customer_id", "tag"], top)
