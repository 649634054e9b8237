"""Shopify CSV imports: rows land right, re-imports change nothing, a bad file changes nothing."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from zoneinfo import available_timezones

import pytest
from importkit import (
    BIRTHDAY_COLUMN,
    CUSTOMERS,
    CUSTOMERS_LEGACY,
    LATER,
    NOW,
    ORDERS,
    PRODUCTS,
    customers,
    db_bytes,
    dump,
    import_file,
    one,
    orders,
    query,
    rewrite,
    set_cell,
    tags,
)
from sqlalchemy import text
from sqlmodel import Session

from runner.errors import DataImportError
from runner.importers import import_products, refresh_customer_aggregates, zone_for_address
from runner.importers.zones import province_zones, single_zone_countries
from runner.store import Store

# --- customers ------------------------------------------------------------------------------

def test_customers_current_format_land_correctly(store: Store) -> None:
    report = customers(store)

    assert (report.rows_read, report.customers_created, report.customers_updated) == (6, 6, 0)
    ada = one(store, "SELECT * FROM customer WHERE email = 'ada@example.com'")
    assert ada["external_id"] == "7215386304823"  # leading apostrophe stripped
    assert (ada["first_name"], ada["last_name"]) == ("Ada", "Lovelace")
    assert (ada["birthday"], ada["birthday_md"]) == ("1990-12-10", "12-10")
    assert ada["time_zone"] == "Europe/Berlin"  # derived from DE
    assert ada["accepts_marketing"] == 1 and ada["consent_at"] == "2025-07-01 12:00:00.000000"
    assert ada["created_at"] == "2025-07-01 12:00:00.000000"
    assert (ada["order_count"], ada["total_spent_cents"], ada["last_order_at"]) == (0, 0, None)
    assert tags(store, "ada@example.com") == {"vip", "newsletter"}

    bob = one(store, "SELECT * FROM customer WHERE email = 'bob@example.com'")
    assert (bob["birthday"], bob["birthday_md"]) == ("2000-02-29", "02-29")
    assert bob["time_zone"] == "America/Los_Angeles"  # US-CA
    assert bob["accepts_marketing"] == 0 and bob["consent_at"] is None
    assert tags(store, "bob@example.com") == set()

    zones = {row["email"]: row["time_zone"] for row in query(store, "SELECT email, time_zone FROM customer")}
    assert zones == {
        "ada@example.com": "Europe/Berlin",
        "bob@example.com": "America/Los_Angeles",
        "chloe@example.fr": "America/New_York",  # the Time Zone column beats the French address
        "tex@example.com": None,  # Texas spans two zones: shop default
        "ines@example.es": "Atlantic/Canary",  # ES + province TF
        "noah@example.com": None,  # no address at all
    }


def test_customers_legacy_format(store: Store) -> None:
    report = customers(store, CUSTOMERS_LEGACY)

    assert report.customers_created == 3
    greta = one(store, "SELECT * FROM customer WHERE email = 'greta@example.se'")
    assert greta["external_id"] is None
    assert greta["time_zone"] == "Europe/Stockholm"  # SE has a single zone in the tz database
    assert greta["accepts_marketing"] == 1 and greta["consent_at"] == "2025-07-01 12:00:00.000000"
    assert tags(store, "greta@example.se") == {"film", "classic"}
    assert one(store, "SELECT time_zone FROM customer WHERE email = 'otto@example.ca'")["time_zone"] == \
        "America/Toronto"


def test_legacy_import_updates_customers_by_normalised_email(store: Store) -> None:
    customers(store)
    report = customers(store, CUSTOMERS_LEGACY, now=LATER)

    assert (report.customers_created, report.customers_updated) == (2, 1)
    ada = one(store, "SELECT * FROM customer WHERE email = 'ada@example.com'")
    assert ada["external_id"] == "7215386304823"  # the legacy file has no id: kept
    assert ada["birthday"] == "1990-12-10"  # the legacy file has no birthday column: kept
    assert ada["consent_at"] == "2025-07-01 12:00:00.000000"  # consented before: kept
    assert tags(store, "ada@example.com") == {"vip"}  # replaced, not merged


def test_consent_follows_the_latest_file(store: Store, tmp_path: Path) -> None:
    customers(store)

    def set_ada(value: str) -> Callable[[list[dict[str, str]]], list[dict[str, str]]]:
        def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
            rows[0]["Accepts Email Marketing"] = value
            return rows
        return edit

    customers(store, rewrite(CUSTOMERS, tmp_path / "no.csv", set_ada("no")), now=LATER)
    ada = one(store, "SELECT accepts_marketing, consent_at FROM customer WHERE email = 'ada@example.com'")
    assert ada == {"accepts_marketing": 0, "consent_at": None}

    customers(store, rewrite(CUSTOMERS, tmp_path / "yes.csv", set_ada("yes")), now=LATER)
    ada = one(store, "SELECT accepts_marketing, consent_at FROM customer WHERE email = 'ada@example.com'")
    assert ada == {"accepts_marketing": 1, "consent_at": "2025-08-01 09:30:00.000000"}


# --- orders ---------------------------------------------------------------------------------

def test_orders_land_correctly(store: Store) -> None:
    customers(store)
    report = orders(store)

    assert report.rows_read == 8
    assert (report.orders_created, report.orders_updated, report.orders_skipped) == (5, 0, 1)
    assert report.customers_created == 1  # dora@example.com, known only from her order
    assert report.lines == 7
    assert any("NAME:gift-wrap" in warning for warning in report.warnings)
    assert any("#1006 has no email" in warning for warning in report.warnings)

    first = one(store, "SELECT * FROM orders WHERE name = '#1001'")
    assert first["external_id"] == "5550000001"  # the Id column
    assert first["placed_at"] == "2025-03-01 13:05:00.000000"  # 14:05 +0100 -> UTC
    assert (first["subtotal_cents"], first["total_cents"], first["currency"]) == (2500, 2990, "EUR")
    assert first["discount_code"] == "WELCOME10"
    assert first["delivered_at"] is None  # Fulfilled at is not delivery
    assert first["cancelled_at"] is None
    lines = query(store, "SELECT sku, name, quantity, unit_price_cents, placed_at, customer_id FROM order_line "
                         "WHERE order_id = :o ORDER BY id", o=first["id"])
    assert [(li["sku"], li["name"], li["quantity"], li["unit_price_cents"]) for li in lines] == [
        ("SOAP-LAV", "Lavender Soap", 2, 1250),
        ("NAME:gift-wrap", "Gift Wrap", 1, 250),  # no SKU in the file: derived from the name
    ]
    assert {(li["placed_at"], li["customer_id"]) for li in lines} == {(first["placed_at"], first["customer_id"])}

    assert one(store, "SELECT placed_at FROM orders WHERE name = '#1002'")["placed_at"] == \
        "2025-03-02 17:00:00.000000"  # 09:00 -0800
    cancelled = one(store, "SELECT cancelled_at FROM orders WHERE name = '#1004'")
    assert cancelled["cancelled_at"] == "2025-04-01 19:00:00.000000"
    assert query(store, "SELECT * FROM orders WHERE name = '#1006'") == []

    dora = one(store, "SELECT * FROM customer WHERE email = 'dora@example.com'")
    assert dora["accepts_marketing"] == 1 and dora["consent_at"] == "2025-07-01 12:00:00.000000"
    assert dora["time_zone"] == "Pacific/Auckland"  # from the order's shipping address

    products = {row["sku"]: row for row in query(store, "SELECT * FROM product")}
    assert set(products) == {"SOAP-LAV", "NAME:gift-wrap", "OIL-BEARD", "SALT-L", "GIFT-50"}
    assert products["SOAP-LAV"]["price_cents"] == 1300  # the newest line's price
    assert products["SALT-L"]["name"] == "Bath Salt - Large"


def test_orders_update_customer_aggregates(store: Store) -> None:
    customers(store)
    orders(store)

    def aggregates(email: str) -> tuple:
        row = one(store, "SELECT order_count, total_spent_cents, first_order_at, last_order_at FROM customer "
                         "WHERE email = :e", e=email)
        return tuple(row.values())

    assert aggregates("ada@example.com") == (2, 2990 + 4800, "2025-03-01 13:05:00.000000",
                                             "2025-06-15 21:30:00.000000")
    assert aggregates("bob@example.com") == (1, 5200, "2025-03-02 17:00:00.000000",
                                             "2025-03-02 17:00:00.000000")  # #1004 was cancelled
    assert aggregates("dora@example.com") == (1, 5000, "2025-05-04 20:00:00.000000",
                                              "2025-05-04 20:00:00.000000")
    assert aggregates("tex@example.com") == (0, 0, None, None)


def test_orders_in_another_currency_than_the_shops_are_warned_about_first(store: Store) -> None:
    first = orders(store, shop_currency="USD")
    again = orders(store, shop_currency="USD", now=LATER)

    for report in (first, again):  # the file, not the change, is what is wrong
        assert report.warnings[0] == (
            "4 of 6 orders are in EUR (3) and NZD (1), not in the shop's currency USD (LIFECYCLE_SHOP_CURRENCY): "
            "customer totals and total_spent audience filters count their amounts as USD; set "
            "LIFECYCLE_SHOP_CURRENCY to the currency the shop sells in")
    assert (again.orders_created, again.orders_updated, again.lines) == (0, 0, 0)


def test_orders_all_in_the_shops_currency_give_no_currency_warning(store: Store, tmp_path: Path) -> None:
    def in_euros(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        for row in rows:
            if row["Currency"]:
                row["Currency"] = "EUR"
        return rows

    euros = rewrite(ORDERS, tmp_path / "euros.csv", in_euros)

    warnings = orders(store, euros, shop_currency="EUR").warnings
    assert not any("LIFECYCLE_SHOP_CURRENCY" in warning for warning in warnings)
    assert orders(store, euros, shop_currency="GBP").warnings[0].startswith(
        "the orders are in EUR, not in the shop's currency GBP (LIFECYCLE_SHOP_CURRENCY): ")


def test_orders_without_customers_file_create_customers(store: Store) -> None:
    report = orders(store)

    assert report.customers_created == 3
    bob = one(store, "SELECT * FROM customer WHERE email = 'bob@example.com'")  # "Bob@Example.com" in the file
    assert (bob["accepts_marketing"], bob["consent_at"], bob["order_count"]) == (0, None, 1)


def test_delivered_at_column_and_offsetless_timestamps(store: Store, tmp_path: Path) -> None:
    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        rows[0]["Delivered at"] = "2025-03-05 10:00:00"  # no offset: the shop's zone (Berlin, UTC+1)
        return rows

    orders(store, rewrite(ORDERS, tmp_path / "delivered.csv", edit, add=("Delivered at",)))

    delivered = {row["name"]: row["delivered_at"] for row in query(store, "SELECT name, delivered_at FROM orders")}
    assert delivered["#1001"] == "2025-03-05 09:00:00.000000"
    assert delivered["#1002"] is None


def test_reimporting_a_changed_order_replaces_its_lines(store: Store, tmp_path: Path) -> None:
    customers(store)
    orders(store)
    before = {row["id"]: row for row in query(store, "SELECT * FROM order_line")}

    def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        rows[3]["Lineitem quantity"] = "4"  # #1003: 4 soaps instead of 3 ...
        rows[3]["Total"] = "52.00"
        del rows[4]  # ... and no bath salt
        return rows

    report = orders(store, rewrite(ORDERS, tmp_path / "changed.csv", edit), now=LATER)

    assert (report.orders_created, report.orders_updated, report.lines) == (0, 1, 1)
    third = one(store, "SELECT id, total_cents FROM orders WHERE name = '#1003'")
    assert third["total_cents"] == 5200
    lines = query(store, "SELECT * FROM order_line WHERE order_id = :o", o=third["id"])
    assert [(li["sku"], li["quantity"]) for li in lines] == [("SOAP-LAV", 4)]
    after = {row["id"]: row for row in query(store, "SELECT * FROM order_line")}
    assert len(after) == len(before) - 1
    untouched = [i for i, row in before.items() if row["order_id"] != third["id"]]
    assert all(after[i] == before[i] for i in untouched)  # other orders' lines keep their ids
    ada = one(store, "SELECT order_count, total_spent_cents FROM customer WHERE email = 'ada@example.com'")
    assert ada == {"order_count": 2, "total_spent_cents": 2990 + 5200}


# --- products -------------------------------------------------------------------------------

def test_products_export(store: Store) -> None:
    report = import_products(store, PRODUCTS, now=NOW)

    assert (report.rows_read, report.products_created, report.products_updated) == (4, 3, 0)
    products = {row["sku"]: row for row in query(store, "SELECT * FROM product")}
    assert products["SOAP-LAV"] == {**products["SOAP-LAV"], "name": "Lavender Soap", "price_cents": 1300,
                                    "image_url": "https://cdn.example.com/soap.jpg", "url": None}
    assert (products["SALT-S"]["name"], products["SALT-S"]["image_url"]) == (
        "Bath Salt - Small", "https://cdn.example.com/salt.jpg")
    assert (products["SALT-L"]["name"], products["SALT-L"]["price_cents"], products["SALT-L"]["image_url"]) == (
        "Bath Salt - Large", 900, "https://cdn.example.com/salt-large.jpg")
    assert products["SALT-L"]["updated_at"] == "2025-07-01 12:00:00.000000"


def test_older_orders_do_not_overwrite_the_catalogue(store: Store) -> None:
    import_products(store, PRODUCTS, now=NOW)
    report = orders(store)

    assert report.products_updated == 0
    soap = one(store, "SELECT name, price_cents, image_url FROM product WHERE sku = 'SOAP-LAV'")
    assert soap == {"name": "Lavender Soap", "price_cents": 1300, "image_url": "https://cdn.example.com/soap.jpg"}


# --- idempotency ----------------------------------------------------------------------------

def test_reimporting_the_same_files_changes_nothing(store: Store) -> None:
    customers(store)
    orders(store)
    import_products(store, PRODUCTS, now=NOW)
    before = dump(store)

    reports = [customers(store, now=LATER), orders(store, now=LATER), import_products(store, PRODUCTS, now=LATER)]

    assert dump(store) == before
    for report in reports:
        assert (report.customers_created, report.customers_updated, report.orders_created, report.orders_updated,
                report.lines, report.products_created, report.products_updated) == (0, 0, 0, 0, 0, 0, 0), report


def test_an_orders_import_rebuilds_product_affinity_only_when_orders_change(store: Store, db_path: Path,
                                                                            tmp_path: Path) -> None:
    orders(store)
    pairs = "SELECT sku, related_sku FROM product_affinity ORDER BY sku, related_sku"
    assert [tuple(row.values()) for row in query(store, pairs)] == [
        ("NAME:gift-wrap", "SOAP-LAV"), ("SALT-L", "SOAP-LAV"), ("SOAP-LAV", "NAME:gift-wrap"), ("SOAP-LAV", "SALT-L")]
    assert one(store, "SELECT value FROM meta WHERE key = 'affinity_refreshed_at'") == {"value": NOW.isoformat()}
    before = db_bytes(store, db_path)

    orders(store, now=LATER)  # the same file: nothing changes, not even the affinity stamp

    assert db_bytes(store, db_path) == before
    cancelled = rewrite(ORDERS, tmp_path / "cancelled.csv", set_cell(2, "Cancelled at", "2025-03-02 10:00:00 +0100"))
    orders(store, cancelled, now=LATER)  # #1001, the soap with gift wrap, no longer counts
    assert [tuple(row.values()) for row in query(store, pairs)] == [("SALT-L", "SOAP-LAV"), ("SOAP-LAV", "SALT-L")]
    assert one(store, "SELECT value FROM meta WHERE key = 'affinity_refreshed_at'") == {"value": LATER.isoformat()}


def test_reimporting_the_legacy_file_changes_nothing(store: Store) -> None:
    customers(store)
    customers(store, CUSTOMERS_LEGACY)
    before = dump(store)

    report = customers(store, CUSTOMERS_LEGACY, now=LATER)

    assert dump(store) == before
    assert (report.customers_created, report.customers_updated) == (0, 0)


# --- all or nothing -------------------------------------------------------------------------

def strip_order_columns(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Turn #1005's only row into a row that repeats just Name and the Lineitem columns."""
    row = rows[6]
    for column in list(row):
        if column != "Name" and not column.startswith("Lineitem"):
            row[column] = ""
    return rows


