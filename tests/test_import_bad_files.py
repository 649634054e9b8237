"""Hostile or malformed import files: bad bytes, duplicate headers and many bad rows, all refused at once."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from importkit import (
    CUSTOMERS,
    LATER,
    NOW,
    ORDERS,
    PRODUCTS,
    customers,
    db_bytes,
    import_file,
    orders,
    query,
    rewrite,
    set_cell,
)

from runner.errors import DataImportError
from runner.importers.reader import MAX_PROBLEMS
from runner.importers.suppressions import import_suppressions
from runner.store import Store


def refused(store: Store, db_path: Path, kind: str, path: Path) -> DataImportError:
    """The error importing `path` raises, having checked that the store's file did not change."""
    customers(store)
    orders(store)
    before = db_bytes(store, db_path)
    with pytest.raises(DataImportError) as caught:
        import_file(store, kind, path, now=LATER)
    assert db_bytes(store, db_path) == before
    return caught.value


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# --- control characters -----------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "source", "row", "column", "value", "what"), [
    pytest.param("customers", CUSTOMERS, 2, "Email", "eve\x00@example.com", "a control character (U+0000) at "
                 "character 4", id="nul-in-email"),
    pytest.param("customers", CUSTOMERS, 3, "First Name", "Bo\x00b", "a control character (U+0000) at character 3",
                 id="nul-in-name"),
    pytest.param("customers", CUSTOMERS, 4, "Last Name", "Du\nBois", "a line break at character 3",
                 id="line-break-in-a-stored-cell"),
    pytest.param("customers", CUSTOMERS, 5, "Note", "\x1b[31mred", "a control character (U+001B) at character 1",
                 id="escape-in-a-cell-not-imported"),
    pytest.param("orders", ORDERS, 2, "Email", "ada\x00@example.com",
                 "a control character (U+0000) at character 4",
                 id="nul-in-order-email"),
    pytest.param("orders", ORDERS, 3, "Lineitem name", "Gift\x07Wrap", "a control character (U+0007) at character 5",
                 id="bell-in-a-continuation-row"),
    pytest.param("orders", ORDERS, 4, "Lineitem sku", "OIL\x85BEARD", "a control character (U+0085) at character 4",
                 id="c1-control-in-sku"),
    pytest.param("products", PRODUCTS, 2, "Title", "Lavender\x00Soap",
                 "a control character (U+0000) at character 9",
                 id="nul-in-title"),
    pytest.param("products", PRODUCTS, 4, "Variant SKU", "SALT\tS", "a tab at character 5", id="tab-in-sku"),
])
def test_control_characters_are_refused_in_every_text_field(store: Store, db_path: Path, tmp_path: Path, kind: str,
                                                            source: Path, row: int, column: str, value: str,
                                                            what: str) -> None:
    bad = rewrite(source, tmp_path / f"{kind}.csv", set_cell(row, column, value))

    error = refused(store, db_path, kind, bad)

    assert (error.row, error.column) == (row, column)
    assert error.reason == f"{value!r} contains {what}"
    assert str(error).isprintable()  # the character itself is never echoed to a terminal
    assert error.hint is not None and error.hint.startswith("delete it from that cell")


def test_a_control_character_past_the_last_column_is_refused(store: Store, db_path: Path, tmp_path: Path) -> None:
    rows = read_csv(CUSTOMERS)
    rows[2].append("\x1f")

    error = refused(store, db_path, "customers", write_csv(tmp_path / "ragged.csv", rows))

    assert (error.row, error.column) == (3, None)
    assert error.reason == (f"'\\x1f' contains a control character (U+001F) at character 1 (cell {len(rows[0]) + 1}, "
                            "past the last column of the header)")


def test_tabs_and_line_breaks_in_a_cell_not_imported_are_accepted(store: Store, tmp_path: Path) -> None:
    noted = rewrite(CUSTOMERS, tmp_path / "notes.csv", set_cell(2, "Note", "first line\r\nsecond\tline"))

    assert customers(store, noted).customers_created == 6


def test_surrounding_whitespace_of_a_stored_cell_is_trimmed_not_refused(store: Store, tmp_path: Path) -> None:
    padded = rewrite(CUSTOMERS, tmp_path / "padded.csv", set_cell(2, "First Name", "\tAda\n"))

    customers(store, padded)

    assert query(store, "SELECT first_name FROM customer WHERE email = 'ada@example.com'") == [{"first_name": "Ada"}]


