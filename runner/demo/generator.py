"""The draws behind the demo shop: one `random.Random` walks customers in id order and writes their rows.

`ShopGenerator` decides each customer's time zone, birthday, consent, order history (one-time,
occasional, regular, or one of the planted scenarios that every demo run must show) and baskets;
`runner.demo.shop` loads what it draws, a `Chunk` of customers at a time. The order of the draws
is the contract: the same (customers, seed, now) must keep giving the same rows.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, insert
from sqlmodel import SQLModel

from ..models import Customer, CustomerTag, Order, OrderLine, Suppression, SuppressionReason, birthday_key
from ..store import utc_naive
from .baskets import basket, gift_basket
from .catalogue import (
    CADENCE_DAYS,
    COFFEES,
    FAVOURITE_WEIGHTS,
    FIRST_NAMES,
    HOUSE,
    LAST_NAMES,
    PRODUCTS,
    STAPLES,
    SUPPRESSION_REASONS,
    SUPPRESSION_WEIGHTS,
    TIME_ZONE_WEIGHTS,
    TIME_ZONES,
)

HISTORY_DAYS = 548  # orders are spread over the 18 months before `now`
PLANT_EVERY = 250  # every 250 customers hold one of each planted scenario (see planted_times) ...
PLANTED_CUSTOMERS = 5000  # ... among the first 5,000, so big benchmark stores keep their natural shape

_DAY = 86_400
_HOUR = 3_600


def table(model: type[SQLModel]) -> Table:
    """A model's Core table, for executemany inserts."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


@dataclass
class Chunk:
    """The rows of one chunk of customers, in insertion order (parents first)."""

    last_customer_id: int = 0
    customers: list[dict[str, Any]] = field(default_factory=list)
    suppressions: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def insert(self, conn: Connection) -> None:
        for model, rows in ((Customer, self.customers), (Suppression, self.suppressions),
                            (CustomerTag, self.tags), (Order, self.orders), (OrderLine, self.lines)):
            if rows:
                conn.execute(insert(table(model)), rows)


