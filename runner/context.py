"""The template context: customer, order, lines, products and recommendations, loaded per batch.

A batch of N emails costs a fixed handful of IN-queries, never a query per email.
docs/templates.md documents every field.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from .campaigns import Campaign
from .models import Customer, CustomerTag, Order, OrderLine, Product
from .money import Money
from .recommend import bought_recently, related_skus
from .timezones import zone_or_default
from .unsubscribe import unsubscribe_url


class Item(Protocol):
    """What a context is built for: a ledger row or a previewed occurrence."""

    occurrence_key: str
    customer_id: int
    order_id: int | None
    order_line_id: int | None
    due_at: dt.datetime
    reason: str


@dataclass(frozen=True)
class Shop:
    name: str
    url: str
    address: str
    public_url: str
    signing_key: bytes
    default_zone: ZoneInfo
    currency: str = "USD"

    def as_context(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "address": self.address}


def _local(moment: dt.datetime | None, zone: ZoneInfo) -> dt.datetime | None:
    return moment.replace(tzinfo=dt.UTC).astimezone(zone) if moment else None


def product_context(product: Product | None, currency: str) -> dict[str, Any] | None:
    if product is None:
        return None
    price = Money(product.price_cents, currency) if product.price_cents is not None else None
    return {"sku": product.sku, "name": product.name, "url": product.url, "image_url": product.image_url,
            "price": price}


def customer_context(customer: Customer, tags: list[str], zone: ZoneInfo, currency: str) -> dict[str, Any]:
    return {
        "id": customer.id, "email": customer.email, "first_name": customer.first_name,
        "last_name": customer.last_name, "full_name": f"{customer.first_name} {customer.last_name}".strip(),
        "birthday": customer.birthday, "time_zone": zone.key, "order_count": customer.order_count,
        "total_spent": Money(customer.total_spent_cents, currency),
        "first_order_at": _local(customer.first_order_at, zone), "last_order_at": _local(customer.last_order_at, zone),
        "tags": tags,
    }


def line_context(line: OrderLine, product: Product | None, currency: str) -> dict[str, Any]:
    return {"sku": line.sku, "name": line.name or (product.name if product else line.sku),
            "quantity": line.quantity, "unit_price": Money(line.unit_price_cents, currency),
            "total": Money(line.unit_price_cents * line.quantity, currency),
            "product": product_context(product, currency)}


def order_context(order: Order, lines: list[dict[str, Any]], zone: ZoneInfo) -> dict[str, Any]:
    return {"id": order.id, "number": order.name or order.external_id, "placed_at": _local(order.placed_at, zone),
            "delivered_at": _local(order.delivered_at, zone), "subtotal": Money(order.subtotal_cents, order.currency),
            "total": Money(order.total_cents, order.currency), "currency": order.currency,
            "discount_code": order.discount_code, "lines": lines}


def build_contexts(session: Session, campaign: Campaign, items: Sequence[Item], shop: Shop,
                   now: dt.datetime) -> list[dict[str, Any]]:
    """One template context per item, in order."""
    customer_ids = {i.customer_id for i in items}
    order_ids = {i.order_id for i in items if i.order_id is not None}
    customers = {c.id: c for c in session.exec(select(Customer).where(Customer.id.in_(customer_ids))).scalars()}
    tags: dict[int, list[str]] = defaultdict(list)
    for customer_id, tag in session.execute(select(CustomerTag.customer_id, CustomerTag.tag)
                                            .where(CustomerTag.customer_id.in_(customer_ids))
                                            .order_by(CustomerTag.tag)):
        tags[customer_id].append(tag)
    orders = {o.id: o for o in session.exec(select(Order).where(Order.id.in_(order_ids))).scalars()}
    lines: dict[int, list[OrderLine]] = defaultdict(list)
    query = select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.id)
    for line in session.exec(query).scalars():
        lines[line.order_id].append(line)
    bought = {} if campaign.trigger.params.recommend_bought else bought_recently(session, customer_ids, now)
    related = related_skus(session, {i.occurrence_key: [ln.sku for ln in lines.get(i.order_id or -1, [])]
                                     for i in items},
                           excluded={i.occurrence_key: bought.get(i.customer_id, set()) for i in items})
    wanted = {ln.sku for group in lines.values() for ln in group} | {s for skus in related.values() for s in skus}
    products = {p.sku: p for p in session.exec(select(Product).where(Product.sku.in_(wanted))).scalars()}

    contexts = []
    for item in items:
        customer = customers[item.customer_id]
        zone = zone_or_default(customer.time_zone, shop.default_zone)
        order = orders.get(item.order_id) if item.order_id is not None else None
        money_in = order.currency if order else shop.currency
        line_ctx = [line_context(ln, products.get(ln.sku), money_in) for ln in lines.get(item.order_id or -1, [])]
        this_line = next((ctx for ln, ctx in zip(lines.get(item.order_id or -1, []), line_ctx, strict=True)
                          if ln.id == item.order_line_id), None)
        contexts.append(_context(
            campaign, shop, now, customer_context(customer, tags.get(customer.id, []), zone, money_in),
            order_context(order, line_ctx, zone) if order else None, line_ctx, this_line,
            [product_context(products[s], money_in) for s in related[item.occurrence_key] if s in products],
            {"key": item.occurrence_key, "due_at": item.due_at.replace(tzinfo=dt.UTC), "reason": item.reason},
            unsubscribe_url(shop.public_url, shop.signing_key, customer.id, customer.email)))
    return contexts


def sample_context(campaign: Campaign, shop: Shop, now: dt.datetime) -> dict[str, Any]:
    """A context shaped like a real send of this campaign, for `lifecycle validate` to render each
    template against: `order` and `lines` only when the trigger is about an order, `line` only
    when it is about an order line, so a template that needs more than a send has is refused."""
    zone = shop.default_zone
    placed = now - dt.timedelta(days=3)
    coffee = Product(sku="SAMPLE-COFFEE", name="House Blend 1kg", url=shop.url, image_url=None, price_cents=2400)
    mug = Product(sku="SAMPLE-MUG", name="Stoneware Mug", url=shop.url, image_url=None, price_cents=1800)
    customer = Customer(id=0, email="sample@example.com", first_name="Sam", last_name="Sample",
                        birthday=dt.date(1990, 2, 28), time_zone=zone.key, accepts_marketing=True, created_at=placed,
                        order_count=3, total_spent_cents=9600, first_order_at=placed - dt.timedelta(days=200),
                        last_order_at=placed)
    lines = [OrderLine(id=0, order_id=0, customer_id=0, placed_at=placed, sku=coffee.sku, name=coffee.name,
                       quantity=2, unit_price_cents=2400)]
    line_ctx = [line_context(lines[0], coffee, shop.currency)]
    order = Order(id=0, external_id="sample", name="#1001", customer_id=0, placed_at=placed,
                  delivered_at=placed + dt.timedelta(days=2), subtotal_cents=4800, total_cents=4800,
                  currency=shop.currency, discount_code="WELCOME10")
    about = campaign.trigger.about
    order_ctx = order_context(order, line_ctx, zone) if about != "customer" else None
    return _context(
        campaign, shop, now, customer_context(customer, ["vip"], zone, shop.currency), order_ctx,
        line_ctx if order_ctx else [], line_ctx[0] if about == "order_line" else None,
        [product_context(mug, shop.currency)],
        {"key": "sample", "due_at": now.replace(tzinfo=dt.UTC), "reason": "sample"},
        f"{shop.public_url.rstrip('/')}/unsubscribe/sample")


def _context(campaign: Campaign, shop: Shop, now: dt.datetime, customer: dict[str, Any],
             order: dict[str, Any] | None, lines: list[dict[str, Any]], line: dict[str, Any] | None,
             recommendations: list[dict[str, Any] | None], occurrence: dict[str, Any],
             unsubscribe: str) -> dict[str, Any]:
    """The one shape of a template context (docs/templates.md)."""
    params = dict(campaign.spec.message.params)
    return {
        "customer": customer, "order": order, "lines": lines, "line": line,
        "recommendations": recommendations, "shop": shop.as_context(),
        "campaign": {"id": campaign.id, "name": campaign.spec.name, "params": params}, "params": params,
        "occurrence": occurrence, "unsubscribe_url": unsubscribe, "now": now.replace(tzinfo=dt.UTC),
    }
