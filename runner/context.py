"""The template context: customer, order or checkout, lines, products and recommendations, loaded per batch.

A batch of N emails costs a fixed handful of IN-queries, never a query per email.
docs/templates.md documents every field.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, func, select
from sqlmodel import Session, SQLModel

from .campaigns import Campaign
from .coupons.generated import generated_code
from .i18n.locales import DEFAULT_LOCALE, locale_or_default
from .links.nps import nps_context
from .links.unsubscribe import unsubscribe_url
from .models import Checkout, CheckoutLine, Customer, CustomerTag, Order, OrderLine, Product
from .money import Money
from .recommend import bought_recently, related_skus
from .settings import REVIEW_URL
from .timezones import zone_or_default
from .triggers.abandoned_checkout import checkout_id


class Item(Protocol):
    """What a context is built for: a ledger row or a previewed occurrence."""

    occurrence_key: str
    customer_id: int
    order_id: int | None
    order_line_id: int | None
    due_at: dt.datetime
    reason: str
    variant: str | None
    step: int | None


@dataclass(frozen=True)
class Shop:
    name: str
    url: str
    address: str
    public_url: str
    signing_key: bytes
    default_zone: ZoneInfo
    currency: str = "USD"
    locale: str = DEFAULT_LOCALE
    review_url: str = REVIEW_URL.default  # a pattern with {sku} and {product_url}
    coupon_secret: bytes = b""  # the key of generated coupon codes (runner/coupons/)

    def as_context(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "address": self.address}


class Lazy(Mapping[str, Any]):
    """A context value built on its first read: a template that never reads it never pays for it
    (the NPS question's eleven signed links, which most templates do not show)."""

    __slots__ = ("_build", "_value")

    def __init__(self, build: Callable[[], Mapping[str, Any]]) -> None:
        self._build = build
        self._value: Mapping[str, Any] | None = None

    def _built(self) -> Mapping[str, Any]:
        if self._value is None:
            self._value = self._build()
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())

    def __repr__(self) -> str:
        return repr(self._built())


def lazy_nps(public_url: str, key: bytes, send_id: int | None) -> Lazy:
    """`nps` in the template, its links signed when a template first reads it."""
    return Lazy(lambda: nps_context(public_url, key, send_id))


def review_url(pattern: str, sku: str, product: Product | None, shop_url: str) -> str:
    """Where to review one product bought: the pattern with its SKU (URL-encoded) and its product page
    (the shop's home page when the catalogue has none)."""
    page = product.url if product is not None and product.url else shop_url
    return pattern.replace("{product_url}", page).replace("{sku}", quote(sku, safe=""))


def _local(moment: dt.datetime | None, zone: ZoneInfo) -> dt.datetime | None:
    return moment.replace(tzinfo=dt.UTC).astimezone(zone) if moment else None


def product_context(product: Product | None, currency: str, locale: str) -> dict[str, Any] | None:
    if product is None:
        return None
    price = Money(product.price_cents, currency, locale) if product.price_cents is not None else None
    return {"sku": product.sku, "name": product.name, "url": product.url, "image_url": product.image_url,
            "price": price}


def customer_context(customer: Customer, tags: list[str], zone: ZoneInfo, spent: Money) -> dict[str, Any]:
    return {
        "id": customer.id, "email": customer.email, "first_name": customer.first_name,
        "last_name": customer.last_name, "full_name": f"{customer.first_name} {customer.last_name}".strip(),
        "birthday": customer.birthday, "time_zone": zone.key, "locale": spent.locale,
        "order_count": customer.order_count, "total_spent": spent, "currency": spent.currency,
        "first_order_at": _local(customer.first_order_at, zone), "last_order_at": _local(customer.last_order_at, zone),
        "created_at": _local(customer.created_at, zone), "tags": tags,
    }


