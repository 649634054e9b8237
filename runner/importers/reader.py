"""The shared CSV reader of every import: a file read as a stream of numbered rows with named columns.

Rows are numbered as a spreadsheet shows them (header = row 1). The reader decodes UTF-8 (with
or without a byte-order mark) line by line, so an encoding error names its row; parses CSV
strictly (a stray quote is an error, not a cell that swallows the rest of the file); refuses a
header that names a column the import reads twice; and refuses control characters in every
cell. A bad row does not stop the reading: its problem is recorded (the first per row, up to
MAX_PROBLEMS) and `finish()` raises one DataImportError listing them, so a user fixes a file
in one pass.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from ..errors import DataImportError, ImportProblem
from .report import ImportReport, Progress, report_progress

T = TypeVar("T")

MAX_PROBLEMS = 50
FIX_HINT = "correct that cell in the file (or export it from Shopify again) and run the import again"
CONTROL_HINT = ("delete it from that cell (or export the file from Shopify again) and run the import again: "
                "control characters are invisible in most editors and break emails")

# C0 and C1 control characters and DEL. Free-text cells the import does not read (notes,
# addresses) may hold tabs and line breaks; the cells it stores may not.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_OR_LAYOUT = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LAYOUT_NAMES = {"\t": "a tab", "\n": "a line break", "\r": "a line break"}


@dataclass(frozen=True)
class Export:
    """What a file should be: its name in messages and how to get one."""

    name: str  # e.g. "Shopify customers export"
    hint: str  # how to export such a file


def _norm(header: str) -> str:
    """A header name as compared: case and spacing ignored."""
    return " ".join(header.strip().lower().split())


def shown(text: str) -> str:
    """A cell's text for a message: quoted with its invisible characters escaped, and cut short when long."""
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


def _control_problem(cell: str, match: re.Match[str]) -> str:
    char = match.group()
    what = _LAYOUT_NAMES.get(char, f"a control character (U+{ord(char):04X})")
    return f"{shown(cell)} contains {what} at character {match.start() + 1}"


def find_control(values: Sequence[str], stored: Collection[int]) -> tuple[int, str] | None:
    """The first cell holding a control character, and the reason to give: in the cells at `stored`
    positions (kept by the import, trimmed first) tabs and line breaks count too."""
    if not _CONTROL.search("".join(values)) and not _CONTROL_OR_LAYOUT.search(
            "".join(values[position].strip() for position in stored if position < len(values))):
        return None  # the common case, in two searches
    for position, cell in enumerate(values):
        text, pattern = (cell.strip(), _CONTROL_OR_LAYOUT) if position in stored else (cell, _CONTROL)
        if match := pattern.search(text):
            return position, _control_problem(text, match)
    return None


def decoded_lines(handle: BinaryIO) -> Iterator[str]:
    """The file's lines as text, decoded one by one so that an encoding error is met on its own row."""
    encoding = "utf-8-sig"  # drops the byte-order mark spreadsheet programs write, when there is one
    for line in handle:
        yield line.decode(encoding)
        encoding = "utf-8"


