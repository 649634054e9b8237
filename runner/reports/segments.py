"""Customer segments: who is a first-time buyer, a repeat buyer, a VIP, a discount shopper, lapsed...

Each segment is a condition over one row of per-customer aggregates (orders, revenue, orders with a
discount code, last order). Percentile segments (VIP, high average order value) first find their
threshold with one sorted probe, so every segment stays one set-based condition.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, false, func, select

from ..durations import format_duration
from ..money import Money


@dataclass(frozen=True)
class SegmentRules:
    """The declared thresholds (settings LIFECYCLE_SEGMENT_*; docs/reports.md)."""

    vip_percentile: float = 90.0  # VIPs are the customers whose spend is at or above this percentile
    big_spender_cents: int = 50000  # total spent, in the shop currency's minor units
    high_aov_percentile: float = 75.0
    discount_share: float = 0.5  # share of orders with a discount code that makes a discount shopper
    lapsed_after: dt.timedelta = dt.timedelta(days=180)

    def conditions(self, conn: Connection, table: Table, at: dt.datetime) -> dict[str, ColumnElement[bool]]:
        """Each segment's condition over `table`'s columns, thresholds resolved as of its rows."""
        c = table.c
        aov = c.revenue * 1.0 / c.orders
        vip = _percentile_floor(conn, table, c.revenue, self.vip_percentile)
        high_aov = _percentile_floor(conn, table, aov, self.high_aov_percentile)
        return {
            "first_time": c.orders == 1,
            "repeat": c.orders >= 2,
            "vip": false() if vip is None else c.revenue >= vip,
            "big_spenders": c.revenue >= self.big_spender_cents,
            "high_aov": false() if high_aov is None else aov >= high_aov,
            "full_price": c.discounted == 0,
            "discount_shoppers": c.discounted * 1.0 >= c.orders * self.discount_share,
            "lapsed": c.last_order_at <= at - self.lapsed_after,
        }


def _percentile_floor(conn: Connection, table: Table, value: Any, percentile: float) -> Any:
    """The smallest value among the top (100 - percentile)% of rows, or None when that is nobody."""
    total = conn.execute(select(func.count()).select_from(table)).scalar_one()
    top = math.ceil(total * (100 - percentile) / 100)
    if top < 1:
        return None
    return conn.execute(select(value).select_from(table).order_by(value.desc()).offset(top - 1).limit(1)).scalar()


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
