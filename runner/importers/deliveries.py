"""Importing delivery times: a plain CSV of an order (its Id or its name) and when it was delivered.

Shopify's orders export has no delivery time (docs/importing.md#delivery-times); this file sets
`delivered_at` on orders already in the store, which the `order` trigger's `delivered` event waits
for. All or nothing for bad cells; a row naming an order the store does not have is a warning, the
other rows are still applied. Importing the same file again changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from ..errors import ImportProblem
from ..store import Store
from .cells import parse_optional_timestamp, strip_id
from .reader import Export, Row, Sheet, open_sheet
from .report import ImportReport, Progress, report_progress
from .writing import CHUNK_ROWS, ORDERS, by_id_update, in_chunks

EXPORT = Export("delivery times file", "give it a header row with Order and Delivered at columns (see "
                                       "docs/importing.md#delivery-times)")
ORDER_COLUMNS = ("Order", "Order Id", "Order Name", "Id", "Name")
DELIVERED_COLUMNS = ("Delivered at", "Delivered", "Delivery date")
FIX_HINT = "correct that cell in the file and import it again"


@dataclass(frozen=True, slots=True)
class _Delivery:
    row: int
    order: str
    delivered_at: dt.datetime


class _DeliveryImport:
    def __init__(self, conn: Connection, sheet: Sheet, zone: ZoneInfo, report: ImportReport) -> None:
        self.conn, self.sheet, self.zone, self.report = conn, sheet, zone, report
        self.order = sheet.require(*ORDER_COLUMNS)
        self.delivered = sheet.require(*DELIVERED_COLUMNS)
        self.rows_seen: dict[str, int] = {}

    def parse(self, row: Row) -> _Delivery | None:
        """The row's delivery; None for an order not delivered yet (an empty time)."""
        order = strip_id(row.get(self.order))
        if not order:
            raise row.error(self.order, "the order is empty", "give the order's Id or its name, such as #1001")
        if order in self.rows_seen:
            raise row.error(self.order, f"order {order} is already on row {self.rows_seen[order]}",
                            "keep one row per order, with its latest delivery")
        self.rows_seen[order] = row.number
        try:
            delivered = parse_optional_timestamp(row.get(self.delivered), self.zone)
        except ValueError as exc:
            raise row.error(self.delivered, str(exc), FIX_HINT) from None
        return _Delivery(row.number, order, delivered) if delivered is not None else None

    def flush(self, deliveries: list[_Delivery]) -> None:
        """Set each delivery on its order: found by Id, else by name (which must name one order)."""
        if not deliveries or not self.sheet.clean:
            return
        keys = [d.order for d in deliveries]
        by_id = {row.external_id: row for row in in_chunks(
            self.conn, lambda chunk: select(ORDERS.c.id, ORDERS.c.external_id, ORDERS.c.delivered_at)
            .where(ORDERS.c.external_id.in_(chunk)), keys)}
        by_name: dict[str, list[Any]] = {}
        for row in in_chunks(self.conn, lambda chunk: select(ORDERS.c.id, ORDERS.c.name, ORDERS.c.delivered_at)
                             .where(ORDERS.c.name.in_(chunk)), [key for key in keys if key not in by_id]):
            by_name.setdefault(row.name, []).append(row)
        updates = []
        for delivery in deliveries:
            found = [by_id[delivery.order]] if delivery.order in by_id else by_name.get(delivery.order, [])
            if not found:
                self.report.orders_not_found += 1
                self.report.warn(f"row {delivery.row}: the store has no order with Id or name {delivery.order!r}; "
                                 "import the orders first, then this file again")
            elif len(found) > 1:
                self.sheet.record(ImportProblem(self.sheet.display, delivery.row, self.sheet.label(self.order),
                                                f"{len(found)} orders are named {delivery.order!r}",
                                                "give the order's Id instead"))
            elif found[0].delivered_at != delivery.delivered_at:
                updates.append({"_id": found[0].id, "delivered_at": delivery.delivered_at})
        if updates and self.sheet.clean:
            self.conn.execute(by_id_update(ORDERS), updates)
            self.report.orders_updated += len(updates)


def import_deliveries(store: Store, path: str | Path, *, default_zone: ZoneInfo,
                      progress: Progress | None = None) -> ImportReport:
    """Set the delivery times a CSV file gives (columns `Order` and `Delivered at`) on the orders it names.

    `Order` is the order's Id (Shopify's, apostrophe stripped) or its name (`#1001`); a time without an
    offset is taken in `default_zone`; an empty time means not delivered yet and changes nothing. A row
    naming an order the store does not have is a warning. Raises DataImportError listing every bad row;
    the store is then untouched.
    """
    report = ImportReport(str(path))
    with open_sheet(path, EXPORT) as sheet, store.engine.begin() as conn:
        importer = _DeliveryImport(conn, sheet, default_zone, report)
        for chunk in sheet.parsed_chunks(importer.parse, report, progress, CHUNK_ROWS):
            importer.flush(chunk)
        sheet.finish()
    report_progress(progress, report.rows_read)
    return report