BAD_FILES = [
    pytest.param("customers", CUSTOMERS, set_cell(4, "Time Zone", "Mars/Olympus"), 4, "Time Zone",
                 "'Mars/Olympus' is not an IANA time zone name", id="invalid-time-zone"),
    pytest.param("customers", CUSTOMERS, set_cell(2, BIRTHDAY_COLUMN, "1990-02-30"), 2, BIRTHDAY_COLUMN,
                 "'1990-02-30' is not a real date", id="impossible-birthday"),
    pytest.param("customers", CUSTOMERS, set_cell(3, BIRTHDAY_COLUMN, "29/02/2000"), 3, BIRTHDAY_COLUMN,
                 "is not a birthday like 1990-04-23", id="birthday-format"),
    pytest.param("customers", CUSTOMERS, set_cell(4, "Accepts Email Marketing", "maybe"), 4,
                 "Accepts Email Marketing", "'maybe' is not yes or no", id="row-after-multiline-note"),
    pytest.param("customers", CUSTOMERS, set_cell(5, "Email", "ADA@example.com"), 5, "Email",
                 "ada@example.com is already on row 2", id="duplicate-email"),
    pytest.param("orders", ORDERS, set_cell(4, "Created at", "2025-13-01 10:00:00 +0100"), 4, "Created at",
                 "is not a date and time like 2025-03-01 14:05:00 +0100", id="bad-date"),
    pytest.param("orders", ORDERS, set_cell(3, "Lineitem price", "2,50"), 3, "Lineitem price",
                 "'2,50' is not an amount like 12.50", id="bad-money-on-a-later-row"),
    pytest.param("orders", ORDERS, set_cell(2, "Total", "twelve"), 2, "Total",
                 "'twelve' is not an amount like 12.50", id="bad-total"),
    pytest.param("orders", ORDERS, set_cell(6, "Lineitem quantity", "two"), 6, "Lineitem quantity",
                 "'two' is not a whole number of items", id="bad-quantity"),
    pytest.param("orders", ORDERS, strip_order_columns, 8, "Created at",
                 "this is the first row of order #1005, but its order columns", id="first-row-without-order"),
    pytest.param("orders", ORDERS, set_cell(8, "Cancelled at", "yesterday"), 8, "Cancelled at",
                 "'yesterday' is not a date and time", id="bad-cancelled-at"),
    pytest.param("orders", ORDERS, set_cell(9, "Name", "#1001"), 9, "Name",
                 "belongs to order #1001, whose other rows are further up", id="order-rows-apart"),
    pytest.param("products", PRODUCTS, set_cell(5, "Variant Price", "9.00 EUR"), 5, "Variant Price",
                 "'9.00 EUR' is not an amount", id="bad-variant-price"),
]


