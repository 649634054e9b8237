""""Often bought with": a product-affinity table rebuilt set-based, read per batch of emails."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import delete, desc, func, insert, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from .models import Meta, Order, OrderLine, ProductAffinity

LOOKBACK = dt.timedelta(days=365)
REFRESH_EVERY = dt.timedelta(hours=24)
_STAMP = "affinity_refreshed_at"


def refresh_affinity(session: Session, now: dt.datetime) -> None:
    """Rebuild product_affinity from the last year's orders in one INSERT ... SELECT."""
    a, b = aliased(OrderLine), aliased(OrderLine)
    pairs = (
        select(a.sku, b.sku, func.count(func.distinct(a.order_id)))
        .join(b, (b.order_id == a.order_id) & (b.sku != a.sku))
        .join(Order, Order.id == a.order_id)
        .where(a.placed_at > now - LOOKBACK, a.placed_at <= now, Order.cancelled_at.is_(None))
        .group_by(a.sku, b.sku)
    )
    session.execute(delete(ProductAffinity))
    session.execute(insert(ProductAffinity).from_select(["sku", "related_sku", "orders"], pairs))
    stamp = session.get(Meta, _STAMP) or Meta(key=_STAMP, value="")
    stamp.value = now.isoformat()
    session.add(stamp)
    session.commit()


def refresh_if_stale(session: Session, now: dt.datetime) -> bool:
    """Rebuild when the table is older than REFRESH_EVERY (or never built). Returns whether it did."""
    stamp = session.get(Meta, _STAMP)
    if stamp is not None and now - dt.datetime.fromisoformat(stamp.value) < REFRESH_EVERY:
        return False
    refresh_affinity(session, now)
    return True


def related_skus(session: Session, skus_by_key: dict[str, list[str]], limit: int = 3) -> dict[str, list[str]]:
    """For each key's SKUs, the SKUs most often bought with them (excluding their own), best first.

    One query for the whole batch; keys without affinity get the best sellers of the table.
    """
    wanted = {sku for skus in skus_by_key.values() for sku in skus}
    scores: dict[str, dict[str, int]] = defaultdict(dict)
    if wanted:
        rows = session.execute(select(ProductAffinity.sku, ProductAffinity.related_sku, ProductAffinity.orders)
                               .where(ProductAffinity.sku.in_(wanted)))
        for sku, related, orders in rows:
            scores[sku][related] = orders
    best_sellers = list(session.execute(
        select(ProductAffinity.related_sku).group_by(ProductAffinity.related_sku)
        .order_by(desc(func.sum(ProductAffinity.orders)), ProductAffinity.related_sku).limit(limit * 3)).scalars())
    result = {}
    for key, skus in skus_by_key.items():
        total: dict[str, int] = defaultdict(int)
        for sku in skus:
            for related, orders in scores.get(sku, {}).items():
                total[related] += orders
        own = set(skus)
        ranked = [s for s, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0])) if s not in own]
        ranked += [s for s in best_sellers if s not in own and s not in ranked]
        result[key] = ranked[:limit]
    return result
