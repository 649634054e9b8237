"""`lifecycle import transactions`: a plain transaction log (CSV or space-separated), all or nothing."""

from __future__ import annotations

import bisect
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from shopkit import ROOT
from sqlmodel import func, select

from runner.errors import DataImportError
from runner.importers.transactions import import_transactions
from runner.models import Customer, Order, OrderLine, ReorderForecast
from runner.store import Store

NOW = dt.datetime(2026, 11, 23)
UTC = ZoneInfo("UTC")
CDNOW = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"


def run(store: Store, path: Path, currency: str = "USD"):
    return import_transactions(store, path, default_zone=UTC, now=NOW, shop_currency=currency)


def test_a_csv_log_becomes_orders_of_customers_who_are_never_mailed(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("Customer ID,Date,Quantity,Amount,Email\n"
                    "7,2026-01-05,2,24.00,ann@example.com\n"
                    "7,2026-01-05,1,9.50,ann@example.com\n"
                    "8,2026-02-01,,15.00,\n", encoding="utf-8")
    report = run(store, path)
    assert (report.rows_read, report.orders_created, report.customers_created) == (3, 3, 2)
    with store.session() as session:
        ann = session.exec(select(Customer).where(Customer.email == "ann@example.com")).one()
        assert (ann.order_count, ann.total_spent_cents) == (2, 3350)
        other = session.exec(select(Customer).where(Customer.email != "ann@example.com")).one()
        assert other.email == "customer-8@customers.invalid" and other.accepts_marketing is False
        assert sorted(session.exec(select(Order.external_id))) == ["txn-7-2026-01-05-1", "txn-7-2026-01-05-2",
                                                                  "txn-8-2026-02-01-1"]
        assert session.exec(select(func.sum(OrderLine.quantity))).one() == 4
    assert run(store, path).summary().endswith("nothing changed")


def test_space_separated_columns_are_read_too(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text(" customer_id  date number_of_cds  dollar_value\n 00001 19970101  1   11.77\n", encoding="utf-8")
    run(store, path)
    with store.session() as session:
        order = session.exec(select(Order)).one()
        assert (order.placed_at, order.total_cents, order.external_id) == (dt.datetime(1997, 1, 1), 1177,
                                                                          "txn-00001-19970101-1")


def test_every_bad_row_is_listed_and_nothing_is_written(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("customer_id,date,amount\n1,2026-01-01,abc\n,2026-01-02,5\n3,2026-01-03,5\n", encoding="utf-8")
    with pytest.raises(DataImportError) as caught:
        run(store, path)
    assert [(p.row, p.column) for p in caught.value.problems] == [(2, "amount"), (3, "customer_id")]
    with store.session() as session:
        assert session.exec(select(func.count()).select_from(Order)).one() == 0


@pytest.mark.skipif(not CDNOW.is_file(), reason="the CDNOW log is not beside the project (../shared/data/cdnow)")
def test_the_cdnow_log_imports_whole(store: Store) -> None:
    report = run(store, CDNOW)
    assert (report.rows_read, report.customers_created, report.orders_created) == (69659, 23570, 69659)
    with store.session() as session:
        assert session.exec(select(func.sum(Order.total_cents))).one() == 250031563
        # each order's reorder forecast: the mean interval of the customer's orders up to it, added to it
        placed: dict[int, list[dt.datetime]] = {}
        for customer, at in session.exec(select(Order.customer_id, Order.placed_at).order_by(Order.placed_at)):
            placed.setdefault(customer, []).append(at)
        expected, rows = set(), 0
        for customer, times in placed.items():
            for at in times:
                n = bisect.bisect_right(times, at)  # orders of the same day count together
                if n >= 2:
                    interval = dt.timedelta(seconds=int((at - times[0]).total_seconds()) // (n - 1))
                    expected.add((customer, at + interval))
                    rows += 1
        assert session.exec(select(func.count()).select_from(ReorderForecast)).one() == rows == 46440
        assert set(session.exec(select(ReorderForecast.customer_id, ReorderForecast.expected_at))) == expected
