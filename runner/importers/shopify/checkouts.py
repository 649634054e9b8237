"""Importing Shopify's abandoned checkouts export into the store, all or nothing.

The export is laid out like the orders export: one row per line item, the checkout's own columns on
its first row only. A checkout is keyed by its `Id`; its customer is found by email (case ignored) or
created, with consent from the checkout's `Accepts Marketing`. A re-import updates checkouts in place
and writes nothing for a checkout that did not change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, delete, insert

from ...privacy.consent import imported_from
from ...store import Store, utc_naive
from ..cells import (
    derived_sku,
    parse_bool,
    parse_cents,
    parse_currency,
    parse_optional_timestamp,
    parse_quantity,
    parse_timestamp,
    read_email,
    strip_id,
)
from ..groups import grouped_rows
from ..orders import LineIn
from ..people import customer_ids
from ..reader import Export, Row, Sheet, open_sheet
from ..report import ImportReport, Progress, report_progress
from ..writing import CHECKOUT, CHECKOUT_LINE, CHUNK_ROWS, by_id_update, children_of, ids_by_key, rows_by_key

EXPORT = Export("Shopify abandoned checkouts export",
                "in the Shopify admin use Orders > Abandoned checkouts > Export and import that file unchanged")
GROUP_HINT = ("Shopify writes the checkout columns (Email, Created at, Total, ...) only on the first row of each "
              "checkout and repeats just Id and the Lineitem columns below it; import the export unchanged, with "
              "each checkout's rows together")
RECOVERY_URL_COLUMNS = ("Abandoned Checkout URL", "Recovery URL", "Checkout URL")


@dataclass(slots=True)
class CheckoutIn:
    row: int
    external_id: str
    name: str
    email: str
    created_at: dt.datetime
    abandoned_at: dt.datetime
    completed_at: dt.datetime | None
    recovery_url: str | None
    total_cents: int
    currency: str
    accepts_marketing: bool
    time_zone: str | None = None  # the export's addresses are not read: the shop's zone
    lines: list[LineIn] = field(default_factory=list)


CHECKOUT_FIELDS = ("external_id", "name", "customer_id", "created_at", "abandoned_at", "completed_at",
                   "recovery_url", "total_cents", "currency")
LINE_FIELDS = ("sku", "name", "quantity", "unit_price_cents")


class _CheckoutImport:
    def __init__(self, conn: Connection, sheet: Sheet, zone: ZoneInfo, now: dt.datetime,
                 report: ImportReport) -> None:
        self.conn, self.sheet, self.zone, self.now, self.report = conn, sheet, zone, now, report
        self.source = imported_from(report.path)
        self.id = sheet.require("Id")
        self.email = sheet.require("Email")
        self.created = sheet.require("Created at")
        self.currency = sheet.require("Currency")
        self.total = sheet.require("Total")
        self.recovery_url = sheet.require(*RECOVERY_URL_COLUMNS)
        self.quantity = sheet.require("Lineitem quantity")
        self.line_name = sheet.require("Lineitem name")
        self.price = sheet.require("Lineitem price")
        self.sku = sheet.require("Lineitem sku")
        self.name = sheet.column("Name")
        self.updated = sheet.column("Updated at")
        self.completed = sheet.column("Completed at")
        self.accepts = sheet.column("Accepts Marketing", "Accepts Email Marketing")

    def _time(self, row: Row, position: int | None) -> dt.datetime | None:
        return row.parse(position, lambda raw: parse_optional_timestamp(raw, self.zone))

    def parse_checkout(self, row: Row, key: str) -> CheckoutIn:
        if not row.get(self.created):
            raise row.error(self.created, f"this is the first row of checkout {key}, but its checkout columns "
                                          "(Created at, Total, ...) are empty", GROUP_HINT)
        created = row.parse(self.created, lambda raw: parse_timestamp(raw, self.zone))
        updated = self._time(row, self.updated)
        currency = row.parse(self.currency, parse_currency)
        url = row.get(self.recovery_url)
        if url and not url.startswith(("https://", "http://")):
            raise row.error(self.recovery_url, f"{url!r} is not a web address (https://...)")
        return CheckoutIn(
            row=row.number, external_id=strip_id(key) or key, name=row.get(self.name) or strip_id(key) or key,
            email=read_email(row, self.email, required=False), created_at=created,
            abandoned_at=max(created, updated) if updated else created,
            completed_at=self._time(row, self.completed), recovery_url=url or None,
            total_cents=row.parse(self.total, lambda raw: parse_cents(raw, currency)), currency=currency,
            accepts_marketing=row.parse(self.accepts, parse_bool))

    def parse_line(self, row: Row, checkout: CheckoutIn | None) -> None:
        """Add the row's line item to `checkout`, or only check it when the checkout's own row is bad (None)."""
        name, sku = row.get(self.line_name), row.get(self.sku)
        if not name and not sku:
            raise row.error(self.line_name, "the line item has neither a name nor a SKU")
        currency = checkout.currency if checkout is not None else "XXX"
        line = LineIn(sku=sku or derived_sku(name), name=name, quantity=row.parse(self.quantity, parse_quantity),
                      unit_price_cents=row.parse(self.price, lambda raw: parse_cents(raw, currency)))
        if checkout is not None:
            checkout.lines.append(line)

    def flush(self, checkouts: list[CheckoutIn]) -> None:
        if not checkouts or not self.sheet.clean:
            return
        live = []
        for checkout in checkouts:
            if checkout.email:
                live.append(checkout)
            else:
                self.report.checkouts_skipped += 1
                self.report.warn(f"row {checkout.row}: checkout {checkout.name} has no email address; skipped")
        if live:
            self._write(live, customer_ids(self.conn, live, self.now, self.source, self.report))

    def _write(self, checkouts: list[CheckoutIn], customers: dict[str, int]) -> None:
        conn = self.conn
        existing = rows_by_key(conn, CHECKOUT, "external_id", CHECKOUT_FIELDS, [c.external_id for c in checkouts])
        old_lines = children_of(conn, CHECKOUT_LINE, "checkout_id", [row.id for row in existing.values()])
        new: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        updates: list[dict[str, Any]] = []
        rewritten: list[tuple[int, list[dict[str, Any]]]] = []
        for checkout in checkouts:
            values = {name: getattr(checkout, name) for name in CHECKOUT_FIELDS if name != "customer_id"}
            values["customer_id"] = customers[checkout.email]
            lines = [{name: getattr(line, name) for name in LINE_FIELDS} for line in checkout.lines]
            before = existing.get(checkout.external_id)
            if before is None:
                new.append((values, lines))
                continue
            changed = any(getattr(before, name) != value for name, value in values.items())
            lines_changed = [tuple(getattr(old, name) for name in LINE_FIELDS) for old in old_lines[before.id]] != [
                tuple(line[name] for name in LINE_FIELDS) for line in lines]
            if changed:
                updates.append(values | {"_id": before.id})
            if lines_changed:
                rewritten.append((before.id, lines))
            if changed or lines_changed:
                self.report.checkouts_updated += 1
        if updates:
            conn.execute(by_id_update(CHECKOUT), updates)
        line_inserts = [line | {"checkout_id": checkout_id} for checkout_id, lines in rewritten for line in lines]
        if rewritten:  # a cart's lines have no identity of their own: a changed cart is written again
            conn.execute(delete(CHECKOUT_LINE).where(CHECKOUT_LINE.c.checkout_id == bindparam("_id")),
                         [{"_id": checkout_id} for checkout_id, _ in rewritten])
        if new:
            conn.execute(insert(CHECKOUT), [values for values, _ in new])
            ids = ids_by_key(conn, CHECKOUT, "external_id", [values["external_id"] for values, _ in new])
            line_inserts.extend(line | {"checkout_id": ids[values["external_id"]]} for values, lines in new
                                for line in lines)
            self.report.checkouts_created += len(new)
        if line_inserts:
            conn.execute(insert(CHECKOUT_LINE), line_inserts)


def import_checkouts(store: Store, path: str | Path, *, default_zone: ZoneInfo, now: dt.datetime,
                     progress: Progress | None = None) -> ImportReport:
    """Import Shopify's abandoned checkouts export (one row per line item) into the store, all or nothing.

    Rows are grouped by Id; the checkout columns are read from each checkout's first row. A checkout
    was abandoned at its `Updated at` (else `Created at`). Timestamps without an offset are taken in
    `default_zone`. Customers named by a checkout but missing from the store are created (consent from
    the checkout's Accepts Marketing); a checkout without an email is skipped with a warning. Raises
    DataImportError listing every bad row; the store is then untouched.
    """
    report = ImportReport(str(path))
    with open_sheet(path, EXPORT) as sheet, store.engine.begin() as conn:
        importer = _CheckoutImport(conn, sheet, default_zone, utc_naive(now), report)
        pending: list[CheckoutIn] = []
        current: CheckoutIn | None = None  # None while reading a checkout whose first row is bad
        for row, key, first in grouped_rows(sheet, importer.id, report, record="checkout", hint=GROUP_HINT):
            if first:
                if current is not None:
                    pending.append(current)
                if len(pending) >= CHUNK_ROWS:
                    importer.flush(pending)
                    pending = []
                    report_progress(progress, report.rows_read - 1)
                current = sheet.check(importer.parse_checkout, row, key)
            sheet.check(importer.parse_line, row, current)
        if current is not None:
            pending.append(current)
        importer.flush(pending)
        sheet.finish()
    report_progress(progress, report.rows_read)
    return report
