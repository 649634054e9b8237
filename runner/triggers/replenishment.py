"""`replenishment`: a product bought with a consumption cycle is about to run out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import ColumnCollection, ColumnElement, Select, and_, case, exists, literal, or_, select
from sqlalchemy.orm import aliased

from ..asof import Instant, not_cancelled_by
from ..durations import Duration
from ..models import Order, OrderLine
from ..sql import as_text, plus_seconds
from .base import Trigger, TriggerParams, Window, occurrence_select, relative


class ReplenishmentParams(TriggerParams):
    cycles: dict[str, Duration] = Field(min_length=1)
    lead: Duration = dt.timedelta(0)
    max_quantity: int = Field(default=6, ge=1)
    recommend_bought: bool = True  # a reminder to buy again may well suggest the customer's other staples

    @field_validator("cycles")
    @classmethod
    def _positive(cls, cycles: dict[str, dt.timedelta]) -> dict[str, dt.timedelta]:
        for pattern, cycle in cycles.items():
            if cycle <= dt.timedelta(0):
                raise ValueError(f"the cycle of {pattern!r} must be longer than 0")
        return cycles


def like_pattern(sku_glob: str) -> str:
    """`COFFEE-*` -> `COFFEE-%`, escaping LIKE's own wildcards."""
    escaped = sku_glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


class ReplenishmentTrigger(Trigger):
    """One occurrence per matching order line, due at placed_at + cycle x quantity - lead.

    The first pattern that matches a SKU gives its cycle; quantity scaling stops at
    `max_quantity`. The evaluation searches only the slices of placed_at that can fall due in
    the window (`placed_slices`), one query per slice. A later
    order of the same SKU by the same customer (not cancelled, placed by `now`) cancels it.
    """

    type_name = "replenishment"
    about = "order_line"
    Params = ReplenishmentParams
    params: ReplenishmentParams

    def occurrences(self, window: Window) -> list[Select[Any]]:
        reordered = _reordered(OrderLine.customer_id, OrderLine.sku, OrderLine.placed_at, window.now)
        return [select_.where(Order.cancelled_at.is_(None), ~reordered) for select_ in self._selects(window)]

    def candidates(self, window: Window) -> list[Select[Any]]:
        return [select_.add_columns(Order.cancelled_at, OrderLine.sku, OrderLine.placed_at.label("line_placed_at"))
                for select_ in self._selects(window)]

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        reordered = _reordered(occ.customer_id, occ.sku, occ.line_placed_at, at, as_of=True)
        # a lead longer than the cycle makes the line due before it was bought
        return and_(occ.line_placed_at <= at, not_cancelled_by(occ.cancelled_at, at), ~reordered)

    def _selects(self, window: Window) -> list[Select[Any]]:
        """One select per slice of placed_at that can fall due in the window: each a range search of
        the placed_at index (in one query with the slices OR-ed, SQLite scans the table instead)."""
        p = self.params
        matches = [(OrderLine.sku.like(like_pattern(glob), escape="\\"), int(cycle.total_seconds()))
                   for glob, cycle in p.cycles.items()]
        cycle = case(*[(cond, literal(seconds)) for cond, seconds in matches])
        quantity = case((OrderLine.quantity > p.max_quantity, p.max_quantity),
                        (OrderLine.quantity < 1, 1), else_=OrderLine.quantity)
        lead = int(p.lead.total_seconds())
        due_at = plus_seconds(OrderLine.placed_at, cycle * quantity - lead)
        return [
            occurrence_select(customer_id=OrderLine.customer_id,
                              occurrence_key=literal("line:") + as_text(OrderLine.id), due_at=due_at,
                              order_id=OrderLine.order_id, order_line_id=OrderLine.id, detail=OrderLine.sku)
            .join(Order, Order.id == OrderLine.order_id)
            .where(
                OrderLine.placed_at > low,
                OrderLine.placed_at <= high,
                or_(*[cond for cond, _ in matches]),
                and_(due_at > window.start, due_at <= window.now),
            )
            for low, high in self.placed_slices(window)
        ]

    def placed_slices(self, window: Window) -> list[tuple[dt.datetime, dt.datetime]]:
        """The ranges (low, high] of placed_at whose lines can fall due in the window: one per cycle and
        quantity, as wide as the window, overlapping ones merged. The evaluation reads the lines that
        can be due, not the whole span of the longest cycle: a window of an hour reads an hour of
        lines per slice, and an empty window (nothing new since the last tick) reads nothing."""
        p = self.params
        spans = sorted({cycle * quantity - p.lead for cycle in p.cycles.values()
                        for quantity in range(1, p.max_quantity + 1)}, reverse=True)
        slices: list[tuple[dt.datetime, dt.datetime]] = []
        for span in spans:  # from the oldest slice to the newest
            low, high = window.start - span, window.now - span
            if low >= high:
                continue
            if slices and low <= slices[-1][1]:
                slices[-1] = (slices[-1][0], max(high, slices[-1][1]))
            else:
                slices.append((low, high))
        return slices

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        when = relative(row["due_at"] + self.params.lead, now)
        return f"{row['detail']} {'should have run out' if when.endswith(' ago') else 'should run out'} {when}"


def _reordered(customer_id: Any, sku: Any, placed_at: Any, at: Instant, *, as_of: bool = False) -> ColumnElement[bool]:
    """The customer ordered the same SKU again after `placed_at` and by `at` (an index probe); the
    reorder counts unless cancelled: by `at` when `as_of`, ever otherwise (the store holds nothing later)."""
    later, later_order = aliased(OrderLine), aliased(Order)
    kept = not_cancelled_by(later_order.cancelled_at, at) if as_of else later_order.cancelled_at.is_(None)
    return exists(
        select(later.id)
        .join(later_order, later_order.id == later.order_id)
        .where(later.customer_id == customer_id, later.sku == sku, later.placed_at > placed_at,
               later.placed_at <= at, kept)
    )
