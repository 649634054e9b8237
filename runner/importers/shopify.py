"""Importing Shopify CSV exports (customers, orders, products) into the store, all or nothing.

Each import streams its file, validates every row and writes in chunks inside ONE
transaction: the first bad row raises DataImportError (file, row, column, reason, hint) and
the transaction is rolled back, so the store is left exactly as it was. Rows are keyed
(customers by Customer ID, else email; orders by Id, else Name; products by SKU), and a row
whose values match the store is not written at all, so importing a file twice changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update

from .. import settings
from ..errors import DataImportError
from ..i18n.locales import parse_locale
from ..models import (
    Customer,
    CustomerTag,
    Order,
    OrderLine,
    Product,
    birthday_key,
    normalise_email,
)
from ..money import to_minor
from ..sql import dialect_insert
from ..store import Store, utc_naive
from .aggregates import refresh_customer_aggregates
from .zones import zone_for_address

CHUNK_ROWS = 1000
MAX_WARNINGS = 100

CUSTOMER = cast(Table, Customer.__table__)
CUSTOMER_TAG = cast(Table, CustomerTag.__table__)
PRODUCT = cast(Table, Product.__table__)
ORDERS = cast(Table, Order.__table__)
ORDER_LINE = cast(Table, OrderLine.__table__)

Progress = Callable[[int], None]
T = TypeVar("T")

FIX_HINT = "correct that cell in the file (or export it from Shopify again) and run the import again"
ORDER_GROUP_HINT = ("Shopify writes the order columns (Email, Created at, Total, ...) only on the first row of "
                    "each order and repeats just Name and the Lineitem columns below it; import the export "
                    "unchanged, with each order's rows together")
EXPORT_HINTS = {
    "customers": "in the Shopify admin use Customers > Export and import that file unchanged",
    "orders": "in the Shopify admin use Orders > Export and import that file unchanged",
    "products": "in the Shopify admin use Products > Export and import that file unchanged",
}


class _Keep(Enum):
    """Marks a value the file says nothing about: the store's value stays."""

    KEEP = 0


KEEP = _Keep.KEEP


@dataclass
class ImportReport:
    """What one import did. Created/updated count only rows that were new or actually changed."""

    path: str
    rows_read: int = 0
    customers_created: int = 0
    customers_updated: int = 0
    orders_created: int = 0
    orders_updated: int = 0
    orders_skipped: int = 0
    customers_skipped: int = 0
    lines: int = 0  # order lines written (new or rewritten)
    products_created: int = 0
    products_updated: int = 0
    warnings: list[str] = field(default_factory=list)
    warnings_not_shown: int = 0

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.warnings_not_shown += 1

    def summary(self) -> str:
        """One line for the CLI: what was read and what changed."""
        parts = [f"{self.rows_read} rows read"]
        for label, created, updated in (("customers", self.customers_created, self.customers_updated),
                                        ("orders", self.orders_created, self.orders_updated),
                                        ("products", self.products_created, self.products_updated)):
            if created or updated:
                parts.append(f"{label}: {created} created, {updated} updated")
        if self.lines:
            parts.append(f"{self.lines} order lines written")
        if self.customers_skipped:
            parts.append(f"{self.customers_skipped} customers without email skipped")
        if self.orders_skipped:
            parts.append(f"{self.orders_skipped} orders without email skipped")
        if len(parts) == 1:
            parts.append("nothing changed")
        warned = len(self.warnings) + self.warnings_not_shown
        if warned:
            parts.append(f"{warned} warning(s)")
        return f"{self.path}: " + "; ".join(parts)


# --- reading --------------------------------------------------------------------------------

def _norm(header: str) -> str:
    return " ".join(header.strip().lower().split())