@pytest.mark.parametrize(("kind", "source", "edit", "row", "column", "reason"), BAD_FILES)
def test_a_bad_row_rejects_the_whole_file(store: Store, db_path: Path, tmp_path: Path, kind: str, source: Path,
                                          edit: Callable, row: int, column: str, reason: str) -> None:
    customers(store)
    orders(store)
    before = db_bytes(store, db_path)
    bad = rewrite(source, tmp_path / f"bad_{kind}.csv", edit)

    with pytest.raises(DataImportError) as caught:
        import_file(store, kind, bad, now=LATER)

    error = caught.value
    assert (error.path, error.row, error.column) == (str(bad), row, column)
    assert reason in error.reason
    assert str(error).startswith(f"{bad}: row {row}, column {column!r}: ")
    assert str(error).endswith("; nothing was imported")
    assert error.hint
    assert db_bytes(store, db_path) == before


def test_invalid_time_zone_is_reported_exactly(store: Store, tmp_path: Path) -> None:
    bad = rewrite(CUSTOMERS, tmp_path / "customers.csv", set_cell(3, "Time Zone", "Europe/Atlantis"))

    with pytest.raises(DataImportError) as caught:
        customers(store, bad)

    assert str(caught.value) == (f"{bad}: row 3, column 'Time Zone': 'Europe/Atlantis' is not an IANA time zone "
                                 "name such as Europe/Berlin or America/New_York; nothing was imported")
    assert caught.value.hint == ("correct that cell in the file (or export it from Shopify again) and run the "
                                 "import again")
    assert query(store, "SELECT * FROM customer") == []


