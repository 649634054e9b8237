"""The hand-written dispatch of bench/tick_floor.py: what `runner.dispatch.dispatch` does for the file
provider, with plain sqlite3, a plain jinja2 environment and lean stdlib MIME (bench/render.py).

Per campaign, batch by batch: claim the due sends (one UPDATE ... RETURNING with a lease and a claim
token, committed), skip those whose customer may no longer be mailed, load what the template contexts
need with one plain query per table for the whole batch, render, write each message as an `.eml`
file (a `.part` file renamed into place, as the file provider does) and record the batch as sent
with one executemany. The contexts are shaped by the runner's own pure functions (runner/context.py:
no store access, only dicts), fed with plain rows instead of ORM objects.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from render import PlainRenderer, lean_mime  # this script's folder is on sys.path

from runner.campaigns import Campaign
from runner.context import (
    Shop,
    _context,
    checkout_context,
    coupon_context,
    customer_context,
    lazy_nps,
    line_context,
    order_context,
    product_context,
)
from runner.dispatch import idempotency_key, message_headers
from runner.i18n.locales import locale_or_default
from runner.links.unsubscribe import unsubscribe_url
from runner.money import Money
from runner.recommend import BOUGHT_LOOKBACK, rank_related
from runner.timezones import zone_or_default
from runner.triggers.abandoned_checkout import checkout_id

LEASE = dt.timedelta(minutes=10)  # runner.dispatch.DeliveryPolicy's default
TIMESTAMPS = {"created_at", "first_order_at", "last_order_at", "placed_at", "delivered_at", "abandoned_at", "due_at"}
DATES = {"birthday"}


def stamp(moment: dt.datetime) -> str:
    """A naive-UTC instant as the store writes it."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def as_json(values: Iterable[object]) -> str:
    """A list of ids or SKUs as one parameter for `IN (SELECT value FROM json_each(?))`."""
    return "[" + ",".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values) + "]"


_row_types: dict[tuple[str, ...], Callable[..., Any]] = {}