def line_context(line: OrderLine | CheckoutLine, product: Product | None, currency: str, locale: str,
                 shop: Shop) -> dict[str, Any]:
    return {"sku": line.sku, "name": line.name or (product.name if product else line.sku),
            "quantity": line.quantity, "unit_price": Money(line.unit_price_cents, currency, locale),
            "total": Money(line.unit_price_cents * line.quantity, currency, locale),
            "product": product_context(product, currency, locale),
            "review_url": review_url(shop.review_url, line.sku, product, shop.url)}


def order_context(order: Order, lines: list[dict[str, Any]], zone: ZoneInfo, locale: str) -> dict[str, Any]:
    return {"id": order.id, "number": order.name or order.external_id, "placed_at": _local(order.placed_at, zone),
            "delivered_at": _local(order.delivered_at, zone),
            "subtotal": Money(order.subtotal_cents, order.currency, locale),
            "total": Money(order.total_cents, order.currency, locale), "currency": order.currency,
            "discount_code": order.discount_code, "lines": lines}


def checkout_context(checkout: Checkout, lines: list[dict[str, Any]], zone: ZoneInfo, locale: str,
                     shop: Shop) -> dict[str, Any]:
    return {"id": checkout.id, "number": checkout.name or checkout.external_id,
            "created_at": _local(checkout.created_at, zone), "abandoned_at": _local(checkout.abandoned_at, zone),
            "recovery_url": checkout.recovery_url or shop.url,
            "total": Money(checkout.total_cents, checkout.currency, locale), "currency": checkout.currency,
            "lines": lines}


def customer_spending(session: Session, customer_ids: Collection[int]) -> dict[int, tuple[str, int]]:
    """Each customer's currency, that of their latest order, and what they spent in it (minor units).

    Amounts in different currencies are never added up: a customer who ordered in two currencies
    is shown the spend in the latest one. Cancelled orders do not count. One query per batch.
    """
    latest: dict[int, tuple[dt.datetime, str, int]] = {}
    rows = session.execute(
        select(Order.customer_id, Order.currency, func.sum(Order.total_cents), func.max(Order.placed_at))
        .where(Order.customer_id.in_(set(customer_ids)), Order.cancelled_at.is_(None))
        .group_by(Order.customer_id, Order.currency))
    for customer_id, currency, spent, last_placed in rows:
        if customer_id not in latest or last_placed > latest[customer_id][0]:
            latest[customer_id] = (last_placed, currency, int(spent))
    return {customer_id: (currency, spent) for customer_id, (_, currency, spent) in latest.items()}


def coupon_context(campaign: Campaign, shop: Shop, key: str, pool_code: str | None) -> dict[str, Any] | None:
    """`coupon` in the template: the send's own code, generated or handed out from the pool (`pool_code`;
    where there is none, for a preview or a test send, a text saying where the code will come from)."""
    spec = campaign.coupon
    if spec is None:
        return None
    if spec.generate is not None:
        return {"code": generated_code(shop.coupon_secret, spec.generate, campaign.id, key), "pool": None}
    return {"code": pool_code or f"(from pool {spec.pool})", "pool": spec.pool}


