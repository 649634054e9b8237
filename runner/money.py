"""Amounts in minor units with their currency, printed through Babel the way a reader in a locale writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel.numbers import format_currency

from .i18n.locales import DEFAULT_LOCALE

# How the store keeps amounts: ISO 4217 minor units, which currencies other than these have 2 of.
# Not CLDR's display precision (Babel's), which differs for some (HUF is shown without fillér):
# changing this table would change what amounts already in a store mean.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "HUF": 2,
              "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: str | Decimal, currency: str) -> int:
    """'12.50' EUR -> 1250, '1500' JPY -> 1500, '1.2345' KWD -> 1235 (rounded half up)."""
    scaled = Decimal(amount) * (Decimal(10) ** exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, order=True)
class Money:
    """An amount of one currency; `locale` (not part of its value) says how it prints: €1,234.50 in
    en_US, 1.234,50 € in de_DE."""

    cents: int
    currency: str = "USD"
    locale: str = field(default=DEFAULT_LOCALE, compare=False)

    @property
    def amount(self) -> Decimal:
        return Decimal(self.cents).scaleb(-exponent(self.currency))

    def __str__(self) -> str:
        return _formatted(self.cents, self.currency.upper(), self.locale)


# A batch prints the same few prices and totals over and over; Babel takes tens of microseconds each.
@lru_cache(maxsize=4096)
def _formatted(cents: int, currency: str, locale: str) -> str:
    return format_currency(Decimal(cents).scaleb(-exponent(currency)), currency, locale=locale)
