"""`lifecycle import checkouts` (Shopify's abandoned checkouts export) and `lifecycle import deliveries`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from importkit import BERLIN, FIXTURES, LATER, NOW, db_bytes, dump, one, orders, query, rewrite
from sqlmodel import select
from test_cli import run, workdir  # noqa: F401 - workdir is a fixture used here

from runner.errors import DataImportError
from runner.importers import ImportReport, import_checkouts, import_deliveries
from runner.models import Checkout, Customer, Order
from runner.store import Store

CHECKOUTS = FIXTURES / "shopify_checkouts.csv"
CHECKOUT_TABLES = ("checkout", "checkout_line", "customer", "consent_change")


def checkouts(store: Store, path: Path = CHECKOUTS, now: dt.datetime = NOW) -> ImportReport:
    return import_checkouts(store, path, default_zone=BERLIN, now=now)


def deliveries(store: Store, tmp_path: Path, text: str) -> ImportReport:
    path = tmp_path / "deliveries.csv"
    path.write_text(text, encoding="utf-8")
    return import_deliveries(store, path, default_zone=BERLIN)


def checkout(store: Store, external_id: str) -> Checkout:
    with store.session() as session:
        return session.exec(select(Checkout).where(Checkout.external_id == external_id)).one()


def delivery_times(store: Store) -> dict[str, dt.datetime | None]:
    with store.session() as session:
        return dict(session.execute(select(Order.name, Order.delivered_at)).all())


def tables(store: Store) -> dict[str, list[dict]]:
    return {table: query(store, f"SELECT * FROM {table} ORDER BY id") for table in CHECKOUT_TABLES}


def test_checkouts_are_read_with_their_carts_and_customers(store: Store):
    orders(store)  # ada@example.com is a customer already
    report = checkouts(store)

    assert (report.rows_read, report.checkouts_created, report.customers_created) == (5, 3, 2)
    assert report.checkouts_skipped == 1
    assert report.warnings == ["row 5: checkout #31000000003 has no email address; skipped"]
    ada = checkout(store, "31000000001")
    assert ada.customer_id == one(store, "SELECT id FROM customer WHERE email = 'ada@example.com'")["id"]
    assert (ada.name, ada.total_cents, ada.currency) == ("#31000000001", 3750, "EUR")
    assert ada.created_at == dt.datetime(2025, 3, 10, 9, 0)
    assert ada.abandoned_at == dt.datetime(2025, 3, 10, 9, 20)  # its last update
    assert ada.completed_at is None
    assert ada.recovery_url == "https://shop.example.com/5550/checkouts/ac1/recover?key=k1"
    assert [(line["sku"], line["name"], line["quantity"], line["unit_price_cents"]) for line in query(
        store, "SELECT * FROM checkout_line WHERE checkout_id = :id ORDER BY id", id=ada.id)] == [
        ("SOAP-LAV", "Lavender Soap", 2, 1250), ("SALT-1", "Bath Salt", 1, 1250)]
    new = checkout(store, "31000000002")
    assert new.created_at == new.abandoned_at == dt.datetime(2025, 3, 11, 8, 0)  # no offset: Berlin
    with store.session() as session:
        buyer = session.exec(select(Customer).where(Customer.email == "new.buyer@example.com")).one()
    assert (buyer.accepts_marketing, buyer.consent_at) == (True, NOW)
    completed = checkout(store, "31000000004")
    assert completed.completed_at == dt.datetime(2025, 3, 12, 7, 31)
    assert completed.recovery_url is None


def test_importing_the_same_checkouts_again_changes_nothing(store: Store):
    checkouts(store)
    before = tables(store)
    report = checkouts(store, now=LATER)
    assert report.summary() == f"{CHECKOUTS}: 5 rows read; 1 checkouts without email skipped; 1 warning(s)"
    assert tables(store) == before


def test_a_changed_checkout_is_updated_in_place(store: Store, tmp_path: Path):
    checkouts(store)
    first = checkout(store, "31000000001").id

    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        rows[0]["Updated at"] = "2025-03-10 11:00:00 +0100"
        rows[1]["Lineitem quantity"] = "3"
        return rows

    report = checkouts(store, rewrite(CHECKOUTS, tmp_path / "changed.csv", edit), now=LATER)

    assert (report.checkouts_created, report.checkouts_updated) == (0, 1)
    row = checkout(store, "31000000001")
    assert (row.id, row.abandoned_at) == (first, dt.datetime(2025, 3, 10, 10, 0))
    assert [line["quantity"] for line in query(store, "SELECT quantity FROM checkout_line WHERE checkout_id = :id "
                                                      "ORDER BY id", id=first)] == [2, 3]


def test_bad_rows_are_listed_with_their_row_numbers_and_nothing_is_written(store: Store, db_path: Path,
                                                                           tmp_path: Path):
    orders(store)
    before = db_bytes(store, db_path)

    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        rows[0]["Created at"] = "yesterday"
        rows[1]["Lineitem quantity"] = "two"
        rows[2]["Abandoned Checkout URL"] = "javascript:alert(1)"
        rows[3]["Currency"] = "Euro"
        return rows

    with pytest.raises(DataImportError) as caught:
        checkouts(store, rewrite(CHECKOUTS, tmp_path / "bad.csv", edit))

    assert [(p.row, p.column) for p in caught.value.problems] == [
        (2, "Created at"), (3, "Lineitem quantity"), (4, "Abandoned Checkout URL"), (5, "Currency")]
    assert "'yesterday' is not a date and time" in caught.value.problems[0].reason
    assert db_bytes(store, db_path) == before


def test_a_checkout_split_in_two_is_refused(store: Store, tmp_path: Path):
    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [rows[0], rows[2], rows[1], *rows[3:]]

    with pytest.raises(DataImportError) as caught:
        checkouts(store, rewrite(CHECKOUTS, tmp_path / "split.csv", edit))
    (problem,) = caught.value.problems
    assert (problem.row, problem.column) == (4, "Id")
    assert problem.reason == "this row belongs to checkout '31000000001, whose other rows are further up"


def test_a_file_without_the_recovery_url_is_not_a_checkouts_export(store: Store, tmp_path: Path):
    with pytest.raises(DataImportError) as caught:
        checkouts(store, rewrite(CHECKOUTS, tmp_path / "no-url.csv", lambda rows: rows,
                                 drop=("Abandoned Checkout URL",)))
    (problem,) = caught.value.problems
    assert (problem.column, problem.reason) == ("Abandoned Checkout URL", "the header row has no such column")
    assert "Abandoned checkouts > Export" in str(problem.hint)


# ---------------------------------------------------------------- delivery times

def test_delivery_times_are_set_on_the_orders_named_by_id_or_name(store: Store, tmp_path: Path):
    orders(store)
    report = deliveries(store, tmp_path, "Order,Delivered at\n'5550000001,2025-03-04 15:30:00 +0100\n"
                                         "#1002,2025-03-05 10:00:00\n#1003,\n#9999,2025-03-05 10:00:00 +0000\n")

    assert (report.rows_read, report.orders_updated, report.orders_not_found) == (4, 2, 1)
    assert report.warnings == ["row 5: the store has no order with Id or name '#9999'; import the orders first, "
                               "then this file again"]
    delivered = delivery_times(store)
    assert delivered["#1001"] == dt.datetime(2025, 3, 4, 14, 30)
    assert delivered["#1002"] == dt.datetime(2025, 3, 5, 9, 0)  # no offset: the shop's zone
    assert delivered["#1003"] is None  # an empty time: not delivered yet
    again = deliveries(store, tmp_path, "Order,Delivered at\n'5550000001,2025-03-04 15:30:00 +0100\n"
                                        "#1002,2025-03-05 10:00:00\n")
    assert again.orders_updated == 0


def test_bad_delivery_rows_are_listed_and_nothing_is_written(store: Store, db_path: Path, tmp_path: Path):
    orders(store)
    before = dump(store)
    with pytest.raises(DataImportError) as caught:
        deliveries(store, tmp_path, "Order,Delivered at\n#1001,2025-03-04 15:30:00 +0100\n#1002,soon\n,2025-03-05\n"
                                    "#1001,2025-03-06 10:00:00\n")
    assert [(p.row, p.column, p.reason) for p in caught.value.problems] == [
        (3, "Delivered at", "'soon' is not a date and time like 2025-03-01 14:05:00 +0100"),
        (4, "Order", "the order is empty"),
        (5, "Order", "order #1001 is already on row 2")]
    assert dump(store) == before


# ---------------------------------------------------------------- the commands

def test_the_import_commands_read_checkouts_and_delivery_times(workdir: Path, capsys):  # noqa: F811
    assert run(capsys, "init")[0] == 0
    assert run(capsys, "import", "orders", str(FIXTURES / "shopify_orders.csv"))[0] == 0

    code, out, err = run(capsys, "import", "checkouts", str(CHECKOUTS))
    assert code == 0, err
    assert out == (f"{CHECKOUTS}: 5 rows read; customers: 2 created, 0 updated; checkouts: 3 created, 0 updated; "
                   "1 checkouts without email skipped; 1 warning(s)\n")
    assert "warning: row 5: checkout #31000000003 has no email address; skipped" in err

    deliveries = workdir / "deliveries.csv"
    deliveries.write_text("Order,Delivered at\n#1001,2025-03-04 15:30:00 +0100\n#1002,when it came\n", encoding="utf-8")
    code, out, err = run(capsys, "import", "deliveries", str(deliveries))
    assert (code, out) == (1, "")
    assert err.splitlines()[-2:] == [
        f"Error: {deliveries}: row 3, column 'Delivered at': 'when it came' is not a date and time like "
        "2025-03-01 14:05:00 +0100; nothing was imported", "Hint: correct that cell in the file and import it again"]
