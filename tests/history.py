"""A shop with a random but seeded history around a period, campaigns that use every trigger and the
time-dependent audience filters, and the same store cut back to an instant."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from shopkit import ShopBuilder, write_campaign
from sqlalchemy import delete, select, update

from runner.importers.aggregates import refresh_customer_aggregates
from runner.models import Customer, Order, OrderLine, ReorderForecast
from runner.store import Store

SKUS = ("COFFEE-HOUSE-250G", "COFFEE-HOUSE-1KG", "TEA-SENCHA-100G", "MUG-STONEWARE")
ZONES = (None, "Europe/Berlin", "America/New_York", "Asia/Tokyo")

# Short delays and lapses, so that a period of a few weeks holds every kind of outcome.
CAMPAIGNS = {
    "lapse": """
        id: lapse
        name: Lapsed after six days
        trigger: {type: lapsed, after: 6d}
        audience:
          - {field: order_count, gte: 1}
        message: {template: winback, subject: "We miss you"}
        expire_after: 1d
    """,
    "lapse-new": """
        id: lapse-new
        name: Lapsed newcomers
        trigger: {type: lapsed, after: 3d}
        audience:
          - {field: created_at, older_than: 12d}
          - {field: first_order_at, within: 30d}
          - {field: last_order_at, older_than: 2d}
          - {field: order_count, lt: 4}
        message: {template: winback, subject: "Come back"}
        expire_after: 2d
    """,
    "thanks": """
        id: thanks
        name: Thank-you
        kind: transactional
        trigger: {type: order, event: placed, delay: 2h}
        message: {template: thank_you, subject: "Thanks"}
        expire_after: 1h
    """,
    "delivered": """
        id: delivered
        name: After delivery, for repeat buyers
        trigger: {type: order, event: delivered, delay: 1d}
        audience:
          - {field: order_count, gte: 2}
          - {field: total_spent, lt: 150}
          - {field: segment, not_in: [vip, lapsed]}
        message: {template: thank_you, subject: "How was it?"}
        expire_after: 12h
    """,
    "refill": """
        id: refill
        name: Refill
        trigger:
          type: replenishment
          cycles: {"COFFEE-*-1KG": 5d, "COFFEE-*": 2d, "TEA-*": 3d}
          lead: 12h
          max_quantity: 3
        audience:
          - {field: total_spent, gte: 30}
        message: {template: replenishment, subject: "Running low?"}
        expire_after: 1d
    """,
    "vip": """
        id: vip
        name: Milestones
        trigger: {type: milestone, orders: [2], spent: [80]}
        message: {template: vip_milestone, subject: "Thank you"}
        expire_after: 1d
    """,
    "reorder": """
        id: reorder
        name: Predicted reorder
        trigger: {type: predicted_reorder, orders: 3, before: 1d, min_interval: 2d}
        message: {template: predicted_reorder, subject: "Time to reorder?"}
        expire_after: 1d
    """,
    "anniv": """
        id: anniv
        name: Anniversary
        trigger: {type: anniversary, hour: 10}
        message: {template: anniversary, subject: "A year already"}
        expire_after: 1d
    """,
    "bday": """
        id: bday
        name: Birthday
        trigger: {type: birthday, hour: 9}
        message: {template: birthday, subject: "Happy birthday"}
        expire_after: 1d
    """,
}


def write_campaigns(folder: Path) -> None:
    for text in CAMPAIGNS.values():
        write_campaign(folder, text)


def build_history(shop: ShopBuilder, start: dt.datetime, end: dt.datetime, *, customers: int = 30,
                  seed: int = 1) -> None:
    """Customers and orders from 20 days before `start` to 10 days after `end` (naive UTC): orders on
    the hour (as ticks are) and between, some cancelled later (some after `end`), delivered ones,
    customers created during the period, birthdays in it, no consent and suppressions here and there."""
    rng = random.Random(seed)
    first, last = start - dt.timedelta(days=20), end + dt.timedelta(days=10)
    span = int((last - first).total_seconds())

    def moment() -> dt.datetime:
        at = first + dt.timedelta(seconds=rng.randrange(span))
        return at.replace(minute=0, second=0) if rng.random() < 0.4 else at

    for n in range(customers):
        times = sorted(moment() for _ in range(rng.choice((0, 1, 1, 2, 3, 4, 6))))
        if rng.random() < 0.25:  # a customer since an earlier year, first ordering on a day of the period
            day = start + dt.timedelta(days=rng.randrange((end - start).days + 1), seconds=rng.randrange(86400))
            times.insert(0, day.replace(year=day.year - rng.randint(1, 3)))
        created = (times[0] if times else moment()) - dt.timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        birthday = None
        if rng.random() < 0.6:
            day = start + dt.timedelta(days=rng.randrange((end - start).days + 1))
            birthday = dt.date(1980 + n, day.month, day.day)
        customer = shop.customer(f"c{n}@example.com", consent=rng.random() < 0.8, birthday=birthday,
                                 time_zone=rng.choice(ZONES), created_at=created)
        if rng.random() < 0.07:
            shop.suppress(f"c{n}@example.com")
        for placed in times:
            lines = [(rng.choice(SKUS), rng.randint(1, 3)) for _ in range(rng.randint(1, 2))]
            cancelled: bool | dt.datetime = False
            delivered = None
            if rng.random() < 0.2:
                cancelled = placed + dt.timedelta(minutes=rng.randrange(5, 4 * 24 * 60))
            else:
                delivered = placed + dt.timedelta(hours=rng.randrange(20, 100))
            shop.order(customer, placed, lines, cancelled=cancelled, delivered_at=delivered,
                       total_cents=rng.randrange(1000, 9000))


def cut_back(store: Store, at: dt.datetime) -> None:
    """The store as it was at `at`: later orders and customers removed, later cancellations and
    deliveries not happened yet, the customers' aggregates and reorder forecasts recomputed."""
    with store.session() as session:
        later = select(Order.id).where(Order.placed_at > at)
        session.execute(delete(OrderLine).where(OrderLine.order_id.in_(later)))
        session.execute(delete(ReorderForecast))  # derived from the orders: rebuilt below
        session.execute(delete(Order).where(Order.placed_at > at))
        session.execute(update(Order).where(Order.cancelled_at > at).values(cancelled_at=None))
        session.execute(update(Order).where(Order.delivered_at > at).values(delivered_at=None))
        session.execute(delete(Customer).where(Customer.created_at > at))
        refresh_customer_aggregates(session)
        session.commit()