def test_an_address_that_leaves_doubt_keeps_the_known_time_zone(store: Store, tmp_path: Path) -> None:
    def bob(zone: str, province: str) -> Callable[[list[dict[str, str]]], list[dict[str, str]]]:
        def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
            rows[1].update({"Time Zone": zone, "Default Address Province Code": province})
            return rows
        return edit

    customers(store, rewrite(CUSTOMERS, tmp_path / "first.csv", bob("America/Chicago", "TX")))
    customers(store, rewrite(CUSTOMERS, tmp_path / "again.csv", bob("", "TX")), now=LATER)  # Texas has two zones
    assert one(store, "SELECT time_zone FROM customer WHERE email = 'bob@example.com'")["time_zone"] == (
        "America/Chicago")
    customers(store, rewrite(CUSTOMERS, tmp_path / "moved.csv", bob("", "CA")), now=LATER)
    assert one(store, "SELECT time_zone FROM customer WHERE email = 'bob@example.com'")["time_zone"] == (
        "America/Los_Angeles")


def test_a_language_column_gives_customers_their_locale(store: Store, tmp_path: Path) -> None:
    """Shopify's own exports have no such column; other exporters write `Language` (en, fr, pt-BR)."""
    def languages(ada: str, bob: str) -> Callable[[list[dict[str, str]]], list[dict[str, str]]]:
        def edit(rows: list[dict[str, str]]) -> list[dict[str, str]]:
            rows[0]["Language"], rows[1]["Language"] = ada, bob
            return rows
        return edit

    def locales() -> dict[str, str | None]:
        return {row["email"]: row["locale"] for row in query(
            store, "SELECT email, locale FROM customer WHERE email IN ('ada@example.com', 'bob@example.com')")}

    customers(store)
    assert locales() == {"ada@example.com": None, "bob@example.com": None}
    customers(store, rewrite(CUSTOMERS, tmp_path / "lang.csv", languages("fr-CA", "de"), add=("Language",)))
    assert locales() == {"ada@example.com": "fr_CA", "bob@example.com": "de"}
    customers(store, now=LATER)  # a file without the column leaves locales alone
    assert locales() == {"ada@example.com": "fr_CA", "bob@example.com": "de"}
    customers(store, rewrite(CUSTOMERS, tmp_path / "cleared.csv", languages("", "pt-br"), add=("Language",)))
    assert locales() == {"ada@example.com": None, "bob@example.com": "pt_BR"}

    bad = rewrite(CUSTOMERS, tmp_path / "bad.csv", languages("Français", "de"), add=("Language",))
    with pytest.raises(DataImportError) as caught:
        customers(store, bad)
    assert str(caught.value).startswith(f"{bad}: row 2, column 'Language': 'Français' is not a locale")
    assert locales() == {"ada@example.com": None, "bob@example.com": "pt_BR"}


