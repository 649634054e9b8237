"""The shared CSV reader of every import: a file read as a stream of numbered rows with named columns.

Rows are numbered as a spreadsheet shows them (header = row 1); a cell's problem becomes a
DataImportError naming the file, the row and the column.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import DataImportError

T = TypeVar("T")

FIX_HINT = "correct that cell in the file (or export it from Shopify again) and run the import again"


@dataclass(frozen=True)
class Export:
    """What a file should be: its name in messages and how to get one."""

    name: str  # e.g. "Shopify customers export"
    hint: str  # how to export such a file


def _norm(header: str) -> str:
    """A header name as compared: case and spacing ignored."""
    return " ".join(header.strip().lower().split())


class Sheet:
    """A CSV file read as a stream; rows are numbered as a spreadsheet shows them (header = row 1)."""

    def __init__(self, display: str, export: Export, handle: Any) -> None:
        self.display = display
        self.export = export
        self._reader = csv.reader(handle)
        self.number = 1
        header = self._next()
        if header is None or not any(cell.strip() for cell in header):
            raise DataImportError(display, None, None, "the file is empty (no header row)", export.hint)
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
                                  self.export.hint) from None

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
                                  f"this does not look like a {self.export.name}; {self.export.hint}")
        return position

    def label(self, position: int | None) -> str | None:
        return self.header[position].strip() if position is not None else None

    def rows(self) -> Iterator[Row]:
        while True:
            values = self._next()
            if values is None:
                return
            self.number += 1
            if any(cell.strip() for cell in values):
                yield Row(self, self.number, values)


class Row:
    __slots__ = ("number", "sheet", "values")

    def __init__(self, sheet: Sheet, number: int, values: list[str]) -> None:
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
def open_sheet(path: str | Path, export: Export) -> Iterator[Sheet]:
    display = str(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DataImportError(display, None, None, f"cannot open the file ({exc.strerror or exc})",
                              "check the path") from None
    with handle:
        yield Sheet(display, export, handle)

