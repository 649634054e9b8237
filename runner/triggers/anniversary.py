"""`anniversary`: yearly on the date of the customer's first order (or account), at a local hour in their zone.

The date is the local date of that instant in the customer's time zone, so it cannot be a stored
month-day: SQLite has no time zones to compute it with, and a UTC month-day is a day off for
much of the world. Instead, for the local date being celebrated, the instant's possible values
are exact UTC ranges, one per past year (that local day in that zone, in that year, clock
changes included), searched on the index (time_zone, first_order_at) or (time_zone, created_at).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import Select, literal

from ..models import Customer
from ..sql import as_text, in_zones_and_ranges
from ..timezones import zone_or_default
from .base import Window, occurrence_select
from .local_time import LocalDateTrigger, LocalHourParams, due_days, month_days, to_utc

# The anniversaries looked for: up to the 50th. Each past year is one index range in the query.
YEARS = 50

Range = tuple[dt.datetime, dt.datetime]


class AnniversaryParams(LocalHourParams):
    since: Literal["first_order", "account"] = "first_order"


@functools.lru_cache(maxsize=512)
def _cached_day_ranges(day: dt.date, zone: Any) -> tuple[Range, ...]:
    return tuple(local_day_ranges(day, zone))


def local_day_ranges(day: dt.date, zone: Any) -> list[Range]:
    """The UTC instants that fell on the dates celebrated on `day` (see month_days) in each of the
    YEARS years before it, in `zone`: [start, end) ranges, adjacent ones merged."""
    ranges: list[Range] = []
    for year in range(day.year - YEARS, day.year):
        for month_day in month_days(day):
            month, mday = int(month_day[:2]), int(month_day[3:])
            if (month, mday) == (2, 29) and not calendar.isleap(year):
                continue
            local = dt.datetime(year, month, mday)
            start, end = to_utc(local, zone), to_utc(local + dt.timedelta(days=1), zone)
            if ranges and ranges[-1][1] == start:
                start = ranges.pop()[0]
            ranges.append((start, end))
    return ranges


class AnniversaryTrigger(LocalDateTrigger):
    """Key `anniversary:<customer id>:<year>`: once per customer per year, whatever the date moves to."""

    type_name = "anniversary"
    Params = AnniversaryParams
    params: AnniversaryParams

    @property
    def _stamp(self) -> Any:
        return Customer.first_order_at if self.params.since == "first_order" else Customer.created_at

    def _selects(self, window: Window, start: dt.datetime) -> list[Select[Any]]:
        queries = []
        for day, entries in due_days(window, self.params.hour, self.params.minute, start).items():
            for due, names in entries:
                # zones due at the same instant today may have kept other clocks in past years
                by_ranges: dict[tuple[Range, ...], list[str | None]] = defaultdict(list)
                for name in names:
                    by_ranges[_cached_day_ranges(day, zone_or_default(name, window.default_zone))].append(name)
                queries += [self._select(day, due, names, ranges) for ranges, names in by_ranges.items()]
        return queries

    def _select(self, day: dt.date, due: dt.datetime, names: list[str | None],
                ranges: tuple[Range, ...]) -> Select[Any]:
        # one term per zone condition and range, so that each is one search of the (time_zone, stamp) index
        return occurrence_select(
            customer_id=Customer.id,
            occurrence_key=literal("anniversary:") + as_text(Customer.id) + literal(f":{day.year}"),
            due_at=literal(due),
            detail=literal(day.isoformat()),
        ).where(in_zones_and_ranges(Customer.time_zone, names, self._stamp, ranges))

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        what = "first order" if self.params.since == "first_order" else "account"
        return f"{what} anniversary on {row['detail']} at {self.params.hour:02d}:{self.params.minute:02d} local time"

    def facts(self, occurrence_key: str, customer: Mapping[str, Any]) -> dict[str, Any]:
        year = int(occurrence_key.rsplit(":", 1)[1])
        since = customer["first_order_at" if self.params.since == "first_order" else "created_at"]
        return {"anniversary": {"year": year, "since": since, "years": year - since.year if since else None}}

    def sample_key(self, customer_id: int, now: dt.datetime, currency: str) -> str:
        return f"anniversary:{customer_id}:{now.year}"