def test_customers_without_email_are_skipped_with_a_warning(store: Store, tmp_path: Path) -> None:
    phone_only = rewrite(CUSTOMERS, tmp_path / "phone_only.csv", set_cell(6, "Email", "  "))
    report = customers(store, phone_only)
    full = customers(store, CUSTOMERS)
    assert report.customers_skipped == 1
    assert report.warnings == ["row 6: customer without an email address; skipped"]
    assert "1 customers without email skipped" in report.summary()
    assert full.customers_created == 1  # the skipped row's customer arrives once it has an address


def test_amounts_use_the_currencys_minor_unit() -> None:
    from runner.importers.cells import parse_cents

    assert parse_cents("12.50") == 1250
    assert parse_cents("1500", "JPY") == 1500
    assert parse_cents("1.2345", "KWD") == 1235


def test_a_bad_row_after_flushed_chunks_still_rolls_everything_back(store: Store, db_path: Path,
                                                                    tmp_path: Path) -> None:
    customers(store)
    before = db_bytes(store, db_path)
    path = tmp_path / "many.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing", "Tags"])
        for n in range(2500):
            writer.writerow([f"'{n}", "Test", str(n), f"test{n}@example.com", "yes", "bulk"])
        writer.writerow(["'x", "Bad", "Row", "not-an-email", "yes", ""])

    with pytest.raises(DataImportError) as caught:
        customers(store, path, now=LATER)

    assert (caught.value.row, caught.value.column) == (2502, "Email")
    assert db_bytes(store, db_path) == before


