"""Files that write one record (an order, a checkout) as consecutive rows sharing a key, one row per line item."""

from __future__ import annotations

from collections.abc import Iterator

from .reader import Row, Sheet
from .report import ImportReport


def grouped_rows(sheet: Sheet, key: int, report: ImportReport, *, record: str,
                 hint: str) -> Iterator[tuple[Row, str, bool]]:
    """Each row with content (counted in `report`), with its record's key and whether it is the record's
    first row.

    A row without a key is recorded as a problem and left out; so are the rows of a record split in two
    (rows of a key whose rows ended further up: the problem is recorded on the first of them)."""
    finished: set[str] = set()
    current: str | None = None
    split = False
    for row in sheet.rows():
        report.rows_read += 1
        name = row.get(key)
        if not name:
            sheet.record(row.problem(key, f"the {record}'s {sheet.label(key)} is empty", hint))
            continue
        if name == current:
            if not split:
                yield row, name, False
            continue
        if current is not None:
            finished.add(current)
        current, split = name, name in finished
        if split:
            sheet.record(row.problem(key, f"this row belongs to {record} {name}, whose other rows are further up",
                                     hint))
            continue
        yield row, name, True
