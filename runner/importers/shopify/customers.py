"""Importing Shopify's customers export (current or legacy columns) into the store, all or nothing."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, delete, insert, select

from ...errors import ImportProblem
from ...models import birthday_key
from ...privacy import forgotten_among, record_consent_changes
from ...privacy.consent import imported_from
from ...store import Store, utc_naive
from ...suppressions import suppress_forgotten
from ..cells import (
    KEEP,
    Keep,
    parse_birthday,
    parse_bool,
    parse_customer_locale,
    parse_zone_name,
    read_email,
    split_tags,
    strip_id,
)
from ..reader import Export, Row, Sheet, open_sheet
from ..report import ImportReport, Progress, report_progress
from ..writing import CHUNK_ROWS, CUSTOMER, CUSTOMER_TAG, by_id_update, in_chunks
from ..zones import zone_for_address

EXPORT = Export("Shopify customers export",
                "in the Shopify admin use Customers > Export and import that file unchanged")


@dataclass(slots=True)
class _CustomerIn:
    row: int
    email: str
    external_id: str | None
    first_name: str
    last_name: str
    birthday: dt.date | Literal[Keep.KEEP] | None
    time_zone: str | Literal[Keep.KEEP] | None
    locale: str | Literal[Keep.KEEP] | None
    accepts_marketing: bool
    tags: list[str] | None


_CUSTOMER_FIELDS = ("external_id", "email", "first_name", "last_name", "birthday", "birthday_md", "time_zone",
                    "locale", "accepts_marketing", "consent_at")


class _CustomerImport:
    def __init__(self, conn: Connection, sheet: Sheet, now: dt.datetime, report: ImportReport) -> None:
        self.conn, self.sheet, self.now, self.report = conn, sheet, now, report
        self.source = imported_from(report.path)
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

    def parse(self, row: Row) -> _CustomerIn | None:
        email = read_email(row, self.email, required=False)
        if not email:  # phone-only customers are common in real exports; they cannot be emailed
            self.report.customers_skipped += 1
            self.report.warn(f"row {row.number}: customer without an email address; skipped")
            return None
        if email in self.emails_seen:
            raise row.error(self.email, f"{email} is already on row {self.emails_seen[email]}",
                            "each customer may appear once; remove the duplicate row")
        self.emails_seen[email] = row.number
        external_id = strip_id(row.get(self.external_id))
        if external_id is not None:
            if external_id in self.ids_seen:
                raise row.error(self.external_id, f"customer {external_id} is already on row "
                                f"{self.ids_seen[external_id]}", "each customer may appear once; remove the "
                                "duplicate row")
            self.ids_seen[external_id] = row.number
        birthday: dt.date | Literal[Keep.KEEP] | None = KEEP
        if self.birthday is not None:
            birthday = row.parse(self.birthday, parse_birthday)
        time_zone: str | Literal[Keep.KEEP] | None = row.parse(self.zone, parse_zone_name)
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

    def _conflict(self, record: _CustomerIn, reason: str) -> None:
        self.sheet.record(ImportProblem(self.sheet.display, record.row, self.sheet.label(self.email), reason,
                                        "the store has these as two customers; fix the email in Shopify or in "
                                        "the store"))

    def flush(self, chunk: list[_CustomerIn]) -> None:
        if not chunk or not self.sheet.clean:
            return
        conn, columns = self.conn, [CUSTOMER.c.id, *(CUSTOMER.c[name] for name in _CUSTOMER_FIELDS)]
        by_email = {row.email: row for row in in_chunks(
            conn, lambda keys: select(*columns).where(CUSTOMER.c.email.in_(keys)), [r.email for r in chunk])}
        by_external_id = {row.external_id: row for row in in_chunks(
            conn, lambda keys: select(*columns).where(CUSTOMER.c.external_id.in_(keys)),
            [r.external_id for r in chunk if r.external_id])}

        forgotten = forgotten_among(conn, [record.email for record in chunk])
        consent: dict[str, tuple[bool, bool]] = {}  # email: accepted before, after
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
                self._conflict(record, f"customer {record.external_id} is in the store with another email, and "
                                       f"{record.email} belongs to a different customer there")
                continue
            values = self._values(record, existing)
            if record.email in forgotten:  # erased on request before: a file never gives consent again
                values.update(accepts_marketing=False, consent_at=None)
            consent[record.email] = (existing is not None and existing.accepts_marketing, values["accepts_marketing"])
            if existing is None:
                inserts.append(values | {"created_at": self.now})
                continue
            if existing.id in self.customers_matched:
                self._conflict(record, "this row and an earlier row match the same customer in the store")
                continue
            self.customers_matched.add(existing.id)
            ids[record.email] = existing.id
            existing_ids.add(existing.id)
            if any(getattr(existing, name) != value for name, value in values.items()):
                updates.append(values | {"_id": existing.id})

        if updates:
            conn.execute(by_id_update(CUSTOMER), updates)
        if inserts:
            conn.execute(insert(CUSTOMER), inserts)
            ids.update((row.email, row.id) for row in in_chunks(
                conn, lambda keys: select(CUSTOMER.c.email, CUSTOMER.c.id).where(CUSTOMER.c.email.in_(keys)),
                [values["email"] for values in inserts]))
        record_consent_changes(conn, ((ids[email], *change) for email, change in consent.items()), self.now,
                               self.source)
        suppress_forgotten(conn, forgotten, self.now)
        tags_changed = self._write_tags(chunk, ids, existing_ids)
        self.report.customers_created += len(inserts)
        self.report.customers_updated += len({values["_id"] for values in updates} | tags_changed)

    def _write_tags(self, chunk: list[_CustomerIn], ids: dict[str, int], existing_ids: set[int]) -> set[int]:
        """Make each listed customer's tags exactly the file's; returns existing customers whose tags changed."""
        wanted = {ids[record.email]: set(record.tags) for record in chunk if record.tags is not None}
        if not wanted:
            return set()
        current: dict[int, set[str]] = defaultdict(set)
        for customer_id, tag in in_chunks(
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
    each chunk. Raises DataImportError listing every bad row; the store is then untouched.
    """
    report = ImportReport(str(path))
    with open_sheet(path, EXPORT) as sheet, store.engine.begin() as conn:
        importer = _CustomerImport(conn, sheet, utc_naive(now), report)
        for chunk in sheet.parsed_chunks(importer.parse, report, progress, CHUNK_ROWS):
            importer.flush(chunk)
        sheet.finish()
    report_progress(progress, report.rows_read)
    return report

