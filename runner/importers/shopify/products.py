"""Importing Shopify's products export as one product per variant SKU, all or nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from ...store import Store, utc_naive
from ..cells import derived_sku, parse_cents
from ..reader import Export, Row, Sheet, open_sheet
from ..report import ImportReport, Progress, report_progress
from ..writing import CHUNK_ROWS, PRODUCT, in_chunks, upsert

EXPORT = Export("Shopify products export",
                "in the Shopify admin use Products > Export and import that file unchanged")


class _ProductImport:
    def __init__(self, conn: Connection, sheet: Sheet, now: dt.datetime, report: ImportReport) -> None:
        self.conn, self.sheet, self.now, self.report = conn, sheet, now, report
        self.handle = sheet.require("Handle", "URL handle")
        self.title = sheet.require("Title")
        self.sku = sheet.require("Variant SKU")
        self.price = sheet.require("Variant Price")
        self.options = [position for n in (1, 2, 3) if (position := sheet.column(f"Option{n} Value")) is not None]
        self.image = sheet.column("Image Src")
        self.variant_image = sheet.column("Variant Image")
        self.url = sheet.column("URL")
        self.skus_seen: dict[str, int] = {}

    def variants(self, rows: list[Row]) -> list[dict[str, Any]]:
        """The products (one per variant) of one handle's rows."""
        title = next((row.get(self.title) for row in rows if row.get(self.title)), "")
        image = next((row.get(self.image) for row in rows if row.get(self.image)), None)
        url = next((row.get(self.url) for row in rows if row.get(self.url)), None)
        products = [product for row in rows
                    if (product := self.sheet.check(self._variant, row, title, image, url)) is not None]
        return products

    def _variant(self, row: Row, title: str, image: str | None, url: str | None) -> dict[str, Any] | None:
        """The product of one variant row; None for an image-only row or a SKU given twice."""
        sku, price = row.get(self.sku), row.get(self.price)
        if not sku and not price:
            return None  # an image-only row
        values = [row.get(option) for option in self.options if row.get(option)]
        name = title if not values or values == ["Default Title"] else f"{title} - {' / '.join(values)}"
        if not sku:
            sku = derived_sku(name)
            self.report.warn(f"row {row.number}: variant {name!r} has no SKU; it is stored as {sku}")
        if sku in self.skus_seen:
            self.report.warn(f"row {row.number}: SKU {sku} is already on row {self.skus_seen[sku]}; "
                             "this row is ignored")
            return None
        self.skus_seen[sku] = row.number
        return {"sku": sku, "name": name, "price_cents": row.parse(self.price, parse_cents),
                "image_url": row.get(self.variant_image) or image, "url": url}

    def flush(self, products: list[dict[str, Any]]) -> None:
        if not products or not self.sheet.clean:
            return
        compared = ["name", "price_cents"]
        if self.image is not None or self.variant_image is not None:
            compared.append("image_url")
        if self.url is not None:
            compared.append("url")
        existing = {row.sku: row for row in in_chunks(
            self.conn, lambda keys: select(PRODUCT).where(PRODUCT.c.sku.in_(keys)), [p["sku"] for p in products])}
        rows = []
        for product in products:
            before = existing.get(product["sku"])
            if before is None:
                self.report.products_created += 1
            elif any(getattr(before, name) != product[name] for name in compared):
                self.report.products_updated += 1
            else:
                continue
            rows.append(product | {"updated_at": self.now})
        upsert(self.conn, PRODUCT, rows, "sku", (*compared, "updated_at"))


def import_products(store: Store, path: str | Path, *, now: dt.datetime,
                    progress: Progress | None = None) -> ImportReport:
    """Import a Shopify products export (one row per variant or image) as one product per variant SKU.

    Name is the title plus the variant's option values (as Shopify names order lines),
    price from Variant Price, image from Variant Image else the product's first Image Src,
    url only from a URL column. Raises DataImportError listing every bad row; the store is
    then untouched.
    """
    report = ImportReport(str(path))
    with open_sheet(path, EXPORT) as sheet, store.engine.begin() as conn:
        importer = _ProductImport(conn, sheet, utc_naive(now), report)
        group: list[Row] = []
        pending: list[dict[str, Any]] = []
        finished: set[str] = set()
        for row in sheet.rows():
            report.rows_read += 1
            handle = row.get(importer.handle)
            if not handle:
                sheet.record(row.problem(importer.handle, "the product handle is empty"))
                continue
            if group and handle != group[0].get(importer.handle):
                finished.add(group[0].get(importer.handle))
                pending.extend(importer.variants(group))
                group = []
                if len(pending) >= CHUNK_ROWS:
                    importer.flush(pending)
                    pending = []
                    report_progress(progress, report.rows_read - 1)
            if not group and handle in finished:  # reported once; the rest of its group is read as usual
                sheet.record(row.problem(importer.handle, f"this row belongs to product {handle}, whose other rows "
                                                          "are further up", "keep each product's rows together, as "
                                                          "Shopify exports them"))
            group.append(row)
        pending.extend(importer.variants(group))
        importer.flush(pending)
        sheet.finish()
    report_progress(progress, report.rows_read)
    return report
