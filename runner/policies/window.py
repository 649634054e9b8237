"""Send windows in a customer's time zone: is an instant inside, and when does the window next open."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from .spec import SendWindow

UTC = dt.UTC


def _local(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return instant.replace(tzinfo=UTC).astimezone(zone)


def is_open(window: SendWindow, instant: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether a naive-UTC instant falls inside the window, on the customer's wall clock."""
    return window.contains(_local(instant, zone).time())


@lru_cache(maxsize=4096)  # an evaluation asks the same (window, now, zone) for every occurrence in that zone
def next_opening(window: SendWindow, instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """`instant` itself when the window is open then, else the (naive UTC) instant it next opens.

    On a day whose opening time does not exist on the wall clock (it falls in a daylight-saving
    gap), the window opens when the clock would have shown it without the change.
    """
    if is_open(window, instant, zone):
        return instant
    local = _local(instant, zone)
    day = local.date()
    while True:
        opening = dt.datetime.combine(day, window.start, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        if opening > instant:
            return opening
        day += dt.timedelta(days=1)
