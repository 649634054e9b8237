"""`lapsed`: a customer's last order is N days old (win-back). One occurrence per lapse."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, literal

from ..durations import Duration, format_duration
from ..models import Customer
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
        last_order = stamp_key(Customer.last_order_at)
        return [occurrence_select(customer_id=Customer.id, due_at=due_at, detail=last_order,
                                  occurrence_key=literal("lapse:") + as_text(Customer.id) + literal(":") + last_order)
                .where(in_window)]

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        last = row["due_at"] - self.params.after
        return (f"no order since {last:%Y-%m-%d}, {relative(last, now)} "
                f"(lapses after {format_duration(self.params.after)})")