class _Sheet:
    """A CSV file read as a stream; rows are numbered as a spreadsheet shows them (header = row 1)."""

    def __init__(self, display: str, kind: str, handle: Any) -> None:
        self.display = display
        self.kind = kind
        self._reader = csv.reader(handle)
        self.number = 1
        header = self._next()
        if header is None or not any(cell.strip() for cell in header):
            raise DataImportError(display, None, None, "the file is empty (no header row)", EXPORT_HINTS[kind])
        self.header = header
        self._index: dict[str, int] = {}
        for position, name in enumerate(header):
            self._index.setdefault(_norm(name), position)

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except UnicodeDecodeError:
            raise DataImportError(self.display, self.number, None, "the file is not UTF-8 text",
                                  "save or export it as CSV in UTF-8 encoding") from None
        except csv.Error as exc:
            raise DataImportError(self.display, self.number, None, f"the file is not valid CSV ({exc})",
                                  EXPORT_HINTS[self.kind]) from None

    def column(self, *names: str) -> int | None:
        """Position of the first of `names` present in the header (case and spacing ignored)."""
        for name in names:
            position = self._index.get(_norm(name))
            if position is not None:
                return position
        return None

    def column_where(self, test: Callable[[str], bool]) -> int | None:
        for name, position in self._index.items():
            if test(name):
                return position
        return None

    def require(self, *names: str) -> int:
        """Position of a required column; a missing one rejects the file, naming the column."""
        position = self.column(*names)
        if position is None:
            raise DataImportError(self.display, None, names[0], "the header row has no such column",
                                  f"this does not look like a Shopify {self.kind} export; "
                                  f"{EXPORT_HINTS[self.kind]}")
        return position

    def label(self, position: int | None) -> str | None:
        return self.header[position].strip() if position is not None else None

    def rows(self) -> Iterator[_Row]:
        while True:
            values = self._next()
            if values is None:
                return
            self.number += 1
            if any(cell.strip() for cell in values):
                yield _Row(self, self.number, values)


class _Row:
    __slots__ = ("number", "sheet", "values")

    def __init__(self, sheet: _Sheet, number: int, values: list[str]) -> None:
        self.sheet, self.number, self.values = sheet, number, values

    def get(self, position: int | None) -> str:
        if position is None or position >= len(self.values):
            return ""
        return self.values[position].strip()

    def error(self, position: int | None, reason: str, hint: str | None = FIX_HINT) -> DataImportError:
        return DataImportError(self.sheet.display, self.number, self.sheet.label(position), reason, hint)

    def parse(self, position: int | None, parser: Callable[[str], T]) -> T:
        try:
            return parser(self.get(position))
        except ValueError as exc:
            raise self.error(position, str(exc)) from None