@pytest.mark.parametrize(("kind", "missing", "hint"), [
    ("customers", "Email", "this does not look like a Shopify customers export"),
    ("orders", "Lineitem sku", "this does not look like a Shopify orders export"),
    ("products", "Variant SKU", "this does not look like a Shopify products export"),
])
def test_a_missing_column_names_the_column(store: Store, tmp_path: Path, kind: str, missing: str,
                                           hint: str) -> None:
    source = {"customers": CUSTOMERS, "orders": ORDERS, "products": PRODUCTS}[kind]
    bad = rewrite(source, tmp_path / "other.csv", lambda rows: rows, drop=(missing,))

    with pytest.raises(DataImportError) as caught:
        import_file(store, kind, bad)

    assert (caught.value.row, caught.value.column) == (None, missing)
    assert str(caught.value) == f"{bad}, column {missing!r}: the header row has no such column; nothing was imported"
    assert caught.value.hint is not None and caught.value.hint.startswith(hint)


def test_an_orders_file_is_not_a_customers_file(store: Store) -> None:
    with pytest.raises(DataImportError) as caught:
        customers(store, ORDERS)
    assert caught.value.column == "First Name"


# --- progress, aggregates, zones -------------------------------------------------------------

def test_progress_is_reported_per_chunk(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["First Name", "Last Name", "Email", "Accepts Marketing"])
        writer.writerows(["A", str(n), f"a{n}@example.com", "no"] for n in range(2500))
    calls: list[int] = []

    report = customers(store, path, progress=calls.append)

    assert report.customers_created == 2500
    assert calls == [1000, 2000, 2500]


