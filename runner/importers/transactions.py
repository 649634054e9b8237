"""Importing a plain transaction log: one purchase a row with a customer id, a date, a quantity and an
amount, for shops that are not on Shopify (and for public data sets such as the CDNOW log).

Columns are found by name, case and spacing ignored: the customer (`customer_id`, `customer`), the
date (`date`, `order_date`, `created_at`, `placed_at`), the amount (`amount`, `total`,
`dollar_value`), optionally the quantity (`quantity`, `number_of_cds`; default 1), an email, an
order id, a currency (default: the shop's) and a SKU. Columns are separated by commas, or by runs of
spaces when the header has no comma. Customers without an email get an address under `.invalid`
(RFC 2606: it can never be delivered) and no marketing consent, so the store can compute their
figures but never mails them. All or nothing, and a re-import of the same file changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

from ..store import Store, utc_naive
from .cells import parse_cents, parse_quantity, parse_timestamp, read_email, strip_id
from .orders import LineIn, OrderIn, OrderWriter
from .reader import Export, Row, Sheet, open_sheet
from .report import ImportReport, Progress, report_progress
from .writing import CHUNK_ROWS

EXPORT = Export("transaction log", "give it a header row with customer_id, date and amount columns (see "
                                   "docs/importing.md)")
DEFAULT_SKU = "ITEM"
PLACEHOLDER_DOMAIN = "customers.invalid"


class _TransactionImport(OrderWriter):
    def __init__(self, conn: object, sheet: Sheet, zone: ZoneInfo, now: dt.datetime, report: ImportReport,
                 currency: str) -> None:
        super().__init__(conn, sheet, now, report)  # type: ignore[arg-type]
        self.zone, self.default_currency = zone, currency
        self.customer = sheet.require("customer_id", "customer id", "customer")
        self.date = sheet.require("date", "order_date", "order date", "created_at", "created at", "placed_at")
        self.amount = sheet.require("amount", "total", "dollar_value", "value")
        self.quantity = sheet.column("quantity", "number_of_cds", "qty")
        self.email = sheet.column("email")
        self.order_id = sheet.column("order_id", "order id", "order")
        self.currency = sheet.column("currency")
        self.sku = sheet.column("sku", "product", "item")
        self.per_day: dict[tuple[str, str], int] = defaultdict(int)

    def parse(self, row: Row) -> OrderIn:
        customer = strip_id(row.get(self.customer))
        if not customer:
            raise row.error(self.customer, "the customer id is empty")
        date = row.get(self.date)
        placed_at = row.parse(self.date, lambda raw: parse_timestamp(raw, self.zone))
        currency = (row.get(self.currency) or self.default_currency).upper()
        self.currencies[currency] += 1
        quantity = row.parse(self.quantity, parse_quantity) if row.get(self.quantity) else 1
        total = row.parse(self.amount, lambda raw: parse_cents(raw, currency))
        external_id = strip_id(row.get(self.order_id))
        if not external_id:  # the n-th purchase of the customer that day: stable while the file is
            self.per_day[(customer, date)] += 1
            external_id = f"{customer}-{date}-{self.per_day[(customer, date)]}"
        email = read_email(row, self.email, required=False) if self.email is not None else ""
        sku = row.get(self.sku) or DEFAULT_SKU
        return OrderIn(
            row=row.number, name=f"#{external_id}", external_id=f"txn-{external_id}",
            email=email or f"customer-{customer}@{PLACEHOLDER_DOMAIN}".lower(), placed_at=placed_at,
            cancelled_at=None, delivered_at=None, subtotal_cents=total, total_cents=total, currency=currency,
            discount_code=None, accepts_marketing=False, time_zone=None,
            lines=[LineIn(sku=sku, name=sku, quantity=quantity, unit_price_cents=total // max(quantity, 1))])


def _has_commas(path: str | Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return b"," in handle.readline()
    except OSError:
        return True  # open_sheet reports it


def import_transactions(store: Store, path: str | Path, *, default_zone: ZoneInfo, now: dt.datetime,
                        shop_currency: str, progress: Progress | None = None) -> ImportReport:
    """Import a transaction log (one purchase a row) as orders of one line each, all or nothing.

    Dates without a time or offset are midnight in `default_zone`. Amounts without a currency column
    are in `shop_currency`. Raises DataImportError listing every bad row; the store is then untouched.
    """
    report = ImportReport(str(path))
    with (open_sheet(path, EXPORT, whitespace=not _has_commas(path)) as sheet,
          store.engine.begin() as conn):
        importer = _TransactionImport(conn, sheet, default_zone, utc_naive(now), report, shop_currency)
        for chunk in sheet.parsed_chunks(importer.parse, report, progress, CHUNK_ROWS):
            importer.flush(chunk)
        importer.finish()
        sheet.finish()
        importer.check_currency(shop_currency)
    report_progress(progress, report.rows_read)
    return report
