"""Amounts in minor units with their currency, printed the way a customer reads them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "HUF": 2,
              "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "CHF": "CHF "}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: str | Decimal, currency: str) -> int:
    """'12.50' EUR -> 1250, '1500' JPY -> 1500, '1.2345' KWD -> 1235 (rounded half up)."""
    scaled = Decimal(amount) * (Decimal(10) ** exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, order=True)
class Money:
    cents: int
    currency: str = "USD"

    @property
    def amount(self) -> Decimal:
        return Decimal(self.cents).scaleb(-exponent(self.currency))

    def __str__(self) -> str:
        text = f"{self.amount:,.{exponent(self.currency)}f}"
        symbol = _SYMBOLS.get(self.currency.upper())
        return f"{symbol}{text}" if symbol else f"{text} {self.currency.upper()}"
