"""Customer segments: who is a first-time buyer, a repeat buyer, a VIP, a discount shopper, lapsed...

One definition serves `lifecycle customers` (runner/reports/customers.py, which counts each segment)
and `segment:` in a campaign's audience (runner/audience.py, which keeps the customers in it). Each
segment is a condition over a customer's order figures as of an instant (orders, revenue, orders with
a discount code, last order), from the orders placed by then and not cancelled by then. The
percentile segments (VIP, high average order value) compare with a threshold that one ranked scan of
every buying customer's figures finds, inside the same query: never a query per customer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import aliased

from ..asof import Instant, live_at, shifted
from ..durations import format_duration
from ..models import Customer, Order
from ..money import Money


@dataclass(frozen=True)
class Figures:
    """SQL expressions of one customer's order figures: columns of a table, or aggregates over orders."""

    orders: Any
    revenue: Any  # minor units
    discounted: Any  # orders with a discount code
    last_order_at: Any


def order_figures(order: Any) -> Figures:
    """A customer's figures as aggregates over `order` (the Order entity or an alias), grouped by customer."""
    discounted = and_(order.discount_code.is_not(None), order.discount_code != "")
    return Figures(orders=func.count(order.id), revenue=func.coalesce(func.sum(order.total_cents), 0),
                   discounted=func.coalesce(func.sum(case((discounted, literal(1)), else_=0)), 0),
                   last_order_at=func.max(order.placed_at))


def buying_customers(at: Instant) -> FromClause:
    """One row per customer with an order live at `at`: customer_id and the columns of their Figures."""
    order = aliased(Order)
    figures = order_figures(order)
    return (select(order.customer_id, *(getattr(figures, name).label(name) for name in Figures.__dataclass_fields__))
            .where(live_at(order, at)).group_by(order.customer_id)
            .correlate_except(order)  # an instant per row: `at` belongs to the enclosing query
            .subquery("buying"))


def percentile_floor(value: Any, population: FromClause, percentile: float) -> Any:
    """The smallest `value` among the top (100 - percentile)% of `population`'s rows (the ceiling of that
    share, so at least one row once there is any), as a scalar subquery; NULL when that is nobody, which
    no comparison passes."""
    ranked = select(value.label("value"), func.row_number().over(order_by=value.desc()).label("place"),
                    func.count().over().label("size")).select_from(population).correlate_except(population) \
        .subquery("ranked")
    # place <= ceil(size * share) for a whole place, written without a ceiling function (SQLite has none)
    within = (ranked.c.place - 1) * 100 < ranked.c.size * (100 - percentile)
    return select(func.min(ranked.c.value)).where(within).scalar_subquery()


def average_order(figures: Any) -> Any:
    return figures.revenue * 1.0 / figures.orders


@dataclass(frozen=True)
class SegmentRules:
    """The declared thresholds (settings LIFECYCLE_SEGMENT_*; docs/reports.md)."""

    vip_percentile: float = 90.0  # VIPs are the customers whose spend is at or above this percentile
    big_spender_cents: int = 50000  # total spent, in the shop currency's minor units
    high_aov_percentile: float = 75.0
    discount_share: float = 0.5  # share of orders with a discount code that makes a discount shopper
    lapsed_after: dt.timedelta = dt.timedelta(days=180)

    def conditions(self, c: Figures, at: Instant, population: FromClause) -> dict[str, ColumnElement[bool]]:
        """Each segment's condition over a buying customer's figures `c` as of `at`; `population` holds
        every buying customer's figures then (the percentile thresholds are taken over it)."""
        p = population.c
        vip = percentile_floor(p.revenue, population, self.vip_percentile)
        high_aov = percentile_floor(average_order(p), population, self.high_aov_percentile)
        return {
            "first_time": c.orders == 1,
            "repeat": c.orders >= 2,
            "vip": c.revenue >= vip,
            "big_spenders": c.revenue >= self.big_spender_cents,
            "high_aov": average_order(c) >= high_aov,
            "full_price": c.discounted == 0,
            "discount_shoppers": c.discounted * 1.0 >= c.orders * self.discount_share,
            "lapsed": c.last_order_at <= shifted(at, -self.lapsed_after),
        }


def in_segments(names: list[str], rules: SegmentRules, at: Instant) -> ColumnElement[bool]:
    """The customer of the enclosing query is in any of the segments `names` at `at`: one index range scan
    of their orders, against thresholds found once for the whole query (once per instant when `at` is
    an instant per row)."""
    order = aliased(Order)
    figures = order_figures(order)
    conditions = rules.conditions(figures, at, buying_customers(at))
    return exists(
        select(literal(1)).select_from(order)
        .where(order.customer_id == Customer.id, live_at(order, at))
        .group_by(order.customer_id)
        .having(or_(*(conditions[name] for name in names)))
        .correlate_except(order)
    )


@dataclass(frozen=True)
class Segment:
    name: str
    describe: Callable[[SegmentRules, str], str]


SEGMENTS: tuple[Segment, ...] = (
    Segment("first_time", lambda r, cur: "exactly one order"),
    Segment("repeat", lambda r, cur: "two orders or more"),
    Segment("vip", lambda r, cur: f"spent at or above the {r.vip_percentile:g}th percentile"),
    Segment("big_spenders", lambda r, cur: f"spent {Money(r.big_spender_cents, cur)} or more"),
    Segment("high_aov", lambda r, cur: f"average order at or above the {r.high_aov_percentile:g}th percentile"),
    Segment("full_price", lambda r, cur: "never used a discount code"),
    Segment("discount_shoppers", lambda r, cur: f"a discount code on {r.discount_share:.0%} of orders or more"),
    Segment("lapsed", lambda r, cur: f"no order for {format_duration(r.lapsed_after)}"),
)
SEGMENT_NAMES = tuple(s.name for s in SEGMENTS)