def _rows(session: Session, model: type[SQLModel], condition: ColumnElement[bool],
          *order_by: Any) -> Iterator[Any]:
    """The model's rows that meet `condition`, as result rows read by attribute like the model's instances
    (the context only reads them): a batch loads a few thousand, without the ORM's instances, identity
    map and change tracking."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return iter(session.execute(select(table).where(condition).order_by(*order_by)))


def build_contexts(session: Session, campaign: Campaign, items: Sequence[Item], shop: Shop,
                   now: dt.datetime, pool_codes: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One template context per item, in order; `pool_codes`: the code each item (by occurrence key)
    got from the campaign's coupon pool.

    Each customer reads their email in their own locale (else the shop's); order amounts are in the
    order's currency, and the customer's totals and product prices in the currency of the order the
    email is about, else of the customer's latest order, else the shop's.
    """
    customer_ids = {i.customer_id for i in items}
    order_ids = {i.order_id for i in items if i.order_id is not None}
    customers = {c.id: c for c in _rows(session, Customer, Customer.id.in_(customer_ids))}
    tags: dict[int, list[str]] = defaultdict(list)
    for customer_id, tag in session.execute(select(CustomerTag.customer_id, CustomerTag.tag)
                                            .where(CustomerTag.customer_id.in_(customer_ids))
                                            .order_by(CustomerTag.tag)):
        tags[customer_id].append(tag)
    spending = customer_spending(session, customer_ids)
    orders = {o.id: o for o in _rows(session, Order, Order.id.in_(order_ids))}
    lines: dict[int, list[OrderLine]] = defaultdict(list)
    for line in _rows(session, OrderLine, OrderLine.order_id.in_(order_ids), OrderLine.id):
        lines[line.order_id].append(line)
    checkout_of = ({i.occurrence_key: checkout_id(i.occurrence_key) for i in items}
                   if campaign.trigger.about == "checkout" else {})
    checkouts = {c.id: c for c in _rows(session, Checkout, Checkout.id.in_(set(checkout_of.values())))
                 } if checkout_of else {}
    cart: dict[int, list[CheckoutLine]] = defaultdict(list)
    if checkouts:
        for cart_line in _rows(session, CheckoutLine, CheckoutLine.checkout_id.in_(checkouts), CheckoutLine.id):
            cart[cart_line.checkout_id].append(cart_line)
    bought_lines = {i.occurrence_key: lines.get(i.order_id or -1) or cart.get(checkout_of.get(i.occurrence_key, -1))
                    or [] for i in items}
    bought = {} if campaign.trigger.params.recommend_bought else bought_recently(session, customer_ids, now)
    related = related_skus(session, {key: [ln.sku for ln in group] for key, group in bought_lines.items()},
                           excluded={i.occurrence_key: bought.get(i.customer_id, set()) for i in items})
    wanted = ({ln.sku for group in [*lines.values(), *cart.values()] for ln in group}
              | {s for skus in related.values() for s in skus})
    products = {p.sku: p for p in _rows(session, Product, Product.sku.in_(wanted))}

    contexts = []
    for item in items:
        customer = customers[item.customer_id]
        zone = zone_or_default(customer.time_zone, shop.default_zone)
        locale = locale_or_default(customer.locale, shop.locale)
        currency, spent = spending.get(customer.id, (shop.currency, 0))
        order = orders.get(item.order_id) if item.order_id is not None else None
        money_in = order.currency if order else currency
        line_ctx = [line_context(ln, products.get(ln.sku), money_in, locale, shop)
                    for ln in lines.get(item.order_id or -1, [])]
        this_line = next((ctx for ln, ctx in zip(lines.get(item.order_id or -1, []), line_ctx, strict=True)
                          if ln.id == item.order_line_id), None)
        checkout = checkouts.get(checkout_of.get(item.occurrence_key, -1))
        checkout_ctx = checkout_context(
            checkout, [line_context(ln, products.get(ln.sku), checkout.currency, locale, shop)
                       for ln in cart.get(checkout.id or -1, [])], zone, locale, shop) if checkout else None
        contexts.append(_context(
            campaign, shop, now, locale,
            customer_context(customer, tags.get(customer.id, []), zone, Money(spent, currency, locale)),
            order_context(order, line_ctx, zone, locale) if order else None, checkout_ctx, line_ctx, this_line,
            [product_context(products[s], money_in, locale) for s in related[item.occurrence_key] if s in products],
            item.occurrence_key, item.due_at, item.reason,
            unsubscribe_url(shop.public_url, shop.signing_key, customer.id, customer.email), item.variant,
            item.step,
            # ledger rows have an id; previews and test sends have none, and get sample score links
            lazy_nps(shop.public_url, shop.signing_key, getattr(item, "id", None)),
            coupon_context(campaign, shop, item.occurrence_key, (pool_codes or {}).get(item.occurrence_key))))
    return contexts


