"""Occurrences on a calendar date at a local hour in each customer's time zone (birthdays, anniversaries).

The engine hands a trigger the distinct time zones of the store; for each, the local dates whose
hour falls in the evaluation window are worked out here in Python, so the SQL only matches
customers by date and zone. Dates that do not exist every year follow one rule: what falls on
29 February is celebrated on 28 February in years that have no 29 February.
"""

from __future__ import annotations

import calendar
import datetime as dt
from abc import abstractmethod
from collections import defaultdict
from typing import Any

from pydantic import Field
from sqlalchemy import ColumnCollection, ColumnElement, Select, case, literal, or_

from ..asof import Instant
from ..models import Customer
from ..sql import unions
from ..timezones import zone_or_default
from .base import Trigger, TriggerParams, Window

# A downtime longer than this records no expired occurrences beyond it (bounds the query size).
MAX_LOOKBACK = dt.timedelta(days=40)
UNION_ARMS = 100


class LocalHourParams(TriggerParams):
    hour: int = Field(default=9, ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)


#: a local date to the due instants (naive UTC) it has in the window, each with the zones it is due in
DueDays = dict[dt.date, list[tuple[dt.datetime, list[str | None]]]]


def month_days(day: dt.date) -> list[str]:
    """The "MM-DD" dates celebrated on `day`: 29 February moves to 28 February in other years."""
    keys = [day.strftime("%m-%d")]
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        keys.append("02-29")
    return keys


def due_days(window: Window, hour: int, minute: int, start: dt.datetime) -> DueDays:
    """Each local date whose `hour:minute` falls after `start` and by window.now in some zone of the
    store, with the due instants and their zones (None: customers without a zone, who get the shop's).
    Live evaluation starts at most MAX_LOOKBACK back; a simulation at its window's start."""
    groups: dict[tuple[dt.date, dt.datetime], list[str | None]] = defaultdict(list)
    for name in window.time_zones:
        zone = zone_or_default(name, window.default_zone)
        first = start.replace(tzinfo=dt.UTC).astimezone(zone).date()
        last = window.now.replace(tzinfo=dt.UTC).astimezone(zone).date()
        day = first
        while day <= last:
            due = to_utc(dt.datetime.combine(day, dt.time(hour, minute)), zone)
            if start < due <= window.now:
                groups[(day, due)].append(name)
            day += dt.timedelta(days=1)
    by_day: DueDays = defaultdict(list)
    for (day, due), names in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1])):
        by_day[day].append((due, names))
    return dict(sorted(by_day.items()))


def to_utc(local: dt.datetime, zone: Any) -> dt.datetime:
    """A naive local wall time in `zone` as naive UTC (a time skipped or repeated by a clock change
    is read as zoneinfo reads it: with the offset in force before the change)."""
    return local.replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None)


def zone_conditions(names: list[str | None]) -> list[ColumnElement[bool]]:
    """Customers whose time zone is one of `names` (None: customers without one), as one condition
    on each kind of value, for queries that pair each with an index range."""
    known = [n for n in names if n]
    conds: list[ColumnElement[bool]] = []
    if known:
        conds.append(Customer.time_zone.in_(known))
    if None in names:
        conds.append(Customer.time_zone.is_(None))
    return conds


def in_zones(names: list[str | None]) -> ColumnElement[bool]:
    """Customers whose time zone is one of `names`; None stands for customers without one."""
    conds = zone_conditions(names)
    return or_(*conds) if len(conds) > 1 else conds[0]


def due_at_case(entries: list[tuple[dt.datetime, list[str | None]]]) -> ColumnElement[Any]:
    """The due instant of each customer of a local date, chosen by their zone."""
    return case(*[(in_zones(names), literal(due)) for due, names in entries])


class LocalDateTrigger(Trigger):
    """A customer's yearly date at a local hour (birthdays, anniversaries): live evaluation reaches back
    at most MAX_LOOKBACK; at a past instant a customer counts once their account existed."""

    max_lookback = MAX_LOOKBACK

    @abstractmethod
    def _selects(self, window: Window, start: dt.datetime) -> list[Select[Any]]:
        """The occurrences of the local dates after `start` and by window.now (see due_days)."""

    def occurrences(self, window: Window) -> list[Select[Any]]:
        """The selects of the local dates as UNION ALLs of up to UNION_ARMS each: one statement to build and
        run for a day's window instead of one per date and zone group (SQLite allows 500 arms)."""
        selects = self._selects(window, max(window.start, window.now - MAX_LOOKBACK))
        return unions(selects, UNION_ARMS)

    def candidates(self, window: Window) -> list[Select[Any]]:
        return [query.add_columns(Customer.created_at) for query in self._selects(window, window.start)]

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        """The customer had an account by then (an anniversary's first order, a year or more before, was
        placed by then too)."""
        return occ.created_at <= at
