"""The shop's retention figures and customer segments, as of an instant, in a few set-based queries.

Every figure is computed from the orders placed by `at` (and not cancelled by then), so a report at a
past instant sees the store as it was. The per-customer aggregates are gathered once into a temporary
table; each figure is then one scan or one sorted probe of it, never a query per customer.
Definitions are in docs/reports.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    Table,
    and_,
    case,
    func,
    insert,
    literal,
    select,
)

from ..asof import live_at
from ..models import Customer, Order
from ..segments import SEGMENTS, Figures, SegmentRules, order_figures
from ..store import iso_utc

_meta = MetaData()
# One row per customer with an order by `at`; lives only as long as the report's connection.
_per_customer = Table(
    "report_customer", _meta,
    Column("customer_id", Integer, primary_key=True),
    Column("orders", Integer, nullable=False),
    Column("revenue", Integer, nullable=False),
    Column("discounted", Integer, nullable=False),
    Column("first_order_at", DateTime, nullable=False),
    Column("last_order_at", DateTime, nullable=False),
    Column("orders_this_period", Integer, nullable=False),
    Column("revenue_this_period", Integer, nullable=False),
    Column("orders_last_period", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class SegmentFigures:
    name: str
    description: str
    customers: int
    share: float | None  # of all customers with an order
    revenue_cents: int
    orders: int

    @property
    def aov_cents(self) -> float | None:
        return self.revenue_cents / self.orders if self.orders else None


@dataclass(frozen=True)
class CustomerFigures:
    """What `lifecycle customers` prints; amounts in the shop currency's minor units."""

    at: dt.datetime
    period_days: float
    currency: str
    customers: int  # with at least one order by `at`
    orders: int
    revenue_cents: int
    repeat_purchase_rate: float | None
    retention_rate: float | None  # of last period's buyers, the share who bought again this period
    period_customers: int
    period_orders: int
    period_revenue_cents: int
    average_order_value_cents: float | None  # this period
    purchase_frequency: float | None  # orders per buying customer this period
    lifespan_periods: float | None  # 1 / churn, churn = 1 - retention_rate
    segments: list[SegmentFigures] = field(default_factory=list)

    @property
    def lifetime_value_cents(self) -> float | None:
        """Average order value x purchase frequency x customer lifespan."""
        parts = (self.average_order_value_cents, self.purchase_frequency, self.lifespan_periods)
        if any(p is None for p in parts):
            return None
        return parts[0] * parts[1] * parts[2]  # type: ignore[operator]

    @property
    def lifespan_years(self) -> float | None:
        return self.lifespan_periods * self.period_days / 365.25 if self.lifespan_periods is not None else None

    @property
    def revenue_per_customer_cents(self) -> float | None:
        return self.revenue_cents / self.customers if self.customers else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = iso_utc(self.at)
        data["lifetime_value_cents"] = self.lifetime_value_cents
        data["lifespan_years"] = self.lifespan_years
        data["revenue_per_customer_cents"] = self.revenue_per_customer_cents
        for segment, figures in zip(data["segments"], self.segments, strict=True):
            segment["aov_cents"] = figures.aov_cents
        return data


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@contextmanager
def _gathered(conn: Connection, at: dt.datetime, period: dt.timedelta) -> Iterator[Table]:
    """Fill the temporary per-customer table from the orders live at `at`."""
    live = live_at(Order, at)
    this_period = Order.placed_at > at - period
    last_period = and_(Order.placed_at > at - 2 * period, Order.placed_at <= at - period)
    one = literal(1)
    figures = order_figures(Order)  # as `segment:` in a campaign's audience reckons them
    rows = (
        select(
            Order.customer_id, figures.orders, figures.revenue, figures.discounted, func.min(Order.placed_at),
            figures.last_order_at,
            func.sum(case((this_period, one), else_=0)),
            func.sum(case((this_period, Order.total_cents), else_=0)),
            func.sum(case((last_period, one), else_=0)),
        )
        .where(live)
        .group_by(Order.customer_id)
    )
    _per_customer.create(conn)
    try:
        conn.execute(insert(_per_customer).from_select([c.name for c in _per_customer.columns], rows))
        yield _per_customer
    finally:
        _per_customer.drop(conn)


def _figures(t: Table) -> Figures:
    return Figures(t.c.orders, t.c.revenue, t.c.discounted, t.c.last_order_at)


def segment_members(conn: Connection, at: dt.datetime, segment: str, *,
                    rules: SegmentRules | None = None) -> Iterator[tuple[int, str]]:
    """(customer id, email) of every customer in `segment` as of `at` (naive UTC), by id, as the report
    counts them."""
    rules = rules or SegmentRules()
    with _gathered(conn, at, dt.timedelta(days=365)) as t:
        condition = rules.conditions(_figures(t), at, t)[segment]
        query = (select(Customer.id, Customer.email).join(t, t.c.customer_id == Customer.id).where(condition)
                 .order_by(Customer.id))
        for row in conn.execute(query.execution_options(yield_per=1000)):
            yield row.id, row.email


def customer_figures(conn: Connection, at: dt.datetime, *, period: dt.timedelta = dt.timedelta(days=365),
                     rules: SegmentRules | None = None, currency: str = "USD") -> CustomerFigures:
    """The retention figures and segments as of `at` (naive UTC), over the period ending at `at`."""
    rules = rules or SegmentRules()
    with _gathered(conn, at, period) as t:
        c = t.c
        totals = conn.execute(select(
            func.count(), func.coalesce(func.sum(c.orders), 0), func.coalesce(func.sum(c.revenue), 0),
            func.sum(case((c.orders >= 2, 1), else_=0)),
            func.sum(case((c.orders_this_period > 0, 1), else_=0)),
            func.coalesce(func.sum(c.orders_this_period), 0), func.coalesce(func.sum(c.revenue_this_period), 0),
            func.sum(case((c.orders_last_period > 0, 1), else_=0)),
            func.sum(case((and_(c.orders_last_period > 0, c.orders_this_period > 0), 1), else_=0)),
        )).one()
        customers, orders, revenue, repeaters, period_customers, period_orders, period_revenue, \
            last_period_customers, retained = (int(v or 0) for v in totals)
        retention = _ratio(retained, last_period_customers)
        segments = []
        conditions = rules.conditions(_figures(t), at, t)
        for segment in SEGMENTS:
            condition = conditions[segment.name]
            size, seg_revenue, seg_orders = conn.execute(
                select(func.count(), func.coalesce(func.sum(c.revenue), 0), func.coalesce(func.sum(c.orders), 0))
                .where(condition)).one()
            segments.append(SegmentFigures(segment.name, segment.describe(rules, currency), int(size),
                                           _ratio(size, customers), int(seg_revenue), int(seg_orders)))
    return CustomerFigures(
        at=at, period_days=period.total_seconds() / 86400, currency=currency,
        customers=customers, orders=orders, revenue_cents=revenue,
        repeat_purchase_rate=_ratio(repeaters, customers), retention_rate=retention,
        period_customers=period_customers, period_orders=period_orders, period_revenue_cents=period_revenue,
        average_order_value_cents=_ratio(period_revenue, period_orders),
        purchase_frequency=_ratio(period_orders, period_customers),
        lifespan_periods=1 / (1 - retention) if retention is not None and retention < 1 else None,
        segments=segments,
    )
