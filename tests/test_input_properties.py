"""Property-based tests of the input readers: any CSV export and any campaign file, however broken.

For every generated file the import either succeeds (and importing it again changes nothing)
or raises one DataImportError whose message is one line naming the file and the place, with
the store's file byte for byte as it was. The campaign loader either returns a campaign or
one-line problems naming the file and line. Examples are bounded so that each test takes a
few seconds; a failure prints the file that broke it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from importkit import CUSTOMERS, CUSTOMERS_LEGACY, LATER, ORDERS, PRODUCTS, customers, db_bytes, import_file, orders
from ruamel.yaml import YAML
from shopkit import ROOT

from runner.campaigns import load_campaigns, parse_campaign
from runner.errors import DataImportError
from runner.importers import import_products
from runner.store import Store

BOUNDED = settings(max_examples=60, deadline=dt.timedelta(seconds=2),
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- CSV imports ------------------------------------------------------------------------------


def header_of(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


COLUMNS = {
    "customers": sorted(set(header_of(CUSTOMERS)) | set(header_of(CUSTOMERS_LEGACY)) | {"Birthday"}),
    "orders": header_of(ORDERS) + ["Delivered at"],
    "products": header_of(PRODUCTS) + ["URL", "URL handle"],
}
REQUIRED = {
    "customers": ["Email", "First Name", "Last Name", "Accepts Email Marketing"],
    "orders": ["Name", "Email", "Created at", "Currency", "Total", "Lineitem quantity", "Lineitem name",
               "Lineitem price", "Lineitem sku"],
    "products": ["Handle", "Title", "Variant SKU", "Variant Price"],
}
# Values each kind of column holds, good and bad, from small pools so that rows collide with
# each other and with the store (the fixture exports are imported first).
VALUES: list[tuple[Callable[[str], bool], list[str], list[str]]] = [
    (lambda c: "email" in c and "accepts" not in c,
     ["ada@example.com", "ADA@example.com ", "bob@example.com", "new@example.com", ""], ["not-an-email", "a@b"]),
    (lambda c: "accepts" in c, ["yes", "no", "TRUE"], ["", "maybe"]),
    (lambda c: c == "time zone", ["Europe/Berlin", "europe/berlin", ""], ["Mars/Olympus"]),
    (lambda c: "birth" in c, ["1990-02-28", "2000-02-29", ""], ["1990-02-30", "29/02/2000"]),
    (lambda c: "country" in c, ["DE", "US", "es", "", "ZZ"], []),
    (lambda c: "province" in c, ["CA", "TX", "TF", ""], []),
    (lambda c: c in {"customer id", "id"}, ["'7215386304823", "'1", "5550000001", "", "'"], []),
    (lambda c: c == "name", ["#1001", "#1002", "#9"], [""]),
    (lambda c: c == "created at", ["2025-03-01 14:05:00 +0100", "2025-03-01T10:00:00"], ["", "2025-13-01"]),
    (lambda c: c.endswith(" at"), ["2025-03-01 14:05:00 +0100", "2025-03-01T10:00:00", ""], ["soon"]),
    (lambda c: c == "currency", ["EUR", "usd", "JPY", "KWD"], ["", "EURO"]),
    (lambda c: "price" in c or "total" in c or c == "subtotal", ["12.50", "0", "1500", "1.2345"],
     ["", "2,50", "-1", "1e5", "99999999999999999999.99"]),
    (lambda c: "quantity" in c, ["1", "2", "0"], ["", "two", "99999999999999999999"]),
    (lambda c: "sku" in c, ["SOAP-LAV", "SALT-L", "NEW-1", "soap-lav", ""], []),
    (lambda c: "handle" in c, ["lavender-soap", "bath-salt", "new"], [""]),
    (lambda c: c == "tags", ["VIP, newsletter", "", "a,,b"], []),
]
printable = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
wild = st.text(max_size=12)  # any character at all: controls, quotes, commas, line breaks


def values_of(column: str) -> tuple[list[str], list[str]]:
    name = column.strip().lower()
    return next(((good, bad) for test, good, bad in VALUES if test(name)), ([], []))


def cell(column: str, wild_file: bool) -> st.SearchStrategy[str]:
    """A good value for the column, or in a wild file any of its values or any text at all."""
    good, bad = values_of(column)
    if not wild_file:
        return st.sampled_from(good) if good else printable
    return st.one_of(*(st.sampled_from(values) for values in (good, bad) if values), printable, wild)


@st.composite
def csv_files(draw: st.DrawFn, kind: str) -> bytes:
    """A CSV export of `kind`: usually its required columns plus others, and rows of good, flawed or wild cells."""
    header = list(REQUIRED[kind])
    if draw(st.integers(0, 9)) == 0:  # some required columns missing
        header = draw(st.lists(st.sampled_from(REQUIRED[kind]), max_size=len(header), unique=True))
    others = [column for column in COLUMNS[kind] if column not in header]
    header += draw(st.lists(st.sampled_from(others), max_size=6, unique=True))
    if draw(st.integers(0, 9)) == 0:  # a column twice, spelled the same or not
        header.append(draw(st.sampled_from(["Email", " email", "Note", "Tags"])))
    header = draw(st.permutations(header))
    mode = draw(st.sampled_from(["clean", "flawed", "wild"]))
    rows = draw(st.lists(st.tuples(*(cell(column, mode == "wild") for column in header)).map(list), max_size=6))
    flawable = [position for position, column in enumerate(header) if values_of(column)[1]]
    if mode == "flawed" and rows and flawable:  # one bad value in an otherwise good file
        row, position = draw(st.sampled_from(rows)), draw(st.sampled_from(flawable))
        row[position] = draw(st.sampled_from(values_of(header[position])[1]))
    if mode == "wild" and rows:  # a ragged row: cells missing, or more cells than the header names
        row = draw(st.sampled_from(rows))
        del row[draw(st.integers(0, len(row))):]
        row.extend(draw(st.lists(wild, max_size=3)))
    text = io.StringIO()
    csv.writer(text, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows([header, *rows])
    data = text.getvalue().encode("utf-8")
    if mode == "wild" and draw(st.booleans()):  # damage some bytes: bad UTF-8, stray quotes, NULs
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.binary(min_size=1, max_size=4)) + data[position:]
    return data


@pytest.fixture(scope="module")
def stocked_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file with the fixture exports imported, copied afresh for every example."""
    path = tmp_path_factory.mktemp("stocked") / "stocked.db"
    store = Store(f"sqlite:///{path}")
    store.init()
    customers(store)
    orders(store)
    import_products(store, PRODUCTS, now=LATER)
    store.close()
    return path


