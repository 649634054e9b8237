"""Abandoned checkouts for the demo shop: carts left in the hours before the demo's instant.

One customer in every CHECKOUT_EVERY (at least four) who ordered within the last few months and
may be emailed leaves a checkout of one or two coffees or teas, later than their last order, at
a different hour each; every fourth one was completed a few minutes later (the reminder must
never go out for it). Read and written set-based: one query for the customers, one insert per table.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, insert, select

from ..models import Checkout, CheckoutLine, Customer, Product, Suppression
from ..store import Store, utc_naive

CHECKOUT_EVERY = 80
MAX_CHECKOUTS = 1000
RECENT = dt.timedelta(days=120)  # customers this recent are within the shipped sunset policy (180 days)


def plant_checkouts(store: Store, *, now: dt.datetime, customers: int) -> int:
    """Add the demo's abandoned checkouts (abandoned before `now`) to a generated shop; returns how many."""
    now = utc_naive(now).replace(microsecond=0)
    wanted = min(MAX_CHECKOUTS, max(4, customers // CHECKOUT_EVERY))
    checkout, line = cast(Table, Checkout.__table__), cast(Table, CheckoutLine.__table__)
    with store.engine.begin() as conn:
        products = conn.execute(select(Product.sku, Product.name, Product.price_cents)
                                .where(Product.price_cents.is_not(None)).order_by(Product.id)).all()
        chosen = conn.execute(
            select(Customer.id, Customer.last_order_at)
            .outerjoin(Suppression, Suppression.email == Customer.email)
            .where(Customer.accepts_marketing, Suppression.id.is_(None),
                   Customer.last_order_at > now - RECENT, Customer.last_order_at < now - dt.timedelta(days=1))
            .order_by(Customer.id).limit(wanted)).all()
        if not products or not chosen:
            return 0
        checkouts, lines = [], []
        for n, (customer_id, last_order_at) in enumerate(chosen, start=1):
            # abandoned 4 to 28 hours ago, 37 minutes apart: reminders due before, at and after the demo's tick
            left = now - dt.timedelta(hours=4 + n % 24, minutes=37 * n % 60)
            left = max(left, last_order_at + dt.timedelta(hours=1))
            cart = [products[n % len(products)], *([products[(3 * n) % len(products)]] if n % 2 else [])]
            checkouts.append({
                "id": n, "external_id": f"demo-{n:05d}", "name": f"#{31000000000 + n}", "customer_id": customer_id,
                "created_at": left - dt.timedelta(minutes=12), "abandoned_at": left,
                "completed_at": left + dt.timedelta(minutes=9) if n % 4 == 0 else None,
                "recovery_url": f"https://shop.example.com/checkouts/demo-{n:05d}/recover?key=demo",
                "total_cents": sum(price for _, _, price in cart), "currency": "USD"})
            lines.extend({"checkout_id": n, "sku": sku, "name": name, "quantity": 1, "unit_price_cents": price}
                         for sku, name, price in cart)
        conn.execute(insert(checkout), checkouts)
        conn.execute(insert(line), lines)
    return len(checkouts)
