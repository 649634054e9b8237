"""`lapsed`: a customer's last order is N days old (win-back). One occurrence per lapse."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, literal, select

from ..durations import Duration, format_duration
from ..models import Customer
from ..sql import as_text, plus_seconds, stamp_key
from .base import Trigger, TriggerParams, Window


class LapsedParams(TriggerParams):
    after: Duration


class LapsedTrigger(Trigger):
    """Keyed by customer and the instant of the last order: an order before sending cancels the
    occurrence (the last order moved), and a later lapse is a new occurrence."""

    type_name = "lapsed"
    Params = LapsedParams
    params: LapsedParams

    def occurrences(self, window: Window) -> list[Select[Any]]:
        after: dt.timedelta = self.params.after
        query = select(
            Customer.id.label("customer_id"),
            (literal("lapse:") + as_text(Customer.id) + literal(":") + stamp_key(Customer.last_order_at)).label(
                "occurrence_key"),
            plus_seconds(Customer.last_order_at, literal(int(after.total_seconds()))).label("due_at"),
            literal(None).label("order_id"),
            literal(None).label("order_line_id"),
            stamp_key(Customer.last_order_at).label("detail"),
        ).where(Customer.last_order_at > window.start - after, Customer.last_order_at <= window.now - after)
        return [query]

    def describe(self, row: dict[str, Any]) -> str:
        last = row["detail"]
        return f"no order for {format_duration(self.params.after)} (last order {last[:4]}-{last[4:6]}-{last[6:8]})"