def test_a_control_character_in_the_header_is_refused(store: Store, db_path: Path, tmp_path: Path) -> None:
    rows = read_csv(CUSTOMERS)
    rows[0][1] = "First\x00Name"

    error = refused(store, db_path, "customers", write_csv(tmp_path / "header.csv", rows))

    assert (error.row, error.column) == (1, None)
    assert error.reason == "the header 'First\\x00Name' contains a control character (U+0000) at character 6"


# --- headers ----------------------------------------------------------------------------------

def test_a_column_the_import_reads_twice_is_refused(store: Store, db_path: Path, tmp_path: Path) -> None:
    rows = read_csv(CUSTOMERS)
    phone = rows[0].index("Phone")
    rows[0][phone] = " email"  # a second Email column, spelled differently
    for row in rows[1:]:
        row[phone] = "someone.else@example.com"

    error = refused(store, db_path, "customers", write_csv(tmp_path / "two_emails.csv", rows))

    assert str(error) == (f"{tmp_path / 'two_emails.csv'}, column 'Email': the header row has this column more than "
                          f"once (columns 4 and {phone + 1}); nothing was imported")
    assert error.hint is not None and error.hint.startswith("keep one of them")


def test_a_repeated_column_the_import_does_not_read_is_accepted(store: Store, tmp_path: Path) -> None:
    rows = read_csv(CUSTOMERS)
    rows[0][rows[0].index("Phone")] = "Note"

    assert customers(store, write_csv(tmp_path / "two_notes.csv", rows)).customers_created == 6


# --- every bad row at once --------------------------------------------------------------------

def test_every_bad_row_of_a_file_is_reported_at_once(store: Store, db_path: Path, tmp_path: Path) -> None:
    edits = [set_cell(2, "Time Zone", "Mars/Olympus"), set_cell(4, "Accepts Email Marketing", "maybe"),
             set_cell(5, "Email", "not-an-email"), set_cell(6, "First Name", "N\x00oah")]

    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        for change in edits:
            rows = change(rows)
        return rows

    bad = rewrite(CUSTOMERS, tmp_path / "bad.csv", edit)
    error = refused(store, db_path, "customers", bad)

    assert [(p.row, p.column) for p in error.problems] == [
        (2, "Time Zone"), (4, "Accepts Email Marketing"), (5, "Email"), (6, "First Name")]
    assert str(error) == (f"{bad}: row 2, column 'Time Zone': 'Mars/Olympus' is not an IANA time zone name such as "
                          "Europe/Berlin or America/New_York; nothing was imported (and 3 more problem(s))")
    assert error.unlisted == 0


def test_an_order_with_a_bad_first_row_still_has_its_lines_checked(store: Store, db_path: Path,
                                                                   tmp_path: Path) -> None:
    bad = rewrite(ORDERS, tmp_path / "orders.csv", lambda rows: set_cell(3, "Lineitem price", "2,50")(
        set_cell(2, "Total", "lots")(rows)))

    error = refused(store, db_path, "orders", bad)

    assert [(p.row, p.column) for p in error.problems] == [(2, "Total"), (3, "Lineitem price")]


def test_one_problem_per_row_and_the_list_is_bounded(store: Store, db_path: Path, tmp_path: Path) -> None:
    rows = [["First Name", "Last Name", "Email", "Accepts Marketing"]]
    rows += [["A\x00", str(n), f"bad-{n}", "perhaps"] for n in range(MAX_PROBLEMS + 70)]  # three problems a row

    error = refused(store, db_path, "customers", write_csv(tmp_path / "many.csv", rows))

    assert [p.row for p in error.problems] == list(range(2, MAX_PROBLEMS + 2))
    assert {p.column for p in error.problems} == {"First Name"}
    assert error.unlisted == 70
    assert str(error).endswith(f"nothing was imported (and {MAX_PROBLEMS + 69} more problem(s))")


def test_a_conflict_with_the_store_is_reported_with_the_rows_of_the_file(store: Store, db_path: Path,
                                                                         tmp_path: Path) -> None:
    rows = read_csv(CUSTOMERS)
    rows[2][0], rows[2][3] = rows[1][0], "ada.new@example.com"  # row 3 takes Ada's customer id ...
    rows[3][rows[0].index("Time Zone")] = "Mars/Olympus"  # ... and row 4 is bad in itself

    error = refused(store, db_path, "customers", write_csv(tmp_path / "conflict.csv", rows))

    assert [(p.row, p.column) for p in error.problems] == [(3, "Customer ID"), (4, "Time Zone")]


