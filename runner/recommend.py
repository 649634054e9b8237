""""Often bought with": a product-affinity table rebuilt set-based, read per batch of emails."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Mapping

from sqlalchemy import Connection, delete, desc, func, insert, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from .models import Meta, Order, OrderLine, ProductAffinity
from .sql import dialect_insert

LOOKBACK = dt.timedelta(days=365)
REFRESH_EVERY = dt.timedelta(hours=24)
# What a customer bought within this long before the email is not offered to them again
# (unless the campaign's trigger sets `recommend_bought: true`, as replenishment does).
BOUGHT_LOOKBACK = dt.timedelta(days=365)
_STAMP = "affinity_refreshed_at"


def rebuild_affinity(conn: Connection, now: dt.datetime) -> None:
    """Rebuild product_affinity from the last year's orders in one INSERT ... SELECT, and stamp it.

    Runs inside the caller's transaction (an orders import rebuilds it with the orders it wrote).
    """
    a, b = aliased(OrderLine), aliased(OrderLine)
    pairs = (
        select(a.sku, b.sku, func.count(func.distinct(a.order_id)))
        .join(b, (b.order_id == a.order_id) & (b.sku != a.sku))
        .join(Order, Order.id == a.order_id)
        .where(a.placed_at > now - LOOKBACK, a.placed_at <= now, Order.cancelled_at.is_(None))
        .group_by(a.sku, b.sku)
    )
    conn.execute(delete(ProductAffinity))
    conn.execute(insert(ProductAffinity).from_select(["sku", "related_sku", "orders"], pairs))
    stamp = dialect_insert(conn, Meta).values(key=_STAMP, value=now.isoformat())
    conn.execute(stamp.on_conflict_do_update(index_elements=["key"], set_={"value": stamp.excluded.value}))


def refresh_affinity(session: Session, now: dt.datetime) -> None:
    """Rebuild product_affinity from the last year's orders and commit."""
    rebuild_affinity(session.connection(), now)
    session.commit()


def refresh_if_stale(session: Session, now: dt.datetime) -> bool:
    """Rebuild when the table is older than REFRESH_EVERY (or never built). Returns whether it did."""
    stamp = session.get(Meta, _STAMP)
    if stamp is not None and now - dt.datetime.fromisoformat(stamp.value) < REFRESH_EVERY:
        return False
    refresh_affinity(session, now)
    return True


def bought_recently(session: Session, customer_ids: Collection[int], now: dt.datetime,
                    lookback: dt.timedelta = BOUGHT_LOOKBACK) -> dict[int, set[str]]:
    """Each customer's SKUs from orders placed within `lookback` before `now` and not cancelled.

    One query for the whole batch, on the (customer_id, sku, placed_at) index.
    """
    bought: dict[int, set[str]] = defaultdict(set)
    if not customer_ids:
        return bought
    rows = session.execute(
        select(OrderLine.customer_id, OrderLine.sku).distinct()
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.customer_id.in_(set(customer_ids)), OrderLine.placed_at > now - lookback,
               OrderLine.placed_at <= now, Order.cancelled_at.is_(None)))
    for customer_id, sku in rows:
        bought[customer_id].add(sku)
    return bought


def related_skus(session: Session, skus_by_key: dict[str, list[str]], limit: int = 3,
                 excluded: Mapping[str, Collection[str]] | None = None) -> dict[str, list[str]]:
    """For each key's SKUs, the SKUs most often bought with them, best first, leaving out the key's own
    SKUs and its `excluded` ones (what the customer already bought).

    One query for the whole batch; keys without affinity get the best sellers of the table.
    """
    excluded = excluded or {}
    wanted = {sku for skus in skus_by_key.values() for sku in skus}
    scores: dict[str, dict[str, int]] = defaultdict(dict)
    if wanted:
        rows = session.execute(select(ProductAffinity.sku, ProductAffinity.related_sku, ProductAffinity.orders)
                               .where(ProductAffinity.sku.in_(wanted)))
        for sku, related, orders in rows:
            scores[sku][related] = orders
    left_out = {key: set(skus) | set(excluded.get(key, ())) for key, skus in skus_by_key.items()}
    # Enough best sellers that `limit` remain for the key that leaves out the most.
    reach = limit + max((len(skus) for skus in left_out.values()), default=0)
    best_sellers = list(session.execute(
        select(ProductAffinity.related_sku).group_by(ProductAffinity.related_sku)
        .order_by(desc(func.sum(ProductAffinity.orders)), ProductAffinity.related_sku).limit(reach)).scalars())
    return rank_related(skus_by_key, scores, left_out, best_sellers, limit)


def rank_related(skus_by_key: Mapping[str, Collection[str]], scores: Mapping[str, Mapping[str, int]],
                 left_out: Mapping[str, Collection[str]], best_sellers: list[str], limit: int) -> dict[str, list[str]]:
    """For each key, the SKUs with the most orders together with its SKUs (`scores`: SKU -> related SKU ->
    orders), ties by SKU, then the best sellers, leaving out `left_out`; at most `limit`."""
    result = {}
    for key, skus in skus_by_key.items():
        total: dict[str, int] = defaultdict(int)
        for sku in skus:
            for related, orders in scores.get(sku, {}).items():
                total[related] += orders
        ranked = [s for s, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0])) if s not in left_out[key]]
        ranked += [s for s in best_sellers if s not in left_out[key] and s not in ranked]
        result[key] = ranked[:limit]
    return result