def sample_context(campaign: Campaign, shop: Shop, now: dt.datetime, variant: str | None = None,
                   step: int | None = None) -> dict[str, Any]:
    """A context shaped like a real send of this campaign (of `variant` or journey `step`), for
    `lifecycle validate` to render each template against: `order` and `lines` only when the trigger
    is about an order, `line` only when it is about an order line, so a template that needs more
    than a send has is refused."""
    zone, locale, currency = shop.default_zone, shop.locale, shop.currency
    placed = now - dt.timedelta(days=3)
    coffee = Product(sku="SAMPLE-COFFEE", name="House Blend 1kg", url=shop.url, image_url=None, price_cents=2400)
    mug = Product(sku="SAMPLE-MUG", name="Stoneware Mug", url=shop.url, image_url=None, price_cents=1800)
    customer = Customer(id=0, email="sample@example.com", first_name="Sam", last_name="Sample",
                        birthday=dt.date(1990, 2, 28), time_zone=zone.key, accepts_marketing=True, created_at=placed,
                        order_count=3, total_spent_cents=9600, first_order_at=placed - dt.timedelta(days=200),
                        last_order_at=placed)
    lines = [OrderLine(id=0, order_id=0, customer_id=0, placed_at=placed, sku=coffee.sku, name=coffee.name,
                       quantity=2, unit_price_cents=2400)]
    line_ctx = [line_context(lines[0], coffee, currency, locale, shop)]
    order = Order(id=0, external_id="sample", name="#1001", customer_id=0, placed_at=placed,
                  delivered_at=placed + dt.timedelta(days=2), subtotal_cents=4800, total_cents=4800,
                  currency=currency, discount_code="WELCOME10")
    about = campaign.trigger.about
    key = campaign.trigger.sample_key(0, now, currency)
    order_ctx = order_context(order, line_ctx, zone, locale) if about in ("order", "order_line") else None
    checkout = Checkout(id=0, external_id="sample", name="#C1001", customer_id=0,
                        created_at=now - dt.timedelta(hours=5), abandoned_at=now - dt.timedelta(hours=4),
                        recovery_url=f"{shop.url.rstrip('/')}/checkouts/sample", total_cents=4800, currency=currency)
    checkout_ctx = checkout_context(checkout, line_ctx, zone, locale, shop) if about == "checkout" else None
    return _context(
        campaign, shop, now, locale, customer_context(customer, ["vip"], zone, Money(9600, currency, locale)),
        order_ctx, checkout_ctx, line_ctx if order_ctx else [], line_ctx[0] if about == "order_line" else None,
        [product_context(mug, currency, locale)], key, now, "sample",
        f"{shop.public_url.rstrip('/')}/unsubscribe/sample", variant, step,
        nps_context(shop.public_url, shop.signing_key, None), coupon_context(campaign, shop, key, None))


def _context(campaign: Campaign, shop: Shop, now: dt.datetime, locale: str, customer: dict[str, Any],
             order: dict[str, Any] | None, checkout: dict[str, Any] | None, lines: list[dict[str, Any]],
             line: dict[str, Any] | None,
             recommendations: list[dict[str, Any] | None], key: str, due_at: dt.datetime, reason: str,
             unsubscribe: str, variant: str | None, step: int | None, nps: Mapping[str, Any],
             coupon: dict[str, Any] | None) -> dict[str, Any]:
    """The one shape of a template context (docs/templates.md)."""
    params = dict(campaign.message_for(variant, step).params)
    steps = len(campaign.spec.steps)
    occurrence = {**campaign.trigger.facts(key, customer), "key": key, "due_at": due_at.replace(tzinfo=dt.UTC),
                  "reason": reason}
    return {
        "customer": customer, "order": order, "checkout": checkout, "lines": lines, "line": line,
        "recommendations": recommendations, "shop": shop.as_context(),
        "campaign": {"id": campaign.id, "name": campaign.spec.name, "params": params, "variant": variant},
        "params": params,
        "occurrence": occurrence, "unsubscribe_url": unsubscribe, "nps": nps, "now": now.replace(tzinfo=dt.UTC),
        "step": {"number": campaign.step_to_send(step), "count": steps} if steps else None,
        "locale": locale, "coupon": coupon,
    }
