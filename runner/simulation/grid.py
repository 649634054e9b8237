"""The instants a simulated period ticks at: start, start + step, ... up to its end, in Python and in SQL."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, literal
from sqlalchemy.types import DateTime

from ..errors import LifecycleError
from ..sql import epoch_seconds, stamp_from_epoch

_ZERO = dt.timedelta(0)


@dataclass(frozen=True)
class TickGrid:
    """Ticks at `start + k * step` for every k with the tick at or before `end` (naive UTC, whole seconds)."""

    start: dt.datetime
    end: dt.datetime
    step: dt.timedelta

    def __post_init__(self) -> None:
        if self.step.total_seconds() < 1 or self.step % dt.timedelta(seconds=1):
            raise LifecycleError(f"a tick step of {self.step} is not a whole number of seconds",
                                 "give --step as a duration such as 1h, 15m or 1d")
        if self.start.microsecond or self.start.tzinfo is not None:
            raise LifecycleError("a simulation starts at a whole second in naive UTC",
                                 "give --from as a date or a date-time without fractions of a second")
        if self.end < self.start:
            raise LifecycleError("the simulated period ends before it starts", "give a --to later than --from")

    @property
    def last(self) -> dt.datetime:
        """The last tick."""
        return self.start + ((self.end - self.start) // self.step) * self.step

    @property
    def count(self) -> int:
        return (self.end - self.start) // self.step + 1

    def ticks(self) -> Iterator[dt.datetime]:
        for k in range(self.count):
            yield self.start + k * self.step

    def first_at_or_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first tick at or after `moment`, or None after the last tick."""
        if moment <= self.start:
            return self.start
        ahead = -((self.start - moment) // self.step)  # ceiling division
        tick = self.start + ahead * self.step
        return tick if tick <= self.last else None

    def first_at_or_after_sql(self, stamp: Any, plus: dt.timedelta = _ZERO) -> ColumnElement[Any]:
        """SQL for the first tick at or after `stamp + plus` (unbounded by the last tick).

        The tick is written the way the store writes timestamps, and whether `stamp + plus` lies after
        a candidate tick is decided by comparing `stamp` itself with a tick shifted back by `plus`, so
        fractions of a second in the stored value are never rounded away."""
        origin = calendar.timegm(self.start.timetuple())
        size = int(self.step.total_seconds())
        offset = int(plus.total_seconds())
        before = (epoch_seconds(stamp) + (offset - origin)) // size  # ticks wholly at or before stamp + plus
        floor_tick = stamp_from_epoch(before * size + origin)
        return case(
            (stamp <= literal(self.start - plus, DateTime), literal(self.start, DateTime)),
            (stamp <= stamp_from_epoch(before * size + (origin - offset)), floor_tick),
            else_=stamp_from_epoch((before + 1) * size + origin),
        )