class Sheet:
    """A CSV file read as a stream of rows, collecting the problems of bad rows."""

    def __init__(self, display: str, export: Export, lines: Iterable[str]) -> None:
        self.display = display
        self.export = export
        self._reader = csv.reader(lines, strict=True)
        self.number = 1
        self.problems: list[ImportProblem] = []
        self.unlisted = 0
        self._stored: set[int] = set()  # positions of the columns the import reads
        self._last_row: int | None = None
        header = self._next()
        if header is None or not any(cell.strip() for cell in header):
            raise self._fatal(None, None, "the file is empty (no header row)", export.hint)
        for name in header:
            if match := _CONTROL_OR_LAYOUT.search(name):
                raise self._fatal(1, None, f"the header {_control_problem(name, match)}", export.hint)
        self.header = header
        self._index: dict[str, list[int]] = {}
        for position, name in enumerate(header):
            self._index.setdefault(_norm(name), []).append(position)

    def _fatal(self, row: int | None, column: str | None, reason: str, hint: str | None) -> DataImportError:
        """The error for a problem that stops the reading, listed after the bad rows found before it."""
        self.record(ImportProblem(self.display, row, column, reason, hint))
        return self._error()

    def _error(self) -> DataImportError:
        return DataImportError.listing(sorted(self.problems, key=lambda p: p.row or 0), self.unlisted)

    def _next(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except UnicodeDecodeError:
            raise self._fatal(self.number + 1, None, "the file is not UTF-8 text",
                              "save or export it as CSV in UTF-8 encoding") from None
        except csv.Error as exc:
            raise self._fatal(self.number + 1, None, f"the file is not valid CSV ({exc})",
                              "check the quotes on that row: a cell that starts with \" ends with \" and doubles "
                              f"the quotes inside it; or {self.export.hint}") from None

    # --- columns ------------------------------------------------------------------------------

    def _found(self, name: str) -> int:
        positions = self._index[name]
        if len(positions) > 1:
            numbers = [str(position + 1) for position in positions]
            raise self._fatal(None, self.header[positions[0]].strip(),
                              f"the header row has this column more than once (columns {', '.join(numbers[:-1])} "
                              f"and {numbers[-1]})", "keep one of them (or export the file from Shopify again) and "
                                                     "run the import again")
        self._stored.add(positions[0])
        return positions[0]

    def column(self, *names: str) -> int | None:
        """Position of the first of `names` present in the header (case and spacing ignored)."""
        for name in names:
            if _norm(name) in self._index:
                return self._found(_norm(name))
        return None

    def column_where(self, test: Callable[[str], bool]) -> int | None:
        for name in self._index:
            if test(name):
                return self._found(name)
        return None

    def require(self, *names: str) -> int:
        """Position of a required column; a missing one rejects the file, naming the column."""
        position = self.column(*names)
        if position is None:
            raise self._fatal(None, names[0], "the header row has no such column",
                              f"this does not look like a {self.export.name}; {self.export.hint}")
        return position

    def label(self, position: int | None) -> str | None:
        """The column's name in the header; None for no column, or for a cell past the header's last column."""
        return self.header[position].strip() if position is not None and position < len(self.header) else None

    # --- rows ---------------------------------------------------------------------------------

    def rows(self) -> Iterator[Row]:
        """Every row with content; a control character is recorded as the row's problem, the row still read."""
        while True:
            values = self._next()
            if values is None:
                return
            self.number += 1
            if not any(cell.strip() for cell in values):
                continue
            row = Row(self, self.number, values)
            self._check_controls(row)
            yield row

    def _check_controls(self, row: Row) -> None:
        if found := find_control(row.values, self._stored):
            position, reason = found
            if position >= len(self.header):
                reason += f" (cell {position + 1}, past the last column of the header)"
            self.record(row.problem(position, reason, CONTROL_HINT))

    def record(self, problem: ImportProblem) -> None:
        """Note a bad row (only its first problem) and read on; past MAX_PROBLEMS, only count."""
        if problem.row is not None:
            if problem.row == self._last_row or any(p.row == problem.row for p in self.problems):
                return
            self._last_row = problem.row
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.unlisted += 1

    def check(self, parse: Callable[..., T], *args: object) -> T | None:
        """parse(*args), or None when it finds a bad cell (the problem is recorded)."""
        try:
            return parse(*args)
        except DataImportError as exc:
            for problem in exc.problems:
                self.record(problem)
            return None

    def parsed_chunks(self, parse: Callable[[Row], T], report: ImportReport, progress: Progress | None,
                      size: int) -> Iterator[list[T]]:
        """Every row parsed by `parse` (a bad one recorded, not returned), `size` records at a time, the
        last chunk possibly short or empty; rows are counted on `report`, and `progress` hears of
        them after each full chunk."""
        chunk: list[T] = []
        for row in self.rows():
            report.rows_read += 1
            if (record := self.check(parse, row)) is not None:
                chunk.append(record)
            if len(chunk) >= size:
                yield chunk
                chunk = []
                report_progress(progress, report.rows_read)
        yield chunk

    @property
    def clean(self) -> bool:
        """No bad row so far. Once there is one, imports stop writing: the transaction will be rolled back."""
        return not self.problems

    def finish(self) -> None:
        """Raise the DataImportError listing every bad row, if there was any."""
        if self.problems:
            raise self._error()


class Row:
    __slots__ = ("number", "sheet", "values")

    def __init__(self, sheet: Sheet, number: int, values: list[str]) -> None:
        self.sheet, self.number, self.values = sheet, number, values

    def get(self, position: int | None) -> str:
        if position is None or position >= len(self.values):
            return ""
        return self.values[position].strip()

    def problem(self, position: int | None, reason: str, hint: str | None = FIX_HINT) -> ImportProblem:
        return ImportProblem(self.sheet.display, self.number, self.sheet.label(position), reason, hint)

    def error(self, position: int | None, reason: str, hint: str | None = FIX_HINT) -> DataImportError:
        return DataImportError.listing([self.problem(position, reason, hint)])

    def parse(self, position: int | None, parser: Callable[[str], T]) -> T:
        try:
            return parser(self.get(position))
        except ValueError as exc:
            raise self.error(position, str(exc)) from None


def _whitespace_to_csv(lines: Iterable[str]) -> Iterator[str]:
    """Lines of whitespace-separated columns (a plain transaction log) as CSV lines."""
    for line in lines:
        yield ",".join('"' + cell.replace('"', '""') + '"' for cell in line.split()) + "\n"


@contextmanager
def open_sheet(path: str | Path, export: Export, *, whitespace: bool = False) -> Iterator[Sheet]:
    """The file as a Sheet; `whitespace`: columns are separated by runs of spaces or tabs, not commas."""
    display = str(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DataImportError(display, None, None, f"cannot open the file ({exc.strerror or exc})",
                              "check the path") from None
    with handle:
        lines = decoded_lines(handle)
        yield Sheet(display, export, _whitespace_to_csv(lines) if whitespace else lines)