def test_refresh_customer_aggregates_with_a_session_and_chunked_ids(store: Store) -> None:
    customers(store)
    orders(store)
    expected = query(store, "SELECT id, order_count, total_spent_cents, first_order_at, last_order_at "
                            "FROM customer ORDER BY id")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE customer SET order_count = 99, total_spent_cents = 1, last_order_at = NULL"))

    with Session(store.engine) as session:
        refresh_customer_aggregates(session, range(1, 1201))  # more ids than one chunk holds
        session.commit()
    assert query(store, "SELECT id, order_count, total_spent_cents, first_order_at, last_order_at "
                        "FROM customer ORDER BY id") == expected

    with store.engine.begin() as conn:
        conn.execute(text("UPDATE customer SET order_count = 99"))
        refresh_customer_aggregates(conn)  # every customer
    assert query(store, "SELECT id, order_count, total_spent_cents, first_order_at, last_order_at "
                        "FROM customer ORDER BY id") == expected


@pytest.mark.parametrize(("country", "province", "zone"), [
    ("DE", "BY", "Europe/Berlin"),
    ("FR", "", "Europe/Paris"),
    ("GB", None, "Europe/London"),
    ("IE", "", "Europe/Dublin"),
    ("IT", "RM", "Europe/Rome"),
    ("JP", "TOKYO-TO", "Asia/Tokyo"),
    ("NL", "", "Europe/Amsterdam"),
    ("NZ", "", "Pacific/Auckland"),
    ("NZ", "CIT", "Pacific/Chatham"),
    ("ES", "M", "Europe/Madrid"),
    ("ES", "GC", "Atlantic/Canary"),
    ("ES", "", None),  # mainland or Canary Islands: the province decides
    ("US", "CA", "America/Los_Angeles"),
    ("US", "NY", "America/New_York"),
    ("us", "us-ny", "America/New_York"),
    ("US", "TX", None),
    ("US", "", None),
    ("CA", "ON", "America/Toronto"),
    ("CA", "NU", None),
    ("AU", "NSW", "Australia/Sydney"),
    ("AU", "WA", "Australia/Perth"),
    ("BR", "SP", "America/Sao_Paulo"),
    ("MX", "CDMX", "America/Mexico_City"),
    ("MX", "Q ROO", "America/Cancun"),
    ("MX", "CHIH", None),
    ("PT", "PT-20", "Atlantic/Azores"),
    ("RU", "MOW", None),
    ("", "", None),
    ("ZZ", "", None),
])
def test_zone_for_address(country: str, province: str | None, zone: str | None) -> None:
    assert zone_for_address(country, province) == zone


