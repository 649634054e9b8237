"""`order`: a set delay after an order is placed (thank-you) or delivered (feedback request)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import ColumnCollection, ColumnElement, Select, literal

from ..asof import Instant, not_cancelled_by
from ..durations import Duration
from ..models import Order
from ..sql import as_text
from .base import Trigger, TriggerParams, Window, delayed, occurrence_select, relative


class OrderParams(TriggerParams):
    event: Literal["placed", "delivered"] = "placed"
    delay: Duration = dt.timedelta(0)


class OrderTrigger(Trigger):
    """One occurrence per order, due `delay` after the order event. Cancelled orders never fire."""

    type_name = "order"
    about = "order"
    Params = OrderParams
    params: OrderParams

    def occurrences(self, window: Window) -> list[Select[Any]]:
        return [self._select(window).where(Order.cancelled_at.is_(None))]

    def candidates(self, window: Window) -> list[Select[Any]]:
        return [self._select(window).add_columns(Order.cancelled_at)]

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        return not_cancelled_by(occ.cancelled_at, at)

    def _select(self, window: Window) -> Select[Any]:
        stamp = Order.placed_at if self.params.event == "placed" else Order.delivered_at
        due_at, in_window = delayed(stamp, self.params.delay, window)
        return (occurrence_select(customer_id=Order.customer_id, occurrence_key=literal("order:") + as_text(Order.id),
                                  due_at=due_at, order_id=Order.id, detail=Order.name)
                .where(in_window))

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        return f"order {row['detail']} {self.params.event} {relative(row['due_at'] - self.params.delay, now)}"