# --- encoding and quoting ---------------------------------------------------------------------

def test_a_byte_that_is_not_utf8_names_its_row_far_into_the_file(store: Store, db_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    lines = ["First Name,Last Name,Email,Accepts Marketing"] + [f"A,{n},a{n}@example.com,no" for n in range(2000)]
    data = "\n".join(lines).encode("utf-8").replace(b"a1500@", "\xe9lise@".encode("latin-1"))
    path.write_bytes(data)

    error = refused(store, db_path, "customers", path)

    assert (error.row, error.reason) == (1502, "the file is not UTF-8 text")


def test_a_byte_order_mark_is_read_as_such(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CUSTOMERS.read_bytes())

    assert customers(store, path, now=NOW).customers_created == 6


def test_an_unclosed_quote_is_refused_instead_of_swallowing_the_rest(store: Store, db_path: Path,
                                                                     tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('First Name,Last Name,Email,Accepts Marketing\nA,B,a@example.com,no\n"C,D,c@example.com,no\n'
                    "E,F,e@example.com,no\n", encoding="utf-8")

    error = refused(store, db_path, "customers", path)

    assert error.row == 3
    assert error.reason.startswith("the file is not valid CSV")


# --- numbers the store cannot hold ------------------------------------------------------------

@pytest.mark.parametrize(("row", "column", "value", "reason"), [
    pytest.param(2, "Total", "99999999999999999999.99", "'99999999999999999999.99' is more than the store holds "
                 "(at most 21474836.47 EUR)", id="amount"),
    pytest.param(3, "Lineitem quantity", "99999999999999999999", "'99999999999999999999' is more than the store "
                 "holds (at most 2147483647 items)", id="quantity"),
    pytest.param(4, "Lineitem price", "1" + "0" * 5000, "'1" + "0" * 56 + "'... is more than the store holds (at "
                 "most 2147483647 JPY)", id="five-thousand-digits"),
])
def test_numbers_larger_than_the_store_holds_are_refused(store: Store, db_path: Path, tmp_path: Path, row: int,
                                                         column: str, value: str, reason: str) -> None:
    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        rows[2]["Currency"] = "JPY"  # row 4's order #1002
        rows[row - 2][column] = value
        return rows

    error = refused(store, db_path, "orders", rewrite(ORDERS, tmp_path / "big.csv", edit))

    assert (error.row, error.column, error.reason) == (row, column, reason)


def test_lines_adding_up_to_more_than_the_store_holds_need_a_subtotal(store: Store, db_path: Path,
                                                                      tmp_path: Path) -> None:
    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        rows[0].update({"Subtotal": "", "Lineitem quantity": "2000", "Lineitem price": "20000.00"})
        return rows

    error = refused(store, db_path, "orders", rewrite(ORDERS, tmp_path / "sum.csv", edit))

    assert (error.row, error.column) == (2, "Lineitem price")
    assert error.reason == "the lines of order #1001 add up to more than the store holds (at most 21474836.47 EUR)"


# --- suppression lists --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "row", "column", "reason"), [
    pytest.param("email,error\nok@example.com,smtp\x00 550\n", 2, "error",
                 "'smtp\\x00 550' contains a control character (U+0000) at character 5", id="nul-in-the-detail"),
    pytest.param("email,reason\nok@example.com,bounce\n,,\x1b\n", 3, "3",
                 "'\\x1b' contains a control character (U+001B) at character 1", id="escape-past-the-header"),
    pytest.param('email,error\n"ok@example.com,x\n', 2, None, "the file is not valid CSV (unexpected end of data)",
                 id="unclosed-quote"),
])
def test_a_suppression_list_is_read_like_the_exports(store: Store, db_path: Path, tmp_path: Path, text: str, row: int,
                                                     column: str | None, reason: str) -> None:
    path = tmp_path / "suppressions.csv"
    path.write_text(text, encoding="utf-8")
    before = db_bytes(store, db_path)
    store = Store(f"sqlite:///{db_path}")

    with pytest.raises(DataImportError) as caught:
        import_suppressions(store, path, now=NOW)

    assert (caught.value.row, caught.value.column, caught.value.reason) == (row, column, reason)
    assert db_bytes(store, db_path) == before
