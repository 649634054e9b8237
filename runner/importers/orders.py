"""Writing parsed orders into the store, set-based and all or nothing, for every orders import format.

A format module parses its rows into `OrderIn` (with `LineIn` lines) and hands them to an
`OrderWriter` in chunks; the writer creates the customers it does not know (by email), upserts
products, orders and lines (changed rows only, so a re-import of the same file changes nothing),
and at the end refreshes what the store derives from orders.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, delete, insert, select

from ..privacy.consent import imported_from
from ..recommend import rebuild_affinity
from .aggregates import refresh_customer_aggregates
from .cells import KEEP, Keep
from .people import customer_ids
from .reader import Sheet
from .report import ImportReport
from .writing import ORDER_LINE, ORDERS, PRODUCT, by_id_update, children_of, ids_by_key, in_chunks, rows_by_key, upsert


@dataclass(slots=True)
class LineIn:
    sku: str
    name: str
    quantity: int
    unit_price_cents: int


@dataclass(slots=True)
class OrderIn:
    row: int
    name: str
    external_id: str
    email: str
    placed_at: dt.datetime
    cancelled_at: dt.datetime | None
    delivered_at: dt.datetime | Literal[Keep.KEEP] | None
    subtotal_cents: int | None
    total_cents: int
    currency: str
    discount_code: str | None
    accepts_marketing: bool
    time_zone: str | None
    lines: list[LineIn] = field(default_factory=list)
    line_total: int = 0  # the subtotal when the file gives none


ORDER_FIELDS = ("external_id", "name", "customer_id", "placed_at", "delivered_at", "cancelled_at",
                 "subtotal_cents", "total_cents", "currency", "discount_code")
LINE_FIELDS = ("customer_id", "placed_at", "sku", "name", "quantity", "unit_price_cents")


class OrderWriter:
    """Writes chunks of parsed orders within the import's transaction; nothing once the sheet has a bad row."""

    def __init__(self, conn: Connection, sheet: Sheet, now: dt.datetime, report: ImportReport) -> None:
        self.conn, self.sheet, self.now, self.report = conn, sheet, now, report
        self.source = imported_from(report.path)
        self.affected: set[int] = set()
        self.currencies: Counter[str] = Counter()

    def flush(self, orders: list[OrderIn]) -> None:
        if not orders or not self.sheet.clean:
            return
        self._write_products(orders)
        live = []
        for order in orders:
            if order.email:
                live.append(order)
            else:
                self.report.orders_skipped += 1
                self.report.warn(f"row {order.row}: order {order.name} has no email address; skipped")
        if live:
            self._write_orders(live, customer_ids(self.conn, live, self.now, self.source, self.report))

    def _write_orders(self, orders: list[OrderIn], customer_ids: dict[str, int]) -> None:
        conn = self.conn
        existing = rows_by_key(conn, ORDERS, "external_id", ORDER_FIELDS, [o.external_id for o in orders])
        old_lines = children_of(conn, ORDER_LINE, "order_id", [r.id for r in existing.values()])

        new_orders: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        order_updates: list[dict[str, Any]] = []
        line_inserts: list[dict[str, Any]] = []
        line_updates: list[dict[str, Any]] = []
        line_deletes: list[dict[str, Any]] = []
        for order in orders:
            customer_id = customer_ids[order.email]
            before = existing.get(order.external_id)
            values = {
                "external_id": order.external_id, "name": order.name, "customer_id": customer_id,
                "placed_at": order.placed_at,
                "delivered_at": (order.delivered_at if order.delivered_at is not KEEP
                                 else before.delivered_at if before is not None else None),
                "cancelled_at": order.cancelled_at,
                "subtotal_cents": order.subtotal_cents if order.subtotal_cents is not None else order.line_total,
                "total_cents": order.total_cents, "currency": order.currency,
                "discount_code": order.discount_code,
            }
            lines = [{"customer_id": customer_id, "placed_at": order.placed_at, "sku": line.sku, "name": line.name,
                      "quantity": line.quantity, "unit_price_cents": line.unit_price_cents} for line in order.lines]
            if before is None:
                new_orders.append((values, lines))
                self.affected.add(customer_id)
                continue
            order_changed = any(getattr(before, name) != value for name, value in values.items())
            previous = old_lines[before.id]
            lines_changed = [tuple(getattr(old, k) for k in LINE_FIELDS) for old in previous] != [
                tuple(line[k] for k in LINE_FIELDS) for line in lines]
            if not (order_changed or lines_changed):
                continue
            self.report.orders_updated += 1
            self.affected.update((customer_id, before.customer_id))
            if order_changed:
                order_updates.append(values | {"_id": before.id})
            # Reconcile lines by position, so unchanged lines keep their ids.
            for position, line in enumerate(lines):
                if position < len(previous):
                    old = previous[position]
                    if any(getattr(old, k) != line[k] for k in LINE_FIELDS):
                        line_updates.append(line | {"_id": old.id})
                else:
                    line_inserts.append(line | {"order_id": before.id})
            line_deletes.extend({"_id": old.id} for old in previous[len(lines):])

        if order_updates:
            conn.execute(by_id_update(ORDERS), order_updates)
        if new_orders:
            conn.execute(insert(ORDERS), [values for values, _ in new_orders])
            order_ids = ids_by_key(conn, ORDERS, "external_id", [values["external_id"] for values, _ in new_orders])
            for values, lines in new_orders:
                line_inserts.extend(line | {"order_id": order_ids[values["external_id"]]} for line in lines)
            self.report.orders_created += len(new_orders)
        if line_deletes:
            conn.execute(delete(ORDER_LINE).where(ORDER_LINE.c.id == bindparam("_id")), line_deletes)
        if line_updates:
            conn.execute(by_id_update(ORDER_LINE), line_updates)
        if line_inserts:
            conn.execute(insert(ORDER_LINE), line_inserts)
        self.report.lines += len(line_updates) + len(line_inserts)

    def _write_products(self, orders: list[OrderIn]) -> None:
        """Create products named by order lines; update one only from a line newer than its last update."""
        latest: dict[str, tuple[dt.datetime, str, int]] = {}
        for order in orders:
            for line in order.lines:
                seen = latest.get(line.sku)
                if seen is None or order.placed_at > seen[0]:
                    latest[line.sku] = (order.placed_at, line.name, line.unit_price_cents)
        existing = {row.sku: row for row in in_chunks(
            self.conn, lambda keys: select(PRODUCT.c.sku, PRODUCT.c.name, PRODUCT.c.price_cents,
                                           PRODUCT.c.updated_at).where(PRODUCT.c.sku.in_(keys)), list(latest))}
        rows = []
        for sku, (placed_at, name, price) in latest.items():
            before = existing.get(sku)
            if before is None:
                self.report.products_created += 1
            elif before.updated_at is not None and placed_at <= before.updated_at:
                continue
            elif before.name != name or before.price_cents != price:
                self.report.products_updated += 1
            rows.append({"sku": sku, "name": name, "price_cents": price, "updated_at": placed_at})
        upsert(self.conn, PRODUCT, rows, "sku", ("name", "price_cents", "updated_at"))

    def finish(self) -> None:
        """Bring what the store derives from orders up to date, only when orders really changed."""
        if self.affected and self.sheet.clean:
            refresh_customer_aggregates(self.conn, self.affected)
            rebuild_affinity(self.conn, self.now)

    def check_currency(self, shop_currency: str) -> None:
        """Warn (first) when orders are in another currency than the shop's: totals would add them up as its."""
        others = {code: count for code, count in self.currencies.most_common() if code != shop_currency}
        if not others:
            return
        parts = [f"{code} ({count})" for code, count in others.items()]
        which = next(iter(others)) if len(others) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        total, foreign = sum(self.currencies.values()), sum(others.values())
        orders = "the orders are" if foreign == total else f"{foreign} of {total} orders are"
        self.report.warn(f"{orders} in {which}, not in the shop's currency {shop_currency} (LIFECYCLE_SHOP_CURRENCY): "
                         f"customer totals and total_spent audience filters count their amounts as {shop_currency}; "
                         "set LIFECYCLE_SHOP_CURRENCY to the currency the shop sells in", first=True)