def test_zone_tables_name_real_zones() -> None:
    names = available_timezones()
    assert {zone for table in province_zones().values() for zone in table.values()} <= names
    countries = single_zone_countries()
    assert set(countries.values()) <= names
    assert "US" not in countries and "DE" not in countries and countries["JP"] == "Asia/Tokyo"


def test_imports_on_every_database(database_url: str, tmp_path: Path) -> None:
    """The same imports on SQLite and (when configured) PostgreSQL: dialect upserts, correlated UPDATE."""
    store = Store(database_url)
    store.init()
    try:
        customers(store)
        orders(store)
        import_products(store, PRODUCTS, now=NOW)
        before = dump(store)
        assert one(store, "SELECT order_count, total_spent_cents FROM customer WHERE email = 'ada@example.com'") \
            == {"order_count": 2, "total_spent_cents": 2990 + 4800}
        assert one(store, "SELECT price_cents FROM product WHERE sku = 'SOAP-LAV'")["price_cents"] == 1300

        customers(store, now=LATER)
        orders(store, now=LATER)
        import_products(store, PRODUCTS, now=LATER)
        assert dump(store) == before

        bad = rewrite(ORDERS, tmp_path / "bad.csv", set_cell(9, "Lineitem quantity", "-1"))
        with pytest.raises(DataImportError) as caught:
            orders(store, bad, now=LATER)
        assert (caught.value.row, caught.value.column) == (9, "Lineitem quantity")
        assert dump(store) == before
    finally:
        store.close()