def attribute_rows(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Any:
    """A row factory: a named tuple per column list (what runner/context.py reads by attribute), the
    timestamps parsed from the text the store keeps."""
    names = tuple(d[0] for d in cursor.description)
    make = _row_types.get(names)
    if make is None:
        kind = NamedTuple("Row", [(n, Any) for n in names])  # type: ignore[misc]
        parse = [dt.datetime.fromisoformat if n in TIMESTAMPS else dt.date.fromisoformat if n in DATES else None
                 for n in names]

        def make(*values: Any, kind: Any = kind, parse: list[Any] = parse) -> Any:
            return kind(*(p(v) if p is not None and v is not None else v for v, p in zip(values, parse, strict=True)))
        _row_types[names] = make
    return make(*row)


class Send(NamedTuple):
    id: int
    campaign_id: str
    occurrence_key: str
    customer_id: int
    order_id: int | None
    order_line_id: int | None
    due_at: dt.datetime
    reason: str
    variant: str | None
    step: int | None


Timer = Callable[[str], Any]  # a phase's name -> a context manager that adds its time to that phase


class FloorDispatch:
    """Sends a campaign's planned sends on a plain sqlite3 connection (isolation_level=None)."""

    def __init__(self, conn: sqlite3.Connection, renderer: PlainRenderer, shop: Shop, default_from: str,
                 outbox: Path, now: dt.datetime, batch_size: int, timer: Timer) -> None:
        self.conn, self.renderer, self.shop, self.default_from = conn, renderer, shop, default_from
        self.outbox, self.now, self.batch_size, self.timer = outbox, now, batch_size, timer
        self.now_text, self.date = stamp(now), now.replace(tzinfo=dt.UTC)

    def rows(self, sql: str, *params: object) -> list[Any]:
        cursor = self.conn.cursor()
        cursor.row_factory = attribute_rows
        return cursor.execute(sql, params).fetchall()

    def campaign(self, campaign: Campaign) -> int:
        """Every send of the campaign due for an attempt; returns how many were written."""
        written = 0
        folder = self.outbox / campaign.id
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            with self.timer("claim + record"):
                sends = self.claim(campaign)
                if not sends:
                    return written
                sends = self.still_allowed(campaign, sends)
            with self.timer("contexts"):
                contexts = self.contexts(campaign, sends)
            with self.timer("render"):
                rendered = [self.renderer.render(campaign.message_for(s.variant, s.step), c, self.default_from)
                            for s, c in zip(sends, contexts, strict=True)]
            with self.timer("MIME + write"):
                paths = []
                for send, context, email in zip(sends, contexts, rendered, strict=True):
                    headers = message_headers(campaign.id, send.id, context["unsubscribe_url"])
                    path = folder / f"{idempotency_key(send)}.eml"  # type: ignore[arg-type]
                    partial = path.with_suffix(".eml.part")
                    partial.write_bytes(lean_mime(email, context["customer"]["email"], headers, self.date))
                    os.replace(partial, path)
                    paths.append((str(path), send.id))
            with self.timer("claim + record"):
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.executemany(
                    "UPDATE send SET status = 'sent', sent_at = ?1, updated_at = ?1, provider = 'file', "
                    "provider_message_id = ?2, last_error = NULL, claim_token = NULL, lease_until = NULL "
                    "WHERE id = ?3", [(self.now_text, path, send_id) for path, send_id in paths])
                self.conn.execute("COMMIT")
            written += len(paths)

    def claim(self, campaign: Campaign) -> list[Send]:
        claimable = ("campaign_id = :campaign AND ((status = 'planned' AND next_attempt_at <= :now) "
                     "OR (status = 'sending' AND lease_until <= :now))")
        self.conn.execute("BEGIN IMMEDIATE")
        rows = self.conn.execute(
            f"UPDATE send SET status = 'sending', claim_token = :token, lease_until = :lease, "
            f"attempts = attempts + 1, updated_at = :now "
            f"WHERE id IN (SELECT id FROM send WHERE {claimable} ORDER BY id LIMIT :batch) "
            f"RETURNING id, campaign_id, occurrence_key, customer_id, order_id, order_line_id, due_at, reason, "
            f"variant, step",
            {"campaign": campaign.id, "now": self.now_text, "token": uuid.uuid4().hex,
             "lease": stamp(self.now + LEASE), "batch": self.batch_size}).fetchall()
        self.conn.execute("COMMIT")
        return sorted(Send(*r[:6], dt.datetime.fromisoformat(r[6]), *r[7:]) for r in rows)

    def still_allowed(self, campaign: Campaign, sends: list[Send]) -> list[Send]:
        """The sends whose customer may still be mailed; the others are recorded as skipped."""
        blocked = dict(self.conn.execute(
            "SELECT c.id, CASE WHEN s.id IS NOT NULL THEN 'suppressed' ELSE 'no_consent' END "
            "FROM customer c LEFT JOIN suppression s ON s.email = c.email "
            "WHERE c.id IN (SELECT value FROM json_each(?)) AND (s.id IS NOT NULL OR ? AND NOT c.accepts_marketing)",
            (as_json({s.customer_id for s in sends}), campaign.marketing)).fetchall())
        if not blocked:
            return [s._replace(variant=campaign.variant_to_send(s.variant, s.customer_id)) for s in sends]
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            "UPDATE send SET status = 'skipped', skip_reason = ?, claim_token = NULL, lease_until = NULL, "
            "updated_at = ? WHERE id = ?",
            [(blocked[s.customer_id], self.now_text, s.id) for s in sends if s.customer_id in blocked])
        self.conn.execute("COMMIT")
        return [s._replace(variant=campaign.variant_to_send(s.variant, s.customer_id))
                for s in sends if s.customer_id not in blocked]

    def contexts(self, campaign: Campaign, sends: Sequence[Send]) -> list[dict[str, Any]]:
        """One template context per send, as runner.context.build_contexts makes them, from plain queries."""
        shop, now = self.shop, self.now
        customer_ids = as_json({s.customer_id for s in sends})
        order_ids = as_json({s.order_id for s in sends if s.order_id is not None})
        customers = {c.id: c for c in self.rows(
            "SELECT * FROM customer WHERE id IN (SELECT value FROM json_each(?))", customer_ids)}
        tags: dict[int, list[str]] = defaultdict(list)
        for customer_id, tag in self.conn.execute(
                "SELECT customer_id, tag FROM customer_tag WHERE customer_id IN (SELECT value FROM json_each(?)) "
                "ORDER BY tag", (customer_ids,)):
            tags[customer_id].append(tag)
        latest: dict[int, tuple[str, str, int]] = {}
        for customer_id, currency, spent, last_placed in self.conn.execute(
                "SELECT customer_id, currency, sum(total_cents), max(placed_at) FROM orders "
                "WHERE customer_id IN (SELECT value FROM json_each(?)) AND cancelled_at IS NULL "
                "GROUP BY customer_id, currency", (customer_ids,)):
            if customer_id not in latest or last_placed > latest[customer_id][0]:
                latest[customer_id] = (last_placed, currency, int(spent))
        orders = {o.id: o for o in self.rows("SELECT * FROM orders WHERE id IN (SELECT value FROM json_each(?))",
                                             order_ids)}
        lines: dict[int, list[Any]] = defaultdict(list)
        for line in self.rows("SELECT * FROM order_line WHERE order_id IN (SELECT value FROM json_each(?)) "
                              "ORDER BY id", order_ids):
            lines[line.order_id].append(line)
        checkout_of = ({s.occurrence_key: checkout_id(s.occurrence_key) for s in sends}
                       if campaign.trigger.about == "checkout" else {})
        checkouts: dict[int, Any] = {}
        cart: dict[int, list[Any]] = defaultdict(list)
        if checkout_of:
            checkout_ids = as_json(set(checkout_of.values()))
            checkouts = {c.id: c for c in self.rows(
                "SELECT * FROM checkout WHERE id IN (SELECT value FROM json_each(?))", checkout_ids)}
            for cart_line in self.rows("SELECT * FROM checkout_line WHERE checkout_id IN "
                                       "(SELECT value FROM json_each(?)) ORDER BY id", checkout_ids):
                cart[cart_line.checkout_id].append(cart_line)
        bought_lines = {s.occurrence_key: lines.get(s.order_id or -1) or cart.get(checkout_of.get(s.occurrence_key, -1))
                        or [] for s in sends}
        bought: dict[int, set[str]] = defaultdict(set)
        if not campaign.trigger.params.recommend_bought:
            for customer_id, sku in self.conn.execute(
                    "SELECT DISTINCT l.customer_id, l.sku FROM order_line l JOIN orders o ON o.id = l.order_id "
                    "WHERE l.customer_id IN (SELECT value FROM json_each(?)) AND l.placed_at > ? "
                    "AND l.placed_at <= ? AND o.cancelled_at IS NULL",
                    (customer_ids, stamp(now - BOUGHT_LOOKBACK), self.now_text)):
                bought[customer_id].add(sku)
        related = self.related({k: [ln.sku for ln in group] for k, group in bought_lines.items()},
                               {s.occurrence_key: bought.get(s.customer_id, set()) for s in sends})
        wanted = ({ln.sku for group in [*lines.values(), *cart.values()] for ln in group}
                  | {sku for skus in related.values() for sku in skus})
        products = {p.sku: p for p in self.rows(
            "SELECT sku, name, url, image_url, price_cents FROM product WHERE sku IN (SELECT value FROM json_each(?))",
            as_json(wanted))}

        contexts = []
        for send in sends:
            customer = customers[send.customer_id]
            zone = zone_or_default(customer.time_zone, shop.default_zone)
            locale = locale_or_default(customer.locale, shop.locale)
            _, currency, spent = latest.get(customer.id, ("", shop.currency, 0))
            order = orders.get(send.order_id) if send.order_id is not None else None
            money_in = order.currency if order else currency
            order_lines = lines.get(send.order_id or -1, [])
            line_ctx = [line_context(ln, products.get(ln.sku), money_in, locale, shop) for ln in order_lines]
            this_line = next((ctx for ln, ctx in zip(order_lines, line_ctx, strict=True)
                              if ln.id == send.order_line_id), None)
            checkout = checkouts.get(checkout_of.get(send.occurrence_key, -1))
            checkout_ctx = checkout_context(
                checkout, [line_context(ln, products.get(ln.sku), checkout.currency, locale, shop)
                           for ln in cart.get(checkout.id, [])], zone, locale, shop) if checkout else None
            contexts.append(_context(
                campaign, shop, now, locale,
                customer_context(customer, tags.get(customer.id, []), zone, Money(spent, currency, locale)),
                order_context(order, line_ctx, zone, locale) if order else None, checkout_ctx, line_ctx, this_line,
                [product_context(products[s], money_in, locale) for s in related[send.occurrence_key]
                 if s in products],
                send.occurrence_key, send.due_at, send.reason,
                unsubscribe_url(shop.public_url, shop.signing_key, customer.id, customer.email), send.variant,
                send.step, lazy_nps(shop.public_url, shop.signing_key, send.id),
                coupon_context(campaign, shop, send.occurrence_key, None)))
        return contexts

    def related(self, skus_by_key: dict[str, list[str]], excluded: dict[str, set[str]],
                limit: int = 3) -> dict[str, list[str]]:
        """runner.recommend.related_skus with plain queries: the SKUs most often bought with each key's."""
        scores: dict[str, dict[str, int]] = defaultdict(dict)
        wanted = {sku for skus in skus_by_key.values() for sku in skus}
        if wanted:
            for sku, related, orders in self.conn.execute(
                    "SELECT sku, related_sku, orders FROM product_affinity WHERE sku IN "
                    "(SELECT value FROM json_each(?))", (as_json(wanted),)):
                scores[sku][related] = orders
        left_out = {key: set(skus) | excluded.get(key, set()) for key, skus in skus_by_key.items()}
        reach = limit + max((len(skus) for skus in left_out.values()), default=0)
        best_sellers = [sku for (sku,) in self.conn.execute(
            "SELECT related_sku FROM product_affinity GROUP BY related_sku ORDER BY sum(orders) DESC, related_sku "
            "LIMIT ?", (reach,))]
        return rank_related(skus_by_key, scores, left_out, best_sellers, limit)  # the same ranking in Python
