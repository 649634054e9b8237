"""Importing suppression lists (a provider's or mail server's export, or a plain list of addresses),
all or nothing.

The file is streamed and written in chunks inside ONE transaction; the first bad row raises
DataImportError with its row and column and the transaction is rolled back. Formats accepted
are documented in docs/deliverability.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from ..errors import DataImportError
from ..models import SuppressionReason
from ..privacy.consent import imported_from
from ..store import Store, utc_naive
from ..suppressions import NewSuppression, add_suppressions, checked_address
from .reader import CONTROL_HINT, decoded_lines, find_control

CHUNK_ROWS = 1000
EMAIL_COLUMNS = ("email", "emailaddress", "address", "recipient")
REASON_COLUMNS = ("suppressionreason", "reason", "origin", "type")
DATE_COLUMNS = ("createdat", "created", "date", "suppressedat", "timestamp")
DETAIL_COLUMNS = ("error",)  # Mailgun's bounce list keeps the SMTP answer here
REASON_WORDS = {
    SuppressionReason.BOUNCED: ("hardbounce", "bounce", "bounced", "bademailaddress", "invalid"),
    SuppressionReason.COMPLAINED: ("spamcomplaint", "complaint", "complained", "spamreport"),
    SuppressionReason.UNSUBSCRIBED: ("unsubscribe", "unsubscribed", "globalunsubscribe", "groupunsubscribe"),
    SuppressionReason.MANUAL: ("manual", "manualsuppression"),
}
READS_AS = {word: reason.value for reason, words in REASON_WORDS.items() for word in words}
REASON_HINT = ("give the whole file one reason with --reason bounced, complained, unsubscribed or manual "
               "(the column is then kept as the detail), or fix the cell")
Progress = Callable[[int], None]


def _key(name: str) -> str:
    """A column name or reason word without case, spaces, underscores or hyphens."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


@dataclass
class SuppressionImportReport:
    path: str
    rows_read: int = 0
    added: Counter[str] = field(default_factory=Counter)  # newly suppressed, by reason

    def summary(self) -> str:
        added = sum(self.added.values())
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.added.items()))
        return (f"{self.path}: {self.rows_read} rows read; {added} address(es) newly suppressed"
                + (f" ({reasons})" if reasons else "") + f"; {self.rows_read - added} already suppressed or repeated")


class _Columns:
    """Where the address, reason, date and detail are; a file without a header is a plain list."""

    def __init__(self, display: str, first: list[str]) -> None:
        keys = [_key(cell) for cell in first]

        def find(names: tuple[str, ...]) -> int | None:
            return next((keys.index(name) for name in names if name in keys), None)

        email = find(EMAIL_COLUMNS)
        self.has_header = email is not None
        if email is None:
            cells = [cell for cell in first if cell.strip()]
            if len(cells) != 1 or "@" not in cells[0]:
                raise DataImportError(display, 1, None, "the header row has no email column",
                                      f"name the address column one of: {', '.join(EMAIL_COLUMNS)}; "
                                      "a list without a header must have one address per line")
            email = next(i for i, cell in enumerate(first) if cell.strip())
        self.email = email
        self.reason = find(REASON_COLUMNS) if self.has_header else None
        self.date = find(DATE_COLUMNS) if self.has_header else None
        self.detail = find(DETAIL_COLUMNS) if self.has_header else None
        self.names = first if self.has_header else []

    def label(self, position: int | None) -> str | None:
        if position is None:
            return None
        return self.names[position].strip() if self.has_header and position < len(self.names) else f"{position + 1}"


def parse_date(raw: str) -> dt.datetime | None:
    """Unix seconds, ISO 8601 or RFC 2822, as naive UTC (no offset means UTC); None when empty."""
    text = raw.strip()
    if not text:
        return None
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return dt.datetime.fromtimestamp(float(text), dt.UTC).replace(tzinfo=None)
    try:
        return utc_naive(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return utc_naive(parsedate_to_datetime(text))
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a date (write Unix seconds, ISO 8601 such as 2026-11-24T09:00:00Z, "
                         "or RFC 2822)") from None


def _rows(display: str, handle: Any) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(decoded_lines(handle), strict=True)
    number = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise DataImportError(display, number + 1, None, "the file is not UTF-8 text",
                                  "save or export it as CSV in UTF-8 encoding") from None
        except csv.Error as exc:
            raise DataImportError(display, number + 1, None, f"the file is not valid CSV ({exc})",
                                  "export the list as CSV again") from None
        number += 1
        if any(cell.strip() for cell in values):
            yield number, values


def import_suppressions(store: Store, path: str | Path, *, now: dt.datetime, reason: str | None = None,
                        progress: Progress | None = None) -> SuppressionImportReport:
    """Suppress every address in the file, all or nothing. `reason` (when given) applies to every row;
    otherwise each row's reason column is read, and a row without one is `manual`."""
    display, now = str(path), utc_naive(now)
    report = SuppressionImportReport(display)
    source = imported_from(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DataImportError(display, None, None, f"cannot open the file ({exc.strerror or exc})",
                              "check the path") from None
    with handle, store.session() as session:
        rows = _rows(display, handle)
        first = next(rows, None)
        if first is None:
            raise DataImportError(display, None, None, "the file is empty", "export the suppression list again")
        columns = _Columns(display, first[1])
        if columns.has_header and (found := find_control(first[1], range(len(first[1])))):
            raise DataImportError(display, 1, None, f"the header {found[1]}", CONTROL_HINT)
        pending = [] if columns.has_header else [_entry(display, columns, *first, reason)]
        for number, values in rows:
            pending.append(_entry(display, columns, number, values, reason))
            if len(pending) >= CHUNK_ROWS:
                _write(session, pending, now, source, report, progress)
                pending = []
        _write(session, pending, now, source, report, progress)
        session.commit()
    return report


def _entry(display: str, columns: _Columns, number: int, values: list[str], reason: str | None) -> NewSuppression:
    def cell(position: int | None) -> str:
        return values[position].strip() if position is not None and position < len(values) else ""

    def error(position: int | None, message: str, hint: str) -> DataImportError:
        return DataImportError(display, number, columns.label(position), message, hint)

    stored = [position for position in (columns.email, columns.reason, columns.date, columns.detail)
              if position is not None]
    if found := find_control(values, stored):
        raise error(found[0], found[1], CONTROL_HINT)

    try:
        email = checked_address(cell(columns.email))
    except ValueError as exc:
        raise error(columns.email, str(exc), "correct the address or delete the row") from None
    given = cell(columns.reason)
    detail = cell(columns.detail) or None
    if reason is not None:
        detail = detail or given or None
    elif given:
        if _key(given) not in READS_AS:
            raise error(columns.reason, f"{given!r} is not a suppression reason", REASON_HINT)
        reason = READS_AS[_key(given)]
    try:
        created = parse_date(cell(columns.date))
    except ValueError as exc:
        raise error(columns.date, str(exc), "correct the date or leave the cell empty (then it is now)") from None
    return NewSuppression(email, reason or SuppressionReason.MANUAL.value, detail, created_at=created)


def _write(session: Any, entries: list[NewSuppression], now: dt.datetime, source: str,
           report: SuppressionImportReport, progress: Progress | None) -> None:
    reasons = {entry.email: entry.reason for entry in reversed(entries)}  # the first row of an address wins
    report.added.update(reasons[email] for email in add_suppressions(session, entries, now, source))
    report.rows_read += len(entries)
    if progress is not None:
        progress(report.rows_read)