class ShopGenerator:
    """Draws customers in id order from one Random; times are whole seconds after `start`."""

    def __init__(self, *, customers: int, now: dt.datetime, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = now.replace(microsecond=0)
        self.start = self.now - dt.timedelta(days=HISTORY_DAYS)
        self.now_s = HISTORY_DAYS * _DAY
        self.width = max(5, len(str(customers)))
        self.orders_written = 0
        self.lines_written = 0
        self.suppressed_written = 0
        today = self.now.date()
        tomorrow = today + dt.timedelta(days=1)
        self.birthday_today = (today.month, today.day)
        self.birthday_tomorrow = (tomorrow.month, tomorrow.day)
        self.tz_cum = list(accumulate(TIME_ZONE_WEIGHTS))
        self.fav_cum = list(accumulate(FAVOURITE_WEIGHTS))
        self.reason_cum = list(accumulate(SUPPRESSION_WEIGHTS))

    # -- helpers -----------------------------------------------------------------------------

    def at(self, seconds: int) -> dt.datetime:
        return self.start + dt.timedelta(seconds=seconds)

    def seconds(self, moment: dt.datetime) -> int:
        return int((moment - self.start).total_seconds())

    def product_rows(self) -> list[dict[str, Any]]:
        return [{"id": n + 1, "sku": p.sku, "name": p.name, "url": p.url, "image_url": p.image_url,
                 "price_cents": p.price_cents, "updated_at": self.start} for n, p in enumerate(PRODUCTS)]

    def birthday(self, i: int, planted: bool) -> dt.date | None:
        rng = self.rng
        if planted:  # today's, tomorrow's or 29 February, a few in every hundred customers
            return self._birthday_on(self.birthday_today if i % 97 == 5 else
                                     self.birthday_tomorrow if i % 97 == 11 else (2, 29))
        if rng.random() >= 0.70:
            return None
        year = rng.randint(1950, 2005)
        days = 366 if year % 4 == 0 else 365  # every leap year in 1950-2005 is divisible by 4
        return dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(days))

    def _birthday_on(self, month_day: tuple[int, int]) -> dt.date:
        month, day = month_day
        if (month, day) == (2, 29):
            return dt.date(self.rng.randrange(1952, 2005, 4), 2, 29)
        return dt.date(self.rng.randint(1950, 2005), month, day)

    def quantity(self, product: int) -> int:
        r = self.rng.random()
        if product in COFFEES:
            return 1 if r < 0.80 else 2 if r < 0.95 else 3
        return 1 if r < 0.92 else 2

    def cadence(self, favourite: int) -> float:
        low, high = CADENCE_DAYS[favourite]
        return self.rng.uniform(low, high) * _DAY

    # -- order histories ----------------------------------------------------------------------

    def first_order_time(self) -> int:
        r = self.rng.random()
        # A growing shop: 30% of customers are acquired with a density rising towards `now`.
        u = self.rng.random() ** 0.5 if r < 0.3 else self.rng.random()
        return int(u * (self.now_s - 60))

    def regular_times(self, favourite: int) -> list[tuple[int, int]]:
        """A regular reorders their favourite when it runs out; 35% stop at some point."""
        rng = self.rng
        t = self.first_order_time()
        end = self.now_s
        if rng.random() < 0.35:
            end = t + int(rng.uniform(0.05, 1.0) * (self.now_s - t))
        per_unit = self.cadence(favourite)
        times = []
        while t < end:
            quantity = self.quantity(favourite)
            times.append((t, quantity))
            t += int(per_unit * quantity * rng.uniform(0.85, 1.2)) + rng.randrange(-_HOUR * 6, _HOUR * 6)
        return times

    def occasional_times(self, favourite: int) -> list[tuple[int, int]]:
        rng = self.rng
        t = self.first_order_time()
        times = []
        for _ in range(rng.randint(2, 5)):
            if t >= self.now_s:
                break
            times.append((t, self.quantity(favourite)))
            t += rng.randrange(20 * _DAY, 200 * _DAY)
        return times

    def history_before(self, last: int, favourite: int, count: int) -> list[tuple[int, int]]:
        """`count` orders at the customer's cadence ending exactly at `last` (for planted cases)."""
        per_unit = self.cadence(favourite)
        times = [(last, 1)]
        t = last
        for _ in range(count - 1):
            t -= int(per_unit * self.rng.uniform(0.9, 1.1))
            if t < 0:
                break
            times.append((t, 1))
        times.reverse()
        return times

    def planted_times(self, plant: int, favourite: int, zone: ZoneInfo) -> list[tuple[int, int]] | None:
        """Scenarios every demo run must show, one of each per PLANT_EVERY customers."""
        now = self.now
        if plant == 1:  # two orders on the same (UTC) day, two days ago
            day = dt.datetime.combine((now - dt.timedelta(days=2)).date(), dt.time(9, 12))
            first = self.seconds(day)
            return self.history_before(first, favourite, 4) + [(first + 6 * _HOUR + 35 * 60, 1)]
        if plant in (2, 3, 4):  # lapsed: the last order exactly 90 days ago, 6 hours more, 6 hours less
            last = now - dt.timedelta(days=90) + dt.timedelta(hours={2: 0, 3: -6, 4: 6}[plant])
            return self.history_before(self.seconds(last), favourite, 5)
        if plant == 5:  # a first order within the last three hours
            return [(self.now_s - self.rng.randrange(600, 3 * _HOUR), 1)]
        if plant == 6:  # a first order a day or so ago
            return [(self.now_s - self.rng.randrange(20 * _HOUR, 40 * _HOUR), 1)]
        if plant == 11:  # a regular whose latest order is three days old
            return self.history_before(self.now_s - 3 * _DAY - 2 * _HOUR, favourite, 6)
        if plant == 12:  # lapsed 60 and 200 days ago
            return self.history_before(self.now_s - 60 * _DAY, favourite, 3)
        if plant == 13:
            return self.history_before(self.now_s - 200 * _DAY, favourite, 3)
        if plant == 14:  # a café's second order of 8 kg passes 500 in spending, 30 hours ago
            return [(self.now_s - 40 * _DAY, 8), (self.now_s - 30 * _HOUR, 8)]
        if plant in (15, 16):  # a first order a year before today or yesterday (local): one is due at any hour
            first = self.local_noon_a_year_before(zone, days_ago=plant - 15)
            return [(first, 1), (first + 45 * _DAY, 1), (self.now_s - 20 * _DAY, 1)]  # still buying lately
        return None

    def local_noon_a_year_before(self, zone: ZoneInfo, days_ago: int) -> int:
        """Seconds after `start` of noon in `zone`, one year before the local date `days_ago` days ago
        (28 February standing in for a 29th that year lacks)."""
        day = self.now.replace(tzinfo=dt.UTC).astimezone(zone).date() - dt.timedelta(days=days_ago)
        year_before = day.replace(year=day.year - 1, day=28) if (day.month, day.day) == (2, 29) \
            else day.replace(year=day.year - 1)
        return self.seconds(utc_naive(dt.datetime.combine(year_before, dt.time(12), tzinfo=zone)))

    # -- customers ----------------------------------------------------------------------------

    def chunks(self, customers: int, size: int) -> Iterator[Chunk]:
        """Customers 1..customers, `size` at a time."""
        for first in range(1, customers + 1, size):
            yield self.chunk(first, min(first + size, customers + 1))

    def chunk(self, first_id: int, end_id: int) -> Chunk:
        chunk = Chunk(last_customer_id=end_id - 1)
        for i in range(first_id, end_id):
            self.customer(i, chunk)
        return chunk

    def customer(self, i: int, chunk: Chunk) -> None:
        rng = self.rng
        plant = i % PLANT_EVERY if i <= PLANTED_CUSTOMERS else -1
        birthday_planted = i <= PLANTED_CUSTOMERS and (i % 97 in (5, 11) or i % 101 == 7)
        birthday = self.birthday(i, birthday_planted)
        tz = TIME_ZONES[pick(rng, self.tz_cum)]
        if plant == 7:
            tz = "Pacific/Auckland"
        elif plant == 8:
            tz = "Asia/Tokyo"
        favourite = STAPLES[pick(rng, self.fav_cum)]
        wholesale = plant == 10 or rng.random() < 0.004
        if wholesale or plant == 14:
            favourite = HOUSE
        brews_v60 = rng.random() < 0.25

        gift = False
        times = self.planted_times(plant, favourite, ZoneInfo(tz or "UTC"))
        planted = times is not None
        if times is None:
            r = rng.random()
            if wholesale:
                times = [(t, 3) for t, _ in self.regular_times(favourite)]
            elif r < 0.03:
                times = []  # signed up for the newsletter, never ordered
            elif r < 0.43:
                times = [(self.first_order_time(), self.quantity(favourite))]
                gift = rng.random() < 0.10
            elif r < 0.60:
                times = self.occasional_times(favourite)
            else:
                times = self.regular_times(favourite)

        if times:
            first_s = times[0][0]
            if rng.random() < 0.85:  # the account was opened at checkout
                created_s = first_s - rng.randrange(60, 900)
            else:  # an earlier newsletter sign-up
                created_s = first_s - rng.randrange(_DAY, 60 * _DAY)
        else:
            created_s = rng.randrange(0, self.now_s)
        accepts = planted or birthday_planted or rng.random() < 0.85
        created_at = self.at(created_s)

        order_count = total_spent = 0
        first_order_at = last_order_at = None
        for n, (t, quantity) in enumerate(times):
            placed_at, total, cancelled = self.order(chunk, i, t, favourite, quantity, n == 0,
                                                     brews_v60, gift, cancellable=not planted)
            if not cancelled:
                order_count += 1
                total_spent += total
                if first_order_at is None:
                    first_order_at = placed_at
                last_order_at = placed_at

        chunk.customers.append({
            "id": i, "external_id": f"demo-customer-{i:0{self.width}d}",
            "email": f"customer-{i:0{self.width}d}@example.com",
            "first_name": FIRST_NAMES[rng.randrange(len(FIRST_NAMES))],
            "last_name": LAST_NAMES[rng.randrange(len(LAST_NAMES))],
            "birthday": birthday, "birthday_md": birthday_key(birthday), "time_zone": tz,
            "accepts_marketing": accepts, "consent_at": created_at if accepts else None,
            "created_at": created_at, "order_count": order_count, "total_spent_cents": total_spent,
            "first_order_at": first_order_at, "last_order_at": last_order_at,
        })
        if wholesale:
            chunk.tags.append({"customer_id": i, "tag": "wholesale"})
        if not birthday_planted and (plant == 9 or (not planted and rng.random() < 0.02)):
            reason = SuppressionReason.BOUNCED if plant == 9 else SUPPRESSION_REASONS[pick(rng, self.reason_cum)]
            self.suppressed_written += 1
            chunk.suppressions.append({
                "id": self.suppressed_written, "email": f"customer-{i:0{self.width}d}@example.com",
                "reason": str(reason), "created_at": self.at(rng.randint(created_s, self.now_s)),
                "detail": "demo data",
            })

    def order(self, chunk: Chunk, customer_id: int, t: int, favourite: int, quantity: int, first: bool,
              brews_v60: bool, gift: bool, *, cancellable: bool) -> tuple[dt.datetime, int, bool]:
        rng = self.rng
        self.orders_written += 1
        order_id = self.orders_written
        placed_at = self.at(t)
        lines = gift_basket(rng) if gift else basket(rng, favourite, quantity, first, brews_v60)
        subtotal = 0
        for product, qty in lines:
            p = PRODUCTS[product]
            subtotal += p.price_cents * qty
            self.lines_written += 1
            chunk.lines.append({"id": self.lines_written, "order_id": order_id, "customer_id": customer_id,
                                "placed_at": placed_at, "sku": p.sku, "name": p.name, "quantity": qty,
                                "unit_price_cents": p.price_cents})
        code, percent = None, 0
        r = rng.random()
        if first and r < 0.06:
            code, percent = "WELCOME10", 10
        elif r < 0.03:
            code, percent = "BREWCLUB15", 15
        total = subtotal - subtotal * percent // 100
        cancelled = cancellable and rng.random() < 0.02
        cancelled_at = delivered_at = None
        if cancelled:
            cancelled_at = self.at(min(t + rng.randrange(600, 2 * _DAY), self.now_s))
        else:
            delivered = t + rng.randrange(2 * _DAY, 6 * _DAY + 1)
            if delivered <= self.now_s:
                delivered_at = self.at(delivered)
        chunk.orders.append({
            "id": order_id, "external_id": f"demo-{order_id:06d}", "name": f"#{1000 + order_id}",
            "customer_id": customer_id, "placed_at": placed_at, "delivered_at": delivered_at,
            "cancelled_at": cancelled_at, "subtotal_cents": subtotal, "total_cents": total, "currency": "USD",
            "discount_code": code,
        })
        return placed_at, total, cancelled


def pick(rng: random.Random, cumulative: list[int]) -> int:
    """An index drawn with the weights whose running sums are `cumulative`."""
    x = rng.random() * cumulative[-1]
    for n, bound in enumerate(cumulative):
        if x < bound:
            return n
    return len(cumulative) - 1
