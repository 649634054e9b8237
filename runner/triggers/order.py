"""`order`: a set delay after an order is placed (thank-you) or delivered (feedback request)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import Select, literal, select

from ..durations import Duration
from ..models import Order
from ..sql import as_text, plus_seconds
from .base import Trigger, TriggerParams, Window


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
        stamp = Order.placed_at if self.params.event == "placed" else Order.delivered_at
        delay = self.params.delay
        # Compare the indexed column with bounds shifted by the delay, so the range scan uses the index.
        query = (
            select(
                Order.customer_id.label("customer_id"),
                (literal("order:") + as_text(Order.id)).label("occurrence_key"),
                plus_seconds(stamp, literal(int(delay.total_seconds()))).label("due_at"),
                Order.id.label("order_id"),
                literal(None).label("order_line_id"),
                Order.name.label("detail"),
            )
            .where(stamp > window.start - delay, stamp <= window.now - delay)
            .where(Order.cancelled_at.is_(None))
        )
        return [query]

    def describe(self, row: dict[str, Any]) -> str:
        return f"order {row['detail']} {self.params.event} {_ago(self.params.delay)}"


def _ago(delay: dt.timedelta) -> str:
    from ..durations import format_duration

    return f"{format_duration(delay)} ago" if delay else "just now"
