"""Cell parsers shared by the imports: each raises ValueError with the reason shown to the user."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from .. import settings
from ..i18n.locales import parse_locale
from ..models import normalise_email
from ..money import exponent, to_minor
from ..store import utc_naive
from .reader import Row, shown


class Keep(Enum):
    """Marks a value the file says nothing about: the store's value stays."""

    KEEP = 0


KEEP = Keep.KEEP

_MONEY = re.compile(r"^\d+(\.\d+)?$")
_QUANTITY = re.compile(r"^\d+$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SPACED_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2} [+-]\d{2}:?\d{2}$")
# The store keeps amounts (in minor units) and quantities in 32-bit integer columns (PostgreSQL's INTEGER).
MAX_STORED = 2**31 - 1


def parse_cents(raw: str, currency: str = "USD") -> int:
    """'12.50' -> 1250 minor units of the currency (JPY has none, KWD three); rounded half up."""
    if not raw:
        raise ValueError("the amount is empty; expected an amount like 12.50")
    if not _MONEY.match(raw):
        raise ValueError(f"{raw!r} is not an amount like 12.50")
    if Decimal(raw).scaleb(exponent(currency)) > MAX_STORED:
        raise ValueError(f"{shown(raw)} is more than the store holds (at most {largest_amount(currency)})")
    return to_minor(raw, currency)


def largest_amount(currency: str) -> str:
    """The largest amount the store holds in `currency`, e.g. '21474836.47 EUR'."""
    return f"{Decimal(MAX_STORED).scaleb(-exponent(currency))} {currency}"


def parse_currency(raw: str) -> str:
    """'eur' -> 'EUR': a three-letter ISO 4217 code."""
    code = raw.upper()
    if not _CURRENCY.match(code):
        raise ValueError(f"{code!r} is not a three-letter currency code like EUR")
    return code


def parse_quantity(raw: str) -> int:
    if not _QUANTITY.match(raw):
        raise ValueError(f"{shown(raw)} is not a whole number of items")
    if len(raw) > 10 or int(raw) > MAX_STORED:
        raise ValueError(f"{shown(raw)} is more than the store holds (at most {MAX_STORED} items)")
    return int(raw)



def parse_bool(raw: str) -> bool:
    try:
        return settings.parse_bool(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not yes or no") from None


def parse_timestamp(raw: str, zone: ZoneInfo) -> dt.datetime:
    """'2025-03-01 14:05:00 +0100' (or ISO 8601) -> naive UTC; a value without offset is in `zone`."""
    if _SPACED_OFFSET.match(raw):
        raw_iso = raw[:19] + raw[20:]  # Shopify's "... 14:05:00 +0100" is ISO 8601 but for the space
    else:
        raw_iso = raw
    try:
        moment = dt.datetime.fromisoformat(raw_iso)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date and time like 2025-03-01 14:05:00 +0100") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return utc_naive(moment)


def parse_optional_timestamp(raw: str, zone: ZoneInfo) -> dt.datetime | None:
    return parse_timestamp(raw, zone) if raw else None


def parse_birthday(raw: str) -> dt.date | None:
    """'1990-04-23' -> date; any year, 29 February included where the year has one."""
    if not raw:
        return None
    match = _DATE.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a birthday like 1990-04-23 (YYYY-MM-DD)")
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"{raw!r} is not a real date") from None


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_zone_name(raw: str) -> str | None:
    """An IANA zone name (case-insensitive, returned canonical), or None for an empty cell."""
    if not raw:
        return None
    name = _zone_names().get(raw.lower())
    if name is None:
        raise ValueError(f"{raw!r} is not an IANA time zone name such as Europe/Berlin or America/New_York")
    return name


def parse_customer_locale(raw: str) -> str | None:
    """A language code such as fr or pt-BR, stored as Babel spells it (pt_BR); None for an empty cell."""
    return parse_locale(raw) if raw else None


def split_tags(raw: str) -> list[str]:
    """'VIP, Newsletter' -> ['newsletter', 'vip']: trimmed, lower-cased, without duplicates."""
    return sorted({tag.strip().lower() for tag in raw.split(",") if tag.strip()})


def derived_sku(name: str) -> str:
    """The stable SKU given to a line or variant without one: 'NAME:' + a slug of its name."""
    slug = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFKC", name).casefold()).strip("-")
    return f"NAME:{slug}"


def strip_id(raw: str) -> str | None:
    """Shopify prefixes ids with an apostrophe so spreadsheets keep them as text."""
    return raw.lstrip("'").strip() or None


def read_email(row: Row, position: int, *, required: bool) -> str:
    raw = row.get(position)
    if not raw:
        if required:
            raise row.error(position, "the email address is empty",
                            "every customer needs an email address; add it in Shopify and export again, "
                            "or delete the row")
        return ""
    email = normalise_email(raw)
    if not _EMAIL.match(email):
        raise row.error(position, f"{raw!r} is not an email address")
    return email