def assert_one_line_naming_the_place(error: DataImportError, path: Path) -> None:
    for text in [str(error), *(str(problem) for problem in error.problems)]:
        assert len(text.splitlines()) == 1, text
        assert text.startswith(str(path)), text
    for problem in error.problems:
        assert problem.row is not None or problem.column is not None or problem.reason.startswith("the file"), \
            problem
    assert error.hint


@pytest.mark.parametrize("kind", ["customers", "orders", "products"])
def test_any_csv_file_imports_cleanly_or_is_refused_with_the_store_untouched(kind: str, stocked_store: Path,
                                                                             tmp_path: Path) -> None:
    @BOUNDED
    @given(data=csv_files(kind))
    def check(data: bytes) -> None:
        path, db_path = tmp_path / f"{kind}.csv", tmp_path / "store.db"
        path.write_bytes(data)
        shutil.copyfile(stocked_store, db_path)
        before = db_path.read_bytes()
        store = Store(f"sqlite:///{db_path}")
        try:
            import_file(store, kind, path, now=LATER)
        except DataImportError as error:
            assert_one_line_naming_the_place(error, path)
            assert db_bytes(store, db_path) == before
            return
        imported = db_bytes(store, db_path)
        store = Store(f"sqlite:///{db_path}")
        again = import_file(store, kind, path, now=LATER)
        assert (again.customers_created, again.customers_updated, again.orders_created, again.orders_updated,
                again.lines, again.products_created, again.products_updated) == (0, 0, 0, 0, 0, 0, 0), again
        assert db_bytes(store, db_path) == imported

    check()


# --- campaign files ---------------------------------------------------------------------------

SHIPPED = (ROOT / "campaigns" / "winback.yaml").read_text(encoding="utf-8")
CAMPAIGN_KEYS = ["id", "name", "enabled", "kind", "trigger", "audience", "message", "expire_after", "schedule",
                 "description", "type", "after", "field", "gte", "in", "template", "subject", "params", "from"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
                    st.sampled_from(["winback", "lapsed", "order", "90d", "*/15 * * * *", "order_count"]))
keys = st.one_of(st.sampled_from(CAMPAIGN_KEYS), st.text(max_size=8))
trees = st.recursive(scalars, lambda children: st.one_of(st.lists(children, max_size=4),
                                                         st.dictionaries(keys, children, max_size=5)), max_leaves=20)
# Fragments a hostile or clumsy hand adds: anchors and aliases, deep brackets, tabs, controls.
FRAGMENTS = ["&a ", "*a", "<<: *a\n", "[" * 40, "{" * 30, "- " * 30, "\t", "\x00", "\x07", "'", '"', ": ", "\n  ",
             "!!python/object:os.system ", "!!binary ", "%YAML 1.1\n", "---\n", "? "]


def dumped(tree: Any) -> str:
    text = io.StringIO()
    YAML(typ="rt").dump(tree, text)
    return text.getvalue()


@st.composite
def campaign_texts(draw: st.DrawFn) -> str:
    """The shipped win-back campaign or a random tree as YAML, possibly with hostile fragments spliced in."""
    text = SHIPPED if draw(st.booleans()) else dumped(draw(st.one_of(trees, st.dictionaries(keys, trees))))
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(text)))
        text = text[:position] + draw(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6))) + text[position:]
    return text


def test_any_campaign_file_loads_or_has_one_line_problems_naming_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    shutil.copyfile(ROOT / "campaigns" / "birthday.yaml", folder / "birthday.yaml")

    @BOUNDED
    @given(text=campaign_texts())
    def check(text: str) -> None:
        path = folder / "winback.yaml"
        path.write_text(text, encoding="utf-8", newline="")
        campaign, problems = parse_campaign(path)
        assert (campaign is None) == bool(problems)
        lines = text.count("\n") + 1
        for problem in problems:
            assert len(str(problem).splitlines()) == 1, problem
            assert str(problem).startswith(f"{path}:"), problem
            assert problem.line is not None and 1 <= problem.line <= lines, problem
        loaded, found = load_campaigns(folder)
        assert "birthday" in {c.id for c in loaded}  # one bad file never hides the others
        assert len(found) >= len(problems)

    check()
