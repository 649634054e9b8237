"""`birthday`: on the customer's birthday at a local hour in their time zone, once a year."""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy import ColumnCollection, ColumnElement, Select, case, literal, or_

from ..asof import Instant
from ..models import Customer
from ..sql import as_text
from ..timezones import zone_or_default
from .base import Trigger, TriggerParams, Window, occurrence_select

# A downtime longer than this records no expired birthdays beyond it (bounds the query size).
MAX_LOOKBACK = dt.timedelta(days=40)


class BirthdayParams(TriggerParams):
    hour: int = Field(default=9, ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)


def month_days(day: dt.date) -> list[str]:
    """Birthday keys celebrated on `day`: 29 February birthdays move to 28 February in other years."""
    keys = [day.strftime("%m-%d")]
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        keys.append("02-29")
    return keys


class BirthdayTrigger(Trigger):
    """Customers without a time zone use the shop's. The key holds the year: once per year."""

    type_name = "birthday"
    Params = BirthdayParams
    params: BirthdayParams

    max_lookback = MAX_LOOKBACK

    def occurrences(self, window: Window) -> list[Select[Any]]:
        return self._selects(window, max(window.start, window.now - MAX_LOOKBACK))

    def candidates(self, window: Window) -> list[Select[Any]]:
        return [query.add_columns(Customer.created_at) for query in self._selects(window, window.start)]

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        """The customer had an account by then."""
        return occ.created_at <= at

    def _selects(self, window: Window, start: dt.datetime) -> list[Select[Any]]:
        # (local date, due instant) -> zones: customers in those zones whose birthday is that date.
        groups: dict[tuple[dt.date, dt.datetime], list[str | None]] = defaultdict(list)
        for name in window.time_zones:
            zone = zone_or_default(name, window.default_zone)
            first = start.replace(tzinfo=dt.UTC).astimezone(zone).date()
            last = window.now.replace(tzinfo=dt.UTC).astimezone(zone).date()
            day = first
            while day <= last:
                local = dt.datetime.combine(day, dt.time(self.params.hour, self.params.minute), tzinfo=zone)
                due = local.astimezone(dt.UTC).replace(tzinfo=None)
                if start < due <= window.now:
                    groups[(day, due)].append(name)
                day += dt.timedelta(days=1)

        by_day: dict[dt.date, list[tuple[dt.datetime, list[str | None]]]] = defaultdict(list)
        for (day, due), names in groups.items():
            by_day[day].append((due, names))
        return [self._select(day, entries, window.default_zone) for day, entries in sorted(by_day.items())]

    def _select(self, day: dt.date, entries: list[tuple[dt.datetime, list[str | None]]],
                default_zone: ZoneInfo) -> Select[Any]:
        conds = [(_in_zones(names), due) for due, names in entries]
        return occurrence_select(
            customer_id=Customer.id,
            occurrence_key=literal("birthday:") + as_text(Customer.id) + literal(f":{day.year}"),
            due_at=case(*[(cond, literal(due)) for cond, due in conds]),
            detail=literal(day.isoformat()),
        ).where(Customer.birthday_md.in_(month_days(day)), or_(*[cond for cond, _ in conds]))

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        return f"birthday on {row['detail']} at {self.params.hour:02d}:{self.params.minute:02d} local time"


def _in_zones(names: list[str | None]) -> Any:
    known = [n for n in names if n]
    conds = []
    if known:
        conds.append(Customer.time_zone.in_(known))
    if None in names:
        conds.append(Customer.time_zone.is_(None))
    return or_(*conds) if len(conds) > 1 else conds[0]