@contextmanager
def _open_sheet(path: str | Path, kind: str) -> Iterator[_Sheet]:
    display = str(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DataImportError(display, None, None, f"cannot open the file ({exc.strerror or exc})",
                              "check the path") from None
    with handle:
        yield _Sheet(display, kind, handle)


def _tick(progress: Progress | None, rows: int) -> None:
    if progress is not None:
        progress(rows)


# --- cell parsers: each raises ValueError with the reason shown to the user ------------------

_MONEY = re.compile(r"^\d+(\.\d+)?$")
_QUANTITY = re.compile(r"^\d+$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SPACED_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2} [+-]\d{2}:?\d{2}$")


def parse_cents(raw: str, currency: str = "USD") -> int:
    """'12.50' -> 1250 minor units of the currency (JPY has none, KWD three); rounded half up."""
    if not raw:
        raise ValueError("the amount is empty; expected an amount like 12.50")
    if not _MONEY.match(raw):
        raise ValueError(f"{raw!r} is not an amount like 12.50")
    return to_minor(raw, currency)


def parse_quantity(raw: str) -> int:
    if not _QUANTITY.match(raw):
        raise ValueError(f"{raw!r} is not a whole number of items")
    return int(raw)


def parse_bool(raw: str) -> bool:
    try:
        return settings.parse_bool(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not yes or no") from None


def parse_timestamp(raw: str, zone: ZoneInfo) -> dt.datetime:
    """'2025-03-01 14:05:00 +0100' (or ISO 8601) -> naive UTC; a value without offset is in `zone`."""
    if _SPACED_OFFSET.match(raw):
        raw_iso = raw[:19] + raw[20:]  # Shopify's "... 14:05:00 +0100" is ISO 8601 but for the space
    else:
        raw_iso = raw
    try:
        moment = dt.datetime.fromisoformat(raw_iso)
    except ValueError:
        raise ValueError(f"{raw!r} is not a date and time like 2025-03-01 14:05:00 +0100") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return utc_naive(moment)


def parse_optional_timestamp(raw: str, zone: ZoneInfo) -> dt.datetime | None:
    return parse_timestamp(raw, zone) if raw else None


def parse_birthday(raw: str) -> dt.date | None:
    """'1990-04-23' -> date; any year, 29 February included where the year has one."""
    if not raw:
        return None
    match = _DATE.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a birthday like 1990-04-23 (YYYY-MM-DD)")
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"{raw!r} is not a real date") from None


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_zone_name(raw: str) -> str | None:
    """An IANA zone name (case-insensitive, returned canonical), or None for an empty cell."""
    if not raw:
        return None
    name = _zone_names().get(raw.lower())
    if name is None:
        raise ValueError(f"{raw!r} is not an IANA time zone name such as Europe/Berlin or America/New_York")
    return name


def parse_customer_locale(raw: str) -> str | None:
    """A language code such as fr or pt-BR, stored as Babel spells it (pt_BR); None for an empty cell."""
    return parse_locale(raw) if raw else None


def split_tags(raw: str) -> list[str]:
    """'VIP, Newsletter' -> ['newsletter', 'vip']: trimmed, lower-cased, without duplicates."""
    return sorted({tag.strip().lower() for tag in raw.split(",") if tag.strip()})


def derived_sku(name: str) -> str:
    """The stable SKU given to a line or variant without one: 'NAME:' + a slug of its name."""
    slug = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFKC", name).casefold()).strip("-")
    return f"NAME:{slug}"


def _strip_id(raw: str) -> str | None:
    """Shopify prefixes ids with an apostrophe so spreadsheets keep them as text."""
    return raw.lstrip("'").strip() or None


def _email(row: _Row, position: int, *, required: bool) -> str:
    raw = row.get(position)
    if not raw:
        if required:
            raise row.error(position, "the email address is empty",
                            "every customer needs an email address; add it in Shopify and export again, "
                            "or delete the row")
        return ""
    email = normalise_email(raw)
    if not _EMAIL.match(email):
        raise row.error(position, f"{raw!r} is not an email address")
    return email


def _upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: str,
            update_columns: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE, executemany in chunks."""
    if not rows:
        return
    statement = dialect_insert(conn, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[key]], set_={name: statement.excluded[name] for name in update_columns})
    for start in range(0, len(rows), CHUNK_ROWS):
        conn.execute(statement, list(rows[start:start + CHUNK_ROWS]))


def _in_chunks(conn: Connection, statement_for: Callable[[list[Any]], Any], keys: Sequence[Any]) -> list[Any]:
    """Run a SELECT ... IN (...) per chunk of keys; one query per chunk, never one per row."""
    found: list[Any] = []
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), CHUNK_ROWS):
        found.extend(conn.execute(statement_for(unique[start:start + CHUNK_ROWS])).all())
    return found


def _by_id_update(table: Table) -> Any:
    """UPDATE table SET <keys of each parameter dict> WHERE id = :_id, for executemany."""
    return update(table).where(table.c.id == bindparam("_id"))


# --- customers ------------------------------------------------------------------------------

@dataclass(slots=True)
class _CustomerIn:
    row: int
    email: str
    external_id: str | None
    first_name: str
    last_name: str
    birthday: dt.date | Literal[_Keep.KEEP] | None
    time_zone: str | Literal[_Keep.KEEP] | None
    locale: str | Literal[_Keep.KEEP] | None
    accepts_marketing: bool
    tags: list[str] | None


_CUSTOMER_FIELDS = ("external_id", "email", "first_name", "last_name", "birthday", "birthday_md", "time_zone",
                    "locale", "accepts_marketing", "consent_at")


class _CustomerImport:
    def __init__(self, conn: Connection, sheet: _Sheet, now: dt.datetime, report: ImportReport) -> None:
        self.conn, self.sheet, self.now, self.report = conn, sheet, now, report
        self.email = sheet.require("Email")
        self.first = sheet.require("First Name")
        self.last = sheet.require("Last Name")
        self.accepts = sheet.require("Accepts Email Marketing", "Accepts Marketing")
        self.external_id = sheet.column("Customer ID")
        self.country = sheet.column("Default Address Country Code", "Country Code")
        self.province = sheet.column("Default Address Province Code", "Province Code")
        self.tags = sheet.column("Tags")
        self.zone = sheet.column("Time Zone")
        # Shopify's own customers and orders exports carry no language; other exporters call it so.
        self.locale = sheet.column("Language", "Locale")
        self.birthday = sheet.column_where(
            lambda name: name.endswith("(customer.metafields.facts.birth_date)") or name == "birthday")
        self.emails_seen: dict[str, int] = {}
        self.ids_seen: dict[str, int] = {}
        self.customers_matched: set[int] = set()

    def parse(self, row: _Row) -> _CustomerIn | None:
        email = _email(row, self.email, required=False)
        if not email:  # phone-only customers are common in real exports; they cannot be emailed
            self.report.customers_skipped += 1
            self.report.warn(f"row {row.number}: customer without an email address; skipped")
            return None
        if email in self.emails_seen:
            raise row.error(self.email, f"{email} is already on row {self.emails_seen[email]}",
                            "each customer may appear once; remove the duplicate row")
        self.emails_seen[email] = row.number
        external_id = _strip_id(row.get(self.external_id))
        if external_id is not None:
            if external_id in self.ids_seen:
                raise row.error(self.external_id, f"customer {external_id} is already on row "
                                f"{self.ids_seen[external_id]}", "each customer may appear once; remove the "
                                "duplicate row")
            self.ids_seen[external_id] = row.number
        birthday: dt.date | Literal[_Keep.KEEP] | None = KEEP
        if self.birthday is not None:
            birthday = row.parse(self.birthday, parse_birthday)
        time_zone: str | Literal[_Keep.KEEP] | None = row.parse(self.zone, parse_zone_name)
        if time_zone is None:  # an address that leaves doubt keeps what the store already knows
            country = row.get(self.country)
            derived = zone_for_address(country, row.get(self.province)) if country else None
            time_zone = derived if derived is not None else KEEP
        return _CustomerIn(
            row=row.number, email=email, external_id=external_id,
            first_name=row.get(self.first), last_name=row.get(self.last),
            birthday=birthday, time_zone=time_zone,
            locale=row.parse(self.locale, parse_customer_locale) if self.locale is not None else KEEP,
            accepts_marketing=row.parse(self.accepts, parse_bool),
            tags=split_tags(row.get(self.tags)) if self.tags is not None else None,
        )

    def _values(self, record: _CustomerIn, existing: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "external_id": record.external_id or (existing.external_id if existing is not None else None),
            "email": record.email,
            "first_name": record.first_name,
            "last_name": record.last_name,
            "accepts_marketing": record.accepts_marketing,
        }
        if record.birthday is KEEP:
            values["birthday"] = existing.birthday if existing is not None else None
            values["birthday_md"] = existing.birthday_md if existing is not None else None
        else:
            values["birthday"] = record.birthday
            values["birthday_md"] = birthday_key(record.birthday)
        if record.time_zone is KEEP:
            values["time_zone"] = existing.time_zone if existing is not None else None
        else:
            values["time_zone"] = record.time_zone
        if record.locale is KEEP:
            values["locale"] = existing.locale if existing is not None else None
        else:
            values["locale"] = record.locale
        consent_at = None
        if record.accepts_marketing:
            already = existing is not None and existing.accepts_marketing and existing.consent_at is not None
            consent_at = existing.consent_at if already else self.now
        values["consent_at"] = consent_at
        return values

    def _conflict(self, record: _CustomerIn, reason: str) -> DataImportError:
        return DataImportError(self.sheet.display, record.row, self.sheet.label(self.email), reason,
                               "the store has these as two customers; fix the email in Shopify or in the store")

    def flush(self, chunk: list[_CustomerIn]) -> None:
        if not chunk:
            return
        conn, columns = self.conn, [CUSTOMER.c.id, *(CUSTOMER.c[name] for name in _CUSTOMER_FIELDS)]
        by_email = {row.email: row for row in _in_chunks(
            conn, lambda keys: select(*columns).where(CUSTOMER.c.email.in_(keys)), [r.email for r in chunk])}
        by_external_id = {row.external_id: row for row in _in_chunks(
            conn, lambda keys: select(*columns).where(CUSTOMER.c.external_id.in_(keys)),
            [r.external_id for r in chunk if r.external_id])}

        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        ids: dict[str, int] = {}
        existing_ids: set[int] = set()
        for record in chunk:
            existing = by_external_id.get(record.external_id) if record.external_id else None
            holder = by_email.get(record.email)
            if existing is None:
                existing = holder
            elif holder is not None and holder.id != existing.id:
                raise self._conflict(record, f"customer {record.external_id} is in the store with another "
                                             f"email, and {record.email} belongs to a different customer there")
            values = self._values(record, existing)
            if existing is None:
                inserts.append(values | {"created_at": self.now})
                continue
            if existing.id in self.customers_matched:
                raise self._conflict(record, "this row and an earlier row match the same customer in the store")
            self.customers_matched.add(existing.id)
            ids[record.email] = existing.id
            existing_ids.add(existing.id)
            if any(getattr(existing, name) != value for name, value in values.items()):
                updates.append(values | {"_id": existing.id})

        if updates:
            conn.execute(_by_id_update(CUSTOMER), updates)
        if inserts:
            conn.execute(insert(CUSTOMER), inserts)
            ids.update((row.email, row.id) for row in _in_chunks(
                conn, lambda keys: select(CUSTOMER.c.email, CUSTOMER.c.id).where(CUSTOMER.c.email.in_(keys)),
                [values["email"] for values in inserts]))
        tags_changed = self._write_tags(chunk, ids, existing_ids)
        self.report.customers_created += len(inserts)
        self.report.customers_updated += len({values["_id"] for values in updates} | tags_changed)

    def _write_tags(self, chunk: list[_CustomerIn], ids: dict[str, int], existing_ids: set[int]) -> set[int]:
        """Make each listed customer's tags exactly the file's; returns existing customers whose tags changed."""
        wanted = {ids[record.email]: set(record.tags) for record in chunk if record.tags is not None}
        if not wanted:
            return set()
        current: dict[int, set[str]] = defaultdict(set)
        for customer_id, tag in _in_chunks(
                self.conn, lambda keys: select(CUSTOMER_TAG.c.customer_id, CUSTOMER_TAG.c.tag).where(
                    CUSTOMER_TAG.c.customer_id.in_(keys)), [i for i in wanted if i in existing_ids]):
            current[customer_id].add(tag)
        removed = [{"_cid": cid, "_tag": tag} for cid, tags in wanted.items() for tag in current[cid] - tags]
        added = [{"customer_id": cid, "tag": tag}
                 for cid, tags in wanted.items() for tag in sorted(tags - current[cid])]
        if removed:
            self.conn.execute(delete(CUSTOMER_TAG).where(CUSTOMER_TAG.c.customer_id == bindparam("_cid"),
                                                         CUSTOMER_TAG.c.tag == bindparam("_tag")), removed)
        if added:
            self.conn.execute(insert(CUSTOMER_TAG), added)
        return {cid for cid in wanted if cid in existing_ids and wanted[cid] != current[cid]}


def import_customers(store: Store, path: str | Path, *, now: dt.datetime,
                     progress: Progress | None = None) -> ImportReport:
    """Import a Shopify customers export (current or legacy columns) into the store, all or nothing.

    `now` stamps new customers' created_at and new marketing consent. `progress(rows_done)` is called after
    each chunk. Raises DataImportError on the first bad row; the store is then untouched.
    """
    report = ImportReport(str(path))
    with _open_sheet(path, "customers") as sheet, store.engine.begin() as conn:
        importer = _CustomerImport(conn, sheet, utc_naive(now), report)
        chunk: list[_CustomerIn] = []
        for row in sheet.rows():
            report.rows_read += 1
            if (record := importer.parse(row)) is not None:
                chunk.append(record)
            if len(chunk) >= CHUNK_ROWS:
                importer.flush(chunk)
                chunk = []
                _tick(progress, report.rows_read)
        importer.flush(chunk)
    _tick(progress, report.rows_read)
    return report


# --- orders ---------------------------------------------------------------------------------

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
    delivered_at: dt.datetime | Literal[_Keep.KEEP] | None
    subtotal_cents: int | None
    total_cents: int
    currency: str
    discount_code: str | None
    accepts_marketing: bool
    time_zone: str | None
    lines: list[_LineIn] = field(default_factory=list)


_ORDER_FIELDS = ("external_id", "name", "customer_id", "placed_at", "delivered_at", "cancelled_at",
                 "subtotal_cents", "total_cents", "currency", "discount_code")
_LINE_FIELDS = ("customer_id", "placed_at", "sku", "name", "quantity", "unit_price_cents")


class _OrderImport:
    def __init__(self, conn: Connection, sheet: _Sheet, zone: ZoneInfo, now: dt.datetime,
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

    def parse_order(self, row: _Row, name: str) -> _OrderIn:
        if not row.get(self.created):
            raise row.error(self.created, f"this is the first row of order {name}, but its order columns "
                                          "(Created at, Total, ...) are empty", ORDER_GROUP_HINT)
        external_id = _strip_id(row.get(self.external_id)) or name
        if external_id in self.ids_seen:
            raise row.error(self.external_id if self.external_id is not None else self.name,
                            f"order {external_id} is already on row {self.ids_seen[external_id]}",
                            ORDER_GROUP_HINT)
        self.ids_seen[external_id] = row.number
        currency = row.get(self.currency).upper()
        if not _CURRENCY.match(currency):
            raise row.error(self.currency, f"{currency!r} is not a three-letter currency code like EUR")
        time_zone = None
        for country, province in self.addresses:
            if row.get(country):
                time_zone = zone_for_address(row.get(country), row.get(province))
                break
        return _OrderIn(
            row=row.number, name=name, external_id=external_id,
            email=_email(row, self.email, required=False),
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

    def parse_line(self, row: _Row, order: _OrderIn) -> None:
        name, sku = row.get(self.line_name), row.get(self.sku)
        if not name and not sku:
            raise row.error(self.line_name, "the line item has neither a name nor a SKU")
        if not sku:
            sku = derived_sku(name)
            if sku not in self.skus_warned:
                self.skus_warned.add(sku)
                self.report.warn(f"row {row.number}: line item {name!r} has no SKU; it is stored as {sku}")
        order.lines.append(_LineIn(sku=sku, name=name, quantity=row.parse(self.quantity, parse_quantity),
                                   unit_price_cents=row.parse(self.price,
                                                              lambda raw: parse_cents(raw, order.currency))))

    def flush(self, orders: list[_OrderIn]) -> None:
        if not orders:
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

        ids = {row.email: row.id for row in _in_chunks(self.conn, by_email, [o.email for o in orders])}
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
            ids.update((row.email, row.id) for row in _in_chunks(self.conn, by_email, list(new)))
            self.report.customers_created += len(new)
        return ids

    def _write_orders(self, orders: list[_OrderIn], customer_ids: dict[str, int]) -> None:
        conn = self.conn
        existing = {row.external_id: row for row in _in_chunks(
            conn, lambda keys: select(ORDERS.c.id, *(ORDERS.c[name] for name in _ORDER_FIELDS)).where(
                ORDERS.c.external_id.in_(keys)), [o.external_id for o in orders])}
        old_lines: dict[int, list[Any]] = defaultdict(list)
        for line in _in_chunks(conn, lambda keys: select(ORDER_LINE).where(ORDER_LINE.c.order_id.in_(keys))
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
                "subtotal_cents": (order.subtotal_cents if order.subtotal_cents is not None
                                   else sum(line.quantity * line.unit_price_cents for line in order.lines)),
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
            conn.execute(_by_id_update(ORDERS), order_updates)
        if new_orders:
            conn.execute(insert(ORDERS), [values for values, _ in new_orders])
            order_ids = {row.external_id: row.id for row in _in_chunks(
                conn, lambda keys: select(ORDERS.c.external_id, ORDERS.c.id).where(ORDERS.c.external_id.in_(keys)),
                [values["external_id"] for values, _ in new_orders])}
            for values, lines in new_orders:
                line_inserts.extend(line | {"order_id": order_ids[values["external_id"]]} for line in lines)
            self.report.orders_created += len(new_orders)
        if line_deletes:
            conn.execute(delete(ORDER_LINE).where(ORDER_LINE.c.id == bindparam("_id")), line_deletes)
        if line_updates:
            conn.execute(_by_id_update(ORDER_LINE), line_updates)
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
        existing = {row.sku: row for row in _in_chunks(
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
        _upsert(self.conn, PRODUCT, rows, "sku", ("name", "price_cents", "updated_at"))

    def finish(self) -> None:
        if self.affected:
            refresh_customer_aggregates(self.conn, self.affected)


def import_orders(store: Store, path: str | Path, *, default_zone: ZoneInfo, now: dt.datetime,
                  progress: Progress | None = None) -> ImportReport:
    """Import a Shopify orders export (one row per line item) into the store, all or nothing.

    Rows are grouped by Name; the order columns are read from each order's first row.
    Timestamps without an offset are taken in `default_zone`. Customers named by an order
    but missing from the store are created (consent from the order's Accepts Marketing).
    Customer aggregates are refreshed for every customer whose orders changed. Raises
    DataImportError on the first bad row; the store is then untouched.
    """
    report = ImportReport(str(path))
    with _open_sheet(path, "orders") as sheet, store.engine.begin() as conn:
        importer = _OrderImport(conn, sheet, default_zone, utc_naive(now), report)
        finished: set[str] = set()
        pending: list[_OrderIn] = []
        pending_lines = 0
        current: _OrderIn | None = None
        for row in sheet.rows():
            report.rows_read += 1
            name = row.get(importer.name)
            if not name:
                raise row.error(importer.name, "the order name is empty", ORDER_GROUP_HINT)
            if current is None or name != current.name:
                if current is not None:
                    finished.add(current.name)
                    pending.append(current)
                    pending_lines += len(current.lines)
                    if pending_lines >= CHUNK_ROWS:
                        importer.flush(pending)
                        pending, pending_lines = [], 0
                        _tick(progress, report.rows_read - 1)
                if name in finished:
                    raise row.error(importer.name, f"this row belongs to order {name}, whose other rows are "
                                                   "further up", ORDER_GROUP_HINT)
                current = importer.parse_order(row, name)
            importer.parse_line(row, current)
        if current is not None:
            pending.append(current)
        importer.flush(pending)
        importer.finish()
    _tick(progress, report.rows_read)
    return report


# --- products -------------------------------------------------------------------------------

class _ProductImport:
    def __init__(self, conn: Connection, sheet: _Sheet, now: dt.datetime, report: ImportReport) -> None:
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

    def variants(self, rows: list[_Row]) -> list[dict[str, Any]]:
        """The products (one per variant) of one handle's rows."""
        title = next((row.get(self.title) for row in rows if row.get(self.title)), "")
        image = next((row.get(self.image) for row in rows if row.get(self.image)), None)
        url = next((row.get(self.url) for row in rows if row.get(self.url)), None)
        products = []
        for row in rows:
            sku, price = row.get(self.sku), row.get(self.price)
            if not sku and not price:
                continue  # an image-only row
            values = [row.get(option) for option in self.options if row.get(option)]
            name = title if not values or values == ["Default Title"] else f"{title} - {' / '.join(values)}"
            if not sku:
                sku = derived_sku(name)
                self.report.warn(f"row {row.number}: variant {name!r} has no SKU; it is stored as {sku}")
            if sku in self.skus_seen:
                self.report.warn(f"row {row.number}: SKU {sku} is already on row {self.skus_seen[sku]}; "
                                 "this row is ignored")
                continue
            self.skus_seen[sku] = row.number
            products.append({"sku": sku, "name": name, "price_cents": row.parse(self.price, parse_cents),
                             "image_url": row.get(self.variant_image) or image, "url": url})
        return products

    def flush(self, products: list[dict[str, Any]]) -> None:
        if not products:
            return
        compared = ["name", "price_cents"]
        if self.image is not None or self.variant_image is not None:
            compared.append("image_url")
        if self.url is not None:
            compared.append("url")
        existing = {row.sku: row for row in _in_chunks(
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
        _upsert(self.conn, PRODUCT, rows, "sku", (*compared, "updated_at"))


def import_products(store: Store, path: str | Path, *, now: dt.datetime,
                    progress: Progress | None = None) -> ImportReport:
    """Import a Shopify products export (one row per variant or image) as one product per variant SKU.

    Name is the title plus the variant's option values (as Shopify names order lines),
    price from Variant Price, image from Variant Image else the product's first Image Src,
    url only from a URL column. Raises DataImportError on the first bad row; the store is
    then untouched.
    """
    report = ImportReport(str(path))
    with _open_sheet(path, "products") as sheet, store.engine.begin() as conn:
        importer = _ProductImport(conn, sheet, utc_naive(now), report)
        group: list[_Row] = []
        pending: list[dict[str, Any]] = []
        finished: set[str] = set()
        for row in sheet.rows():
            report.rows_read += 1
            handle = row.get(importer.handle)
            if not handle:
                raise row.error(importer.handle, "the product handle is empty")
            if group and handle != group[0].get(importer.handle):
                finished.add(group[0].get(importer.handle))
                pending.extend(importer.variants(group))
                group = []
                if len(pending) >= CHUNK_ROWS:
                    importer.flush(pending)
                    pending = []
                    _tick(progress, report.rows_read - 1)
            if not group and handle in finished:
                raise row.error(importer.handle, f"this row belongs to product {handle}, whose other rows are "
                                                 "further up", "keep each product's rows together, as Shopify "
                                                 "exports them")
            group.append(row)
        pending.extend(importer.variants(group))
        importer.flush(pending)
    _tick(progress, report.rows_read)
    return report
