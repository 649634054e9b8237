"""Helpers shared by the import tests: the fixture exports, import calls with defaults, and store dumps."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from runner.importers import ImportReport, import_customers, import_orders, import_products
from runner.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
CUSTOMERS = FIXTURES / "shopify_customers.csv"
CUSTOMERS_LEGACY = FIXTURES / "shopify_customers_legacy.csv"
ORDERS = FIXTURES / "shopify_orders.csv"
PRODUCTS = FIXTURES / "shopify_products.csv"
BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2025, 7, 1, 12, 0)
LATER = dt.datetime(2025, 8, 1, 9, 30)
TABLES = ("customer", "customer_tag", "orders", "order_line", "product")
BIRTHDAY_COLUMN = "Birth date (customer.metafields.facts.birth_date)"


def customers(store: Store, path: Path = CUSTOMERS, now: dt.datetime = NOW, **kw: Any) -> ImportReport:
    return import_customers(store, path, now=now, **kw)


def orders(store: Store, path: Path = ORDERS, now: dt.datetime = NOW, **kw: Any) -> ImportReport:
    return import_orders(store, path, default_zone=BERLIN, now=now, **kw)


def import_file(store: Store, kind: str, path: Path, now: dt.datetime = NOW) -> ImportReport:
    """Import `path` as Shopify's `kind` export: customers, orders or products."""
    if kind == "customers":
        return customers(store, path, now=now)
    if kind == "orders":
        return orders(store, path, now=now)
    return import_products(store, path, now=now)


def query(store: Store, sql: str, **params: object) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(text(sql), params)]


def one(store: Store, sql: str, **params: object) -> dict:
    rows = query(store, sql, **params)
    assert len(rows) == 1, rows
    return rows[0]


def dump(store: Store) -> dict[str, list[tuple]]:
    with store.engine.connect() as conn:
        return {table: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))]
                for table in TABLES}


def tags(store: Store, email: str) -> set[str]:
    return {row["tag"] for row in query(
        store, "SELECT tag FROM customer_tag JOIN customer ON customer.id = customer_id WHERE email = :e", e=email)}


def rewrite(source: Path, target: Path, edit: Callable[[list[dict[str, str]]], list[dict[str, str]]],
            drop: tuple[str, ...] = (), add: tuple[str, ...] = ()) -> Path:
    """Copy a fixture CSV with its rows edited (and columns dropped or added)."""
    with open(source, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [name for name in reader.fieldnames or [] if name not in drop] + list(add)
        rows = list(reader)
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(edit(rows))
    return target


def db_bytes(store: Store, db_path: Path) -> bytes:
    """The database file's bytes with every connection closed (so the WAL is checkpointed away)."""
    store.close()
    assert not Path(f"{db_path}-wal").exists() or Path(f"{db_path}-wal").stat().st_size == 0
    return db_path.read_bytes()


def set_cell(row: int, column: str, value: str) -> Callable[[list[dict[str, str]]], list[dict[str, str]]]:
    """An edit setting one cell; `row` counts as a spreadsheet does (header = 1)."""
    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        rows[row - 2][column] = value
        return rows
    return edit
