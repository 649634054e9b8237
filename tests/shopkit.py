"""Test helpers: a builder that writes customers and orders into a real store, and campaign files."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

from sqlalchemy import insert as sa_insert
from sqlmodel import select

from runner.importers.aggregates import refresh_customer_aggregates
from runner.models import Customer, Order, OrderLine, Product, Suppression, birthday_key
from runner.store import Store

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


SIGNED_UP = utc(2020, 1, 1)  # when test customers opened their accounts, unless a test says otherwise


class ShopBuilder:
    """Writes customers and orders straight into a real store, the way an import would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._orders = 0

    def customer(self, email: str, *, consent: bool = True, birthday: dt.date | None = None,
                 time_zone: str | None = None, first_name: str = "Ada",
                 created_at: dt.datetime = SIGNED_UP, **extra: Any) -> int:
        with self.store.session() as session:
            row = Customer(email=email, first_name=first_name, last_name="Tester", birthday=birthday,
                           birthday_md=birthday_key(birthday), time_zone=time_zone, accepts_marketing=consent,
                           created_at=_naive(created_at), **extra)
            session.add(row)
            session.commit()
            return row.id  # type: ignore[return-value]

    def order(self, customer_id: int, placed_at: dt.datetime, lines: list[tuple[str, int]] | None = None, *,
              cancelled: bool | dt.datetime = False, delivered_at: dt.datetime | None = None,
              total_cents: int = 2500, discount_code: str | None = None, currency: str = "USD") -> int:
        """`cancelled`: True cancels the order as it is placed, an instant cancels it then."""
        placed = _naive(placed_at)
        self._orders += 1
        cancelled_at = _naive(cancelled) if isinstance(cancelled, dt.datetime) else (placed if cancelled else None)
        with self.store.session() as session:
            order = Order(external_id=f"ext-{self._orders}-{customer_id}", name=f"#{1000 + self._orders}",
                          customer_id=customer_id, placed_at=placed, total_cents=total_cents,
                          subtotal_cents=total_cents, discount_code=discount_code, currency=currency,
                          cancelled_at=cancelled_at, delivered_at=_naive(delivered_at) if delivered_at else None)
            session.add(order)
            session.flush()
            for sku, quantity in lines or [("MUG-STONEWARE", 1)]:
                if session.exec(select(Product).where(Product.sku == sku)).first() is None:
                    session.add(Product(sku=sku, name=sku.title(), url=f"https://shop.example.com/{sku}",
                                        price_cents=1250))
                session.add(OrderLine(order_id=order.id, customer_id=customer_id, placed_at=placed, sku=sku,
                                      name=sku.title(), quantity=quantity, unit_price_cents=1250))
            refresh_customer_aggregates(session, [customer_id])
            session.commit()
            return order.id  # type: ignore[return-value]

    def suppress(self, email: str, reason: str = "unsubscribed") -> None:
        with self.store.session() as session:
            session.add(Suppression(email=email, reason=reason, created_at=dt.datetime(2020, 1, 1)))
            session.commit()


def _naive(moment: dt.datetime) -> dt.datetime:
    """The store's form: naive UTC (naive input is taken as UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def write_campaign(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = textwrap.dedent(text).strip() + "\n"
    campaign_id = next(line.split(":", 1)[1].strip() for line in body.splitlines() if line.startswith("id:"))
    path = folder / f"{campaign_id}.yaml"
    path.write_text(body, encoding="utf-8")
    return path


BULK_PLACED = dt.datetime(2026, 11, 20, 9, 0)  # bulk_shop's orders: thank-you is due at 11:00


def bulk_shop(store: Store, customers: int, placed: dt.datetime = BULK_PLACED) -> None:
    """Customers 1..`customers`, one order each, all placed at `placed` (naive UTC): as many thank-you
    emails due two hours later."""
    with store.engine.begin() as connection:
        connection.execute(sa_insert(Product), [{"sku": "MUG", "name": "Mug", "url": "https://shop.example/mug"}])
        connection.execute(sa_insert(Customer), [
            {"id": n, "email": f"c{n}@example.com", "first_name": f"C{n}", "last_name": "", "accepts_marketing": True,
             "created_at": placed, "order_count": 1, "total_spent_cents": 1200, "first_order_at": placed,
             "last_order_at": placed} for n in range(1, customers + 1)])
        connection.execute(sa_insert(Order), [
            {"id": n, "external_id": f"o{n}", "name": f"#{n}", "customer_id": n, "placed_at": placed,
             "subtotal_cents": 1200, "total_cents": 1200, "currency": "USD"} for n in range(1, customers + 1)])
        connection.execute(sa_insert(OrderLine), [
            {"order_id": n, "customer_id": n, "placed_at": placed, "sku": "MUG", "name": "Mug", "quantity": 1,
             "unit_price_cents": 1200} for n in range(1, customers + 1)])
