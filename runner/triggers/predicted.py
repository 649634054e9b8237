"""`predicted_reorder`: a customer's next order is expected soon, from the rhythm of their own orders.

The estimate is the mean interval between the customer's orders, (last - first) / (orders - 1), kept
per order in the reorder_forecast table when orders are imported (runner/importers/aggregates.py):
fixed at the instant of the order it follows, so the due instant never moves and the trigger reads
the same live, at a past instant and simulated. Finding the occurrences due in a window is one
range scan of the forecast's `expected_at` index, whatever the number of customers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator
from sqlalchemy import ColumnCollection, ColumnElement, Select, and_, literal
from sqlalchemy.orm import aliased

from ..asof import Instant, not_cancelled_by
from ..durations import Duration
from ..models import Order, ReorderForecast
from ..sql import as_text, plus_seconds, stamp_key
from .base import Trigger, TriggerParams, Window, occurrence_select, relative
from .lapsed import newer_live_order

_NEWER = aliased(Order)  # a newer order of the customer; made once (its columns cost on first use)


class PredictedReorderParams(TriggerParams):
    orders: int = Field(default=3, ge=2, description="orders the customer has placed at least (K)")
    before: Duration = dt.timedelta(days=3)
    min_interval: Duration = dt.timedelta(days=7)
    recommend_bought: bool = True  # a nudge to buy again may well offer what they usually buy

    @model_validator(mode="after")
    def _interval_beyond_before(self) -> PredictedReorderParams:
        if self.min_interval <= self.before:
            raise ValueError("min_interval must be longer than before: an email due before the order it "
                             "follows would go out as soon as that order is placed")
        return self


class PredictedReorderTrigger(Trigger):
    """Key `reorder:<customer id>:<last order's instant, YYYYMMDDHHMMSS>`: once per predicted cycle.

    Due `before` the expected next order, for a customer whose last order was at least their
    K-th and whose mean interval is at least `min_interval`. Any order placed after the last one
    (and not cancelled) cancels it and starts the next cycle, with its own forecast; cancelling the
    last order brings back the previous one's, under its own key.
    """

    type_name = "predicted_reorder"
    about = "order"  # the last order: what the customer usually buys, to reorder in one click
    Params = PredictedReorderParams
    params: PredictedReorderParams

    def occurrences(self, window: Window) -> list[Select[Any]]:
        newer = _NEWER
        return [self._select(window).where(
            Order.cancelled_at.is_(None),
            ~newer_live_order(newer, Order.customer_id, Order.placed_at, Order.id, window.now))]

    def candidates(self, window: Window) -> list[Select[Any]]:
        return [self._select(window).add_columns(
            Order.id.label("last_order_id"), Order.placed_at.label("last_order_at"),
            Order.cancelled_at.label("last_order_cancelled_at"))]

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        """The order is still the customer's last live one at `at` (as for `lapsed`)."""
        return and_(not_cancelled_by(occ.last_order_cancelled_at, at),
                    ~newer_live_order(aliased(Order), occ.customer_id, occ.last_order_at, occ.last_order_id, at))

    def _select(self, window: Window) -> Select[Any]:
        p = self.params
        before = int(p.before.total_seconds())
        expected = ReorderForecast.expected_at
        return (
            occurrence_select(
                customer_id=ReorderForecast.customer_id, due_at=plus_seconds(expected, literal(-before)),
                occurrence_key=literal("reorder:") + as_text(ReorderForecast.customer_id) + literal(":")
                + stamp_key(Order.placed_at),
                order_id=Order.id,
                detail=as_text(ReorderForecast.orders) + literal(":") + as_text(ReorderForecast.interval_seconds))
            .join(Order, Order.id == ReorderForecast.order_id)
            # the window on the indexed column itself, shifted by `before`
            .where(expected > window.start + p.before, expected <= window.now + p.before,
                   ReorderForecast.orders >= p.orders,
                   ReorderForecast.interval_seconds >= int(p.min_interval.total_seconds()))
        )

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        orders, seconds = (int(part) for part in row["detail"].split(":"))
        expected = row["due_at"] + self.params.before
        when = relative(expected, now)
        return (f"{orders} orders, one every {seconds / 86400:.3g} days on average: the next "
                f"{'was' if when.endswith(' ago') else 'is'} expected {when} ({expected:%Y-%m-%d})")

    def facts(self, occurrence_key: str, customer: Mapping[str, Any]) -> dict[str, Any]:
        """`occurrence.reorder`: the customer's order count and mean interval in whole days, from their
        orders as the email is rendered (None with fewer than two)."""
        count, first, last = customer["order_count"], customer["first_order_at"], customer["last_order_at"]
        every = (round((last - first).total_seconds() / 86400 / (count - 1))
                 if count >= 2 and first is not None and last is not None else None)
        return {"reorder": {"orders": count, "every_days": every}}

    def sample_key(self, customer_id: int, now: dt.datetime, currency: str) -> str:
        return f"reorder:{customer_id}:{now:%Y%m%d%H%M%S}"
