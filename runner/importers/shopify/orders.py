"""Importing Shopify's orders export (one row per line item) into the store, all or nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from ...store import Store, utc_naive
from ..cells import (
    KEEP,
    MAX_STORED,
    derived_sku,
    largest_amount,
    parse_bool,
    parse_cents,
    parse_currency,
    parse_optional_timestamp,
    parse_quantity,
    parse_timestamp,
    read_email,
    strip_id,
)
from ..orders import LineIn, OrderIn, OrderWriter
from ..reader import Export, Row, Sheet, open_sheet
from ..report import ImportReport, Progress, report_progress
from ..writing import CHUNK_ROWS
from ..zones import zone_for_address

EXPORT = Export("Shopify orders export",
                "in the Shopify admin use Orders > Export and import that file unchanged")
ORDER_GROUP_HINT = ("Shopify writes the order columns (Email, Created at, Total, ...) only on the first row of "
                    "each order and repeats just Name and the Lineitem columns below it; import the export "
                    "unchanged, with each order's rows together")
NO_CURRENCY = "XXX"  # ISO 4217's code for "no currency": checks the lines of an order whose own row is bad


class _OrderImport(OrderWriter):
    """Reads Shopify's orders export; writing is the shared OrderWriter's."""

    def __init__(self, conn: Connection, sheet: Sheet, zone: ZoneInfo, now: dt.datetime,
                 report: ImportReport) -> None:
        super().__init__(conn, sheet, now, report)
        self.zone = zone
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

    def parse_order(self, row: Row, name: str) -> OrderIn:
        if not row.get(self.created):
            raise row.error(self.created, f"this is the first row of order {name}, but its order columns "
                                          "(Created at, Total, ...) are empty", ORDER_GROUP_HINT)
        external_id = strip_id(row.get(self.external_id)) or name
        if external_id in self.ids_seen:
            raise row.error(self.external_id if self.external_id is not None else self.name,
                            f"order {external_id} is already on row {self.ids_seen[external_id]}",
                            ORDER_GROUP_HINT)
        self.ids_seen[external_id] = row.number
        currency = row.parse(self.currency, parse_currency)
        self.currencies[currency] += 1
        time_zone = None
        for country, province in self.addresses:
            if row.get(country):
                time_zone = zone_for_address(row.get(country), row.get(province))
                break
        return OrderIn(
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

    def parse_line(self, row: Row, order: OrderIn | None) -> None:
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
        line = LineIn(sku=sku, name=name, quantity=row.parse(self.quantity, parse_quantity),
                       unit_price_cents=row.parse(self.price, lambda raw: parse_cents(raw, currency)))
        if order is None:
            return
        order.lines.append(line)
        order.line_total += line.quantity * line.unit_price_cents
        if order.subtotal_cents is None and order.line_total > MAX_STORED:
            raise row.error(self.price, f"the lines of order {order.name} add up to more than the store holds (at "
                                        f"most {largest_amount(currency)})", "give the order its Subtotal")


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
        pending: list[OrderIn] = []
        pending_lines = 0
        current_name: str | None = None
        current: OrderIn | None = None  # None while reading an order whose first row is bad
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
