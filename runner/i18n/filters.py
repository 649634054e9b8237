"""Template filters: dates and durations in the reader's locale through Babel, money, and pluralize.

The locale is the context's `locale` variable: the customer's own when the store knows it, else
the shop's (`LIFECYCLE_SHOP_LOCALE`). A macro imported without context sees the renderer's
global `locale`, which is the shop's. Money values carry the locale they were built for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import (
    DateTimePattern,
    format_time,
    format_timedelta,
    get_date_format,
    get_datetime_format,
    parse_pattern,
)
from babel.dates import format_datetime as babel_datetime
from jinja2 import pass_context
from jinja2.runtime import Context

from ..money import Money
from .locales import DEFAULT_LOCALE

# (shown in this unit below this many days, days per unit, Babel's unit): "10 days", "3 weeks", "6 months".
_SPANS = ((14, 1, "day"), (60, 7, "week"), (730, 30, "month"), (None, 365, "year"))
_SECONDS = {"day": 86400, "week": 604800, "month": 2592000, "year": 31536000}  # Babel's unit lengths


def _locale(context: Context) -> str:
    return str(context.get("locale") or DEFAULT_LOCALE)


@lru_cache(maxsize=256)
def _date_pattern(fmt: str, locale: str) -> tuple[DateTimePattern, Locale]:
    """Babel's parsed pattern for a date format in a locale: what format_date works out on every call."""
    parsed = Locale.parse(locale)
    pattern = get_date_format(fmt, locale=parsed) if fmt in ("full", "long", "medium", "short") else fmt
    return parse_pattern(pattern), parsed


def date_text(value: dt.date | dt.datetime | None, locale: str, fmt: str | None = None) -> str:
    """A date in `locale`: CLDR's long form by default; `fmt` is short/medium/long/full, a CLDR pattern
    such as "d MMM y", or a strftime format (any "%": not translated)."""
    if value is None:
        return ""
    if fmt and "%" in fmt:
        return value.strftime(fmt)
    return _date_in(value.date() if isinstance(value, dt.datetime) else value, fmt or "long", locale)


@lru_cache(maxsize=4096)  # a batch's emails show the same few days
def _date_in(day: dt.date, fmt: str, locale: str) -> str:
    pattern, parsed = _date_pattern(fmt, locale)
    return pattern.apply(day, parsed)


def datetime_text(value: dt.datetime | None, locale: str, fmt: str | None = None) -> str:
    """A date and time in `locale`: long date, short time and the zone's abbreviation by default."""
    if value is None:
        return ""
    if fmt and "%" in fmt:
        return value.strftime(fmt)
    if fmt:
        return babel_datetime(value, fmt, tzinfo=value.tzinfo, locale=locale)
    time = format_time(value, "short", tzinfo=value.tzinfo, locale=locale)
    zone = value.tzname() if value.tzinfo is not None else None
    # Babel joins date and time with the locale's pattern the same way ("{1}, {0}" in English).
    pattern = get_datetime_format("long", locale=locale).replace("'", "")
    return pattern.replace("{1}", date_text(value, locale)).replace("{0}", f"{time} {zone}" if zone else time)


def timesince_text(value: dt.datetime | dt.date | None, now: dt.datetime | dt.date, locale: str) -> str:
    """The time from value to now in whole days, weeks, months or years, in `locale`: "3 months", "3 mois"."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime) != isinstance(now, dt.datetime):
        value = value.date() if isinstance(value, dt.datetime) else value
        now = now.date() if isinstance(now, dt.datetime) else now
    days = max(0, (now - value).days)
    for limit, size, unit in _SPANS:
        if limit is None or days < limit:
            # An infinite threshold keeps Babel in the unit chosen here; it only words and pluralises it.
            return format_timedelta((days // size) * _SECONDS[unit], granularity=unit, threshold=float("inf"),
                                    locale=locale)
    raise AssertionError("unreachable")


@pass_context
def date_filter(context: Context, value: dt.date | dt.datetime | None, fmt: str | None = None) -> str:
    """`{{ order.placed_at|date }}` -> "November 23, 2026" in en_US, "23 novembre 2026" in fr."""
    return date_text(value, _locale(context), fmt)


@pass_context
def datetime_filter(context: Context, value: dt.datetime | None, fmt: str | None = None) -> str:
    """`{{ order.placed_at|datetime }}` -> "November 23, 2026, 2:05 PM CET" in en_US."""
    return datetime_text(value, _locale(context), fmt)


@pass_context
def timesince_filter(context: Context, value: dt.datetime | dt.date | None, now: dt.datetime | dt.date) -> str:
    """`{{ customer.last_order_at|timesince(now) }}` -> "3 months"."""
    return timesince_text(value, now, _locale(context))


def money_filter(value: Money | None, default: str = "") -> str:
    """`{{ product.price|money }}`: the amount as its reader writes it, or `default` for None."""
    return default if value is None else str(value)


def pluralize(count: int, plural: str = "s", singular: str = "") -> str:
    """`item{{ n|pluralize }}` -> "item"/"items"; `{{ n|pluralize("ies", "y") }}` for other endings."""
    return singular if count == 1 else plural


FILTERS: dict[str, Callable[..., Any]] = {
    "date": date_filter,
    "datetime": datetime_filter,
    "timesince": timesince_filter,
    "money": money_filter,
    "pluralize": pluralize,
}
