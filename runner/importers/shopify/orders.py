"""Importing Shopify's orders export (one row per line item) into the store, all or nothing."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, delete, insert, select

from ...recommend import rebuild_affinity
from ...store import Store, utc_naive
from ..aggregates import refresh_customer_aggregates
from ..cells import (
    KEEP,
    MAX_STORED,
    Keep,
    derived_sku,
    largest_amount,
    parse_bool,
    parse_cents,
    parse_optional_timestamp,
    parse_quantity,
    parse_timestamp,
    read_email,
    strip_id,
)
from ..reader import Export, Row, Sheet, open_sheet
from ..report import ImportReport, Progress, report_progress
from ..writing import CHUNK_ROWS, CUSTOMER, ORDER_LINE, ORDERS, PRODUCT, by_id_update, in_chunks, upsert
from ..zones import zone_for_address

EXPORT = Export("Shopify orders export",
                "in the Shopify admin use Orders > Export and import that file unchanged")
ORDER_GROUP_HINT = ("Shopify writes the order columns (Email, Created at, Total, ...) only on the first row of "
                    "each order and repeats just Name and the Lineitem columns below it; import the export "
                    "unchanged, with each order's rows together")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
NO_CURRENCY = "XXX"  # ISO 4217's code for "no currency": checks the lines of an order whose own row is bad


@dataclass(slots=True)
class _LineIn:
    sku: str
    name: str
    quantity: int
    unit_price_cents: int


@dataclass(slots=True)
class _OrderIn:
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
    lines: list[_LineIn] = field(default_factory=list)
    line_total: int = 0  # the subtotal when the file gives none


_ORDER_FIELDS = ("external_id", "name", "customer_id", "placed_at", "delivered_at", "cancelled_at",
                 "subtotal_cents", "total_cents", "currency", "discount_code")
_LINE_FIELDS = ("customer_id", "placed_at", "sku", "name", "quantity", "unit_price_cents")


class _OrderImport:
    def __init__(self, conn: Connection, sheet: Sheet, zone: ZoneInfo, now: dt.datetime,
                 report: ImportReport) -> None:
        self.conn, self.sheet, self.zone, self.now, self.report = conn, sheet, zone, now, report
        self.name = sheet.require("Name")
        self.email = sheet.require("Email")
        self.created = sheet.require("Created at")
        self.currency = sheet.require("Currency")
        self.total = sheet.require("Total")
        self.quantity = sheet.require("Lineitem quantity")
        self.line_name = sheet.require("Lineitem name")
        self.price = sheet.require("Lineitem price")
        self.sku = sheet.require("Lineitem sku")
        self.external_id = sheet.column("Id")
        self.subtotal = sheet.column("Subtotal")
        self.discount = sheet.column("Discount Code")
        self.cancelled = sheet.column("Cancelled at")
        self.delivered = sheet.column("Delivered at")
        self.accepts = sheet.column("Accepts Marketing")
        self.addresses = [(sheet.column(f"{kind} Country"), sheet.column(f"{kind} Province"))
                          for kind in ("Shipping", "Billing")]
        self.ids_seen: dict[str, int] = {}
        self.skus_warned: set[str] = set()
        self.affected: set[int] = set()
        self.currencies: Counter[str] = Counter()

    def parse_order(self, row: Row, name: str) -> _OrderIn:
        if not row.get(self.created):
            raise row.error(self.created, f"this is the first row of order {name}, but its order columns "
                                          "(Created at, Total, ...) are empty", ORDER_GROUP_HINT)
        external_id = strip_id(row.get(self.external_id)) or name
        if external_id in self.ids_seen:
            raise row.error(self.external_id if self.external_id is not None else self.name,
                            f"order {external_id} is already on row {self.ids_seen[external_id]}",
                            ORDER_GROUP_HINT)
        self.ids_seen[external_id] = row.number
        currency = row.get(self.currency).upper()
        if not _CURRENCY.match(currency):
            raise row.error(self.currency, f"{currency!r} is not a three-letter currency code like EUR")
        self.currencies[currency] += 1
        time_zone = None
        for country, province in self.addresses:
            if row.get(country):
                time_zone = zone_for_address(row.get(country), row.get(province))
                break
        return _OrderIn(
            row=row.number, name=name, external_id=external_id,
            email=read_email(row, self.email, required=False),
            placed_at=row.parse(self.created, lambda raw: parse_timestamp(raw, self.zone)),
            cancelled_at=row.parse(self.cancelled, lambda raw: parse_optional_timestamp(raw, self.zone)),
            delivered_at=(KEEP if self.delivered is None else
                          row.parse(self.delivered, lambda raw: parse_optional_timestamp(raw, self.zone))),
            subtotal_cents=(row.parse(self.subtotal, lambda raw: parse_cents(raw, currency))
                            if row.get(self.subtotal) else None),
            total_cents=row.parse(self.total, lambda raw: parse_cents(raw, currency)),
            currency=currency,
            discount_code=row.get(self.discount) or None,
            accepts_marketing=row.parse(self.accepts, parse_bool),
            time_zone=time_zone,
        )

    def parse_line(self, row: Row, order: _OrderIn | None) -> None:
        """Add the row's line item to `order`, or only check it when the order's own row is bad (None)."""
        name, sku = row.get(self.line_name), row.get(self.sku)
        if not name and not sku:
            raise row.error(self.line_name, "the line item has neither a name nor a SKU")
        if not sku:
            sku = derived_sku(name)
            if sku not in self.skus_warned:
                self.skus_warned.add(sku)
                self.report.warn(f"row {row.number}: line item {name!r} has no SKU; it is stored as {sku}")
        currency = order.currency if order is not None else NO_CURRENCY
        line = _LineIn(sku=sku, name=name, quantity=row.parse(self.quantity, parse_quantity),
                       unit_price_cents=row.parse(self.price, lambda raw: parse_cents(raw, currency)))
        if order is None:
            return
        order.lines.append(line)
        order.line_total += line.quantity * line.unit_price_cents
        if order.subtotal_cents is None and order.line_total > MAX_STORED:
            raise row.error(self.price, f"the lines of order {order.name} add up to more than the store holds (at "
                                        f"most {largest_amount(currency)})", "give the order its Subtotal")

    def flush(self, orders: list[_OrderIn]) -> None:
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
            self._write_orders(live, self._customer_ids(live))

    def _customer_ids(self, orders: list[_OrderIn]) -> dict[str, int]:
        """Customer id per email, creating the customers the store does not have yet."""
        def by_email(keys: list[str]) -> Any:
            return select(CUSTOMER.c.email, CUSTOMER.c.id).where(CUSTOMER.c.email.in_(keys))

        ids = {row.email: row.id for row in in_chunks(self.conn, by_email, [o.email for o in orders])}
        new: dict[str, dict[str, Any]] = {}
        for order in orders:
            if order.email not in ids and order.email not in new:
                new[order.email] = {
                    "email": order.email, "accepts_marketing": order.accepts_marketing,
                    "consent_at": self.now if order.accepts_marketing else None,
                    "time_zone": order.time_zone, "created_at": self.now,
                }
        if new:
            self.conn.execute(insert(CUSTOMER), list(new.values()))
            ids.update((row.email, row.id) for row in in_chunks(self.conn, by_email, list(new)))
            self.report.customers_created += len(new)
        return ids

    def _write_orders(self, orders: list[_OrderIn], customer_ids: dict[str, int]) -> None:
        conn = self.conn
        existing = {row.external_id: row for row in in_chunks(
            conn, lambda keys: select(ORDERS.c.id, *(ORDERS.c[name] for name in _ORDER_FIELDS)).where(
                ORDERS.c.external_id.in_(keys)), [o.external_id for o in orders])}
        old_lines: dict[int, list[Any]] = defaultdict(list)
        for line in in_chunks(conn, lambda keys: select(ORDER_LINE).where(ORDER_LINE.c.order_id.in_(keys))
                               .order_by(ORDER_LINE.c.order_id, ORDER_LINE.c.id), [r.id for r in existing.values()]):
            old_lines[line.order_id].append(line)

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
            lines_changed = [tuple(getattr(old, k) for k in _LINE_FIELDS) for old in previous] != [
                tuple(line[k] for k in _LINE_FIELDS) for line in lines]
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
                    if any(getattr(old, k) != line[k] for k in _LINE_FIELDS):
                        line_updates.append(line | {"_id": old.id})
                else:
                    line_inserts.append(line | {"order_id": before.id})
            line_deletes.extend({"_id": old.id} for old in previous[len(lines):])

        if order_updates:
            conn.execute(by_id_update(ORDERS), order_updates)
        if new_orders:
            conn.execute(insert(ORDERS), [values for values, _ in new_orders])
            order_ids = {row.external_id: row.id for row in in_chunks(
                conn, lambda keys: select(ORDERS.c.external_id, ORDERS.c.id).where(ORDERS.c.external_id.in_(keys)),
                [values["external_id"] for values, _ in new_orders])}
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

    def _write_products(self, orders: list[_OrderIn]) -> None:
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


def import_orders(store: Store, path: str | Path, *, default_zone: ZoneInfo, now: dt.datetime,
                  shop_currency: str | None = None, progress: Progress | None = None) -> ImportReport:
    """Import a Shopify orders export (one row per line item) into the store, all or nothing.

    Rows are grouped by Name; the order columns are read from each order's first row.
    Timestamps without an offset are taken in `default_zone`. Customers named by an order
    but missing from the store are created (consent from the order's Accepts Marketing).
    Customer aggregates are refreshed for every customer whose orders changed, and the
    product-affinity table is rebuilt when any did; an import that changes no order leaves the
    store untouched. Orders in
    another currency than `shop_currency` (LIFECYCLE_SHOP_CURRENCY), when given, get a warning
    at the top of the report. Raises DataImportError listing every bad row; the store is then
    untouched.
    """
    report = ImportReport(str(path))
    with open_sheet(path, EXPORT) as sheet, store.engine.begin() as conn:
        importer = _OrderImport(conn, sheet, default_zone, utc_naive(now), report)
        finished: set[str] = set()
        pending: list[_OrderIn] = []
        pending_lines = 0
        current_name: str | None = None
        current: _OrderIn | None = None  # None while reading an order whose first row is bad
        for row in sheet.rows():
            report.rows_read += 1
            name = row.get(importer.name)
            if not name:
                sheet.record(row.problem(importer.name, "the order name is empty", ORDER_GROUP_HINT))
                continue
            if name != current_name:
                if current is not None:
                    pending.append(current)
                    pending_lines += len(current.lines)
                    if pending_lines >= CHUNK_ROWS:
                        importer.flush(pending)
                        pending, pending_lines = [], 0
                        report_progress(progress, report.rows_read - 1)
                if current_name is not None:
                    finished.add(current_name)
                current_name, current = name, None
                if name in finished:
                    sheet.record(row.problem(importer.name, f"this row belongs to order {name}, whose other rows "
                                                            "are further up", ORDER_GROUP_HINT))
                    continue
                current = sheet.check(importer.parse_order, row, name)
            sheet.check(importer.parse_line, row, current)
        if current is not None:
            pending.append(current)
        importer.flush(pending)
        importer.finish()
        sheet.finish()
        if shop_currency is not None:
            importer.check_currency(shop_currency)
    report_progress(progress, report.rows_read)
    return report
