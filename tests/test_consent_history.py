"""Consent history: every change of a customer's marketing consent leaves a row with its time and
source, written set-based in the transaction that made the change (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shopkit import ShopBuilder
from sqlalchemy import event, select

from runner.app import App
from runner.importers import import_customers, import_orders
from runner.links.unsubscribe import unsubscribe
from runner.models import ConsentChange, Customer, SuppressionReason
from runner.privacy import forget_customer
from runner.suppressions import NewSuppression, add_suppressions

NOW = dt.datetime(2026, 11, 24, 9, 30)
HEADER = "Customer ID,First Name,Last Name,Email,Accepts Email Marketing\n"


def history(app: App) -> list[tuple[str, bool, bool, dt.datetime, str]]:
    with app.store.session() as session:
        rows = session.execute(select(Customer.email, ConsentChange.accepted_before, ConsentChange.accepted_after,
                                      ConsentChange.at, ConsentChange.source)
                               .join(Customer, Customer.id == ConsentChange.customer_id).order_by(ConsentChange.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


@contextmanager
def statements(app: App) -> Iterator[list[str]]:
    """The SQL statements the store runs meanwhile (executemany counts once)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(app.store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(app.store.engine, "before_cursor_execute", record)


def test_suppressing_many_addresses_withdraws_consent_with_one_history_insert(app: App, shop: ShopBuilder):
    for email in ("ada@example.com", "bob@example.com"):
        shop.customer(email)
    shop.customer("cleo@example.com", consent=False)
    entries = [NewSuppression(email, SuppressionReason.COMPLAINED)
               for email in ("ada@example.com", "bob@example.com", "cleo@example.com", "nobody@example.com")]

    with app.store.session() as session, statements(app) as seen:
        add_suppressions(session, entries, NOW, "webhook:postmark")
        session.commit()
    with app.store.session() as session:
        add_suppressions(session, entries, NOW + dt.timedelta(hours=1), "webhook:postmark")  # nothing changes now
        session.commit()

    assert history(app) == [("ada@example.com", True, False, NOW, "webhook:postmark"),
                            ("bob@example.com", True, False, NOW, "webhook:postmark")]
    assert len([s for s in seen if "consent_change" in s]) == 1


def test_the_unsubscribe_link_is_the_source_once(app: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    unsubscribe(app.store, ada, "ada@example.com", NOW.replace(tzinfo=dt.UTC))
    unsubscribe(app.store, ada, "ada@example.com", NOW.replace(tzinfo=dt.UTC) + dt.timedelta(minutes=5))
    assert history(app) == [("ada@example.com", True, False, NOW, "unsubscribe-link")]


def test_forget_is_the_source_of_the_last_change(app: App, shop: ShopBuilder):
    shop.customer("ada@example.com")
    with app.store.session() as session:
        erasure = forget_customer(session, "ada@example.com", NOW)
    assert history(app) == [(f"forgotten-{erasure.customer_id}", True, False, NOW, "forget")]


def test_imports_record_each_change_with_the_file_name_and_nothing_when_unchanged(app: App, tmp_path: Path):
    first = tmp_path / "export-1.csv"
    first.write_text(HEADER + "1,A,L,ada@example.com,yes\n2,B,B,bob@example.com,no\n3,C,C,cleo@example.com,yes\n")
    second = tmp_path / "export-2.csv"
    second.write_text(HEADER + "1,A,L,ada@example.com,no\n2,B,B,bob@example.com,yes\n3,C,C,cleo@example.com,yes\n")
    later = NOW + dt.timedelta(days=1)

    import_customers(app.store, first, now=NOW)
    import_customers(app.store, first, now=NOW + dt.timedelta(hours=1))  # the same file again: no change
    import_customers(app.store, second, now=later)

    assert history(app) == [
        ("ada@example.com", False, True, NOW, "import:export-1.csv"),
        ("cleo@example.com", False, True, NOW, "import:export-1.csv"),
        ("ada@example.com", True, False, later, "import:export-2.csv"),
        ("bob@example.com", False, True, later, "import:export-2.csv"),
    ]


def test_customers_created_by_an_orders_import_with_consent_are_recorded(app: App, tmp_path: Path):
    path = tmp_path / "orders_export.csv"
    path.write_text(
        "Name,Email,Created at,Currency,Total,Accepts Marketing,Lineitem quantity,Lineitem name,Lineitem price,"
        "Lineitem sku\n"
        "#1,ada@example.com,2026-11-20 10:00:00 +0000,EUR,10.00,yes,1,Mug,10.00,MUG\n"
        "#2,bob@example.com,2026-11-20 11:00:00 +0000,EUR,10.00,no,1,Mug,10.00,MUG\n")
    import_orders(app.store, path, default_zone=dt.UTC, now=NOW)
    assert history(app) == [("ada@example.com", False, True, NOW, "import:orders_export.csv")]


def test_an_import_looks_up_forgotten_addresses_and_records_consent_once_per_chunk(app: App, tmp_path: Path):
    path = tmp_path / "customers.csv"
    path.write_text(HEADER + "".join(f"{n},C,{n},c{n}@example.com,yes\n" for n in range(2500)))
    with app.store.session() as session:
        forget_customer(session, "c7@example.com", NOW)  # puts a hash key in the store: lookups happen

    with statements(app) as seen:
        import_customers(app.store, path, now=NOW)

    lookups = [s for s in seen if s.lstrip().upper().startswith("SELECT") and "FROM suppression" in s]
    inserts = [s for s in seen if "INSERT INTO consent_change" in s]
    assert len(lookups) == 3 and len(inserts) == 3  # chunks of 1,000 rows
    assert len(history(app)) == 2499  # c7 was forgotten: imported without consent
