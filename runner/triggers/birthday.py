"""`birthday`: on the customer's birthday at a local hour in their time zone, once a year."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, literal

from ..models import Customer
from ..sql import as_text
from .base import Window, occurrence_select
from .local_time import LocalDateTrigger, LocalHourParams, due_at_case, due_days, in_zones, month_days


class BirthdayTrigger(LocalDateTrigger):
    """Customers without a time zone use the shop's. The key holds the year: once per year."""

    type_name = "birthday"
    Params = LocalHourParams
    params: LocalHourParams

    def _selects(self, window: Window, start: dt.datetime) -> list[Select[Any]]:
        return [occurrence_select(
            customer_id=Customer.id,
            occurrence_key=literal("birthday:") + as_text(Customer.id) + literal(f":{day.year}"),
            due_at=due_at_case(entries),
            detail=literal(day.isoformat()),
        ).where(Customer.birthday_md.in_(month_days(day)), in_zones([n for _, names in entries for n in names]))
            for day, entries in due_days(window, self.params.hour, self.params.minute, start).items()]

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        return f"birthday on {row['detail']} at {self.params.hour:02d}:{self.params.minute:02d} local time"
