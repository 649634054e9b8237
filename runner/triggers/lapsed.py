"""`lapsed`: a customer's last order is N days old (win-back). One occurrence per lapse."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import ColumnCollection, ColumnElement, Select, and_, exists, literal, or_, select
from sqlalchemy.orm import aliased

from ..asof import Instant, live_at, not_cancelled_by
from ..durations import Duration, format_duration
from ..models import Customer, Order
from ..sql import as_text, stamp_key
from .base import Trigger, TriggerParams, Window, delayed, occurrence_select, relative


class LapsedParams(TriggerParams):
    after: Duration


class LapsedTrigger(Trigger):
    """Keyed by customer and the instant of the last order: an order before sending cancels the
    occurrence (the last order moved), and a later lapse is a new occurrence."""

    type_name = "lapsed"
    Params = LapsedParams
    params: LapsedParams

    def occurrences(self, window: Window) -> list[Select[Any]]:
        due_at, in_window = delayed(Customer.last_order_at, self.params.after, window)
        return [self._select(Customer.id, Customer.last_order_at, due_at).where(in_window)]

    def candidates(self, window: Window) -> list[Select[Any]]:
        """A lapse per order placed `after` before the window: due if it is still the last order then."""
        due_at, in_window = delayed(Order.placed_at, self.params.after, window)
        return [self._select(Order.customer_id, Order.placed_at, due_at)
                .add_columns(Order.id.label("last_order_id"), Order.placed_at.label("last_order_at"),
                             Order.cancelled_at.label("last_order_cancelled_at"))
                .where(in_window)]

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        """The order is live at `at` and no other live order of the customer is newer (of two placed
        at the same instant, the one with the higher id counts as the newer)."""
        return and_(not_cancelled_by(occ.last_order_cancelled_at, at),
                    ~newer_live_order(aliased(Order), occ.customer_id, occ.last_order_at, occ.last_order_id, at))

    @staticmethod
    def _select(customer_id: Any, last_order_at: Any, due_at: Any) -> Select[Any]:
        last_order = stamp_key(last_order_at)
        return occurrence_select(customer_id=customer_id, due_at=due_at, detail=last_order,
                                 occurrence_key=literal("lapse:") + as_text(customer_id) + literal(":") + last_order)

    @functools.cached_property
    def _lapses_after(self) -> str:  # the same for every occurrence: written once, not per row
        return f"(lapses after {format_duration(self.params.after)})"

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        last = row["due_at"] - self.params.after
        return f"no order since {last:%Y-%m-%d}, {relative(last, now)} {self._lapses_after}"


def newer_live_order(newer: Any, customer_id: Any, placed_at: Any, order_id: Any, at: Instant) -> ColumnElement[bool]:
    """The customer has a live order at `at` newer than the given one (of two placed at the same instant,
    the one with the higher id counts as the newer): one probe of (customer_id, placed_at). `newer` is
    an alias of Order."""
    return exists(select(newer.id).where(
        newer.customer_id == customer_id, newer.placed_at >= placed_at, live_at(newer, at), newer.id != order_id,
        or_(newer.placed_at > placed_at, newer.id > order_id)))
