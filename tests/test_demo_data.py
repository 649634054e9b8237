"""The synthetic demo shop: deterministic, consistent, and shaped so every trigger has work."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, func, inspect, select
from sqlmodel import SQLModel

from runner.demo.catalogue import PRODUCTS, REPLENISHMENT_CYCLES
from runner.demo.shop import ShopSummary, generate_shop
from runner.errors import StoreError
from runner.models import Customer, CustomerTag, Order, OrderLine, Product, Suppression
from runner.store import Store, utc_naive

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
NOW_NAIVE = utc_naive(NOW)
SKUS = {
    "COFFEE-ETHIOPIA-250G", "COFFEE-COLOMBIA-250G", "COFFEE-HOUSE-1KG", "COFFEE-DECAF-250G",
    "TEA-EARLGREY-100G", "TEA-SENCHA-100G", "FILTER-V60-100", "MUG-STONEWARE", "MUG-TRAVEL",
    "GRINDER-HAND", "KETTLE-GOOSENECK", "DRIPPER-V60", "SCALE-BREW",
}


def table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def naive(moment: dt.datetime) -> dt.datetime:
    """A stored timestamp as naive UTC, whichever form the column type returns."""
    return utc_naive(moment)


def new_store(path: Path) -> Store:
    store = Store(f"sqlite:///{path}")
    store.init()
    return store


def rows(store: Store, model: type[SQLModel]) -> list[Any]:
    t = table(model)
    with store.engine.connect() as conn:
        return list(conn.execute(select(t).order_by(*t.primary_key.columns)).all())


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, ShopSummary]]:
    store = new_store(tmp_path_factory.mktemp("demo") / "t.db")
    summary = generate_shop(store, customers=2000, now=NOW)
    yield store, summary
    store.close()


def test_same_arguments_give_identical_tables(tmp_path: Path) -> None:
    first = new_store(tmp_path / "a.db")
    second = new_store(tmp_path / "b.db")
    generate_shop(first, customers=300, now=NOW, seed=3)
    generate_shop(second, customers=300, now=NOW_NAIVE, seed=3)  # naive UTC is the same instant
    for model in (Customer, CustomerTag, Product, Order, OrderLine, Suppression):
        assert rows(first, model) == rows(second, model), model.__name__
    assert rows(first, Order)


def test_another_seed_gives_another_shop(tmp_path: Path) -> None:
    first = new_store(tmp_path / "a.db")
    second = new_store(tmp_path / "b.db")
    generate_shop(first, customers=300, now=NOW, seed=1)
    generate_shop(second, customers=300, now=NOW, seed=2)
    assert rows(first, Order) != rows(second, Order)


def test_row_counts_for_2000_customers(shop: tuple[Store, ShopSummary]) -> None:
    store, summary = shop
    counts = {model: len(rows(store, model)) for model in (Customer, Order, OrderLine, Product, Suppression)}
    assert summary == ShopSummary(customers=counts[Customer], orders=counts[Order], lines=counts[OrderLine],
                                  products=counts[Product], suppressed=counts[Suppression])
    assert counts[Customer] == 2000
    assert 5000 <= counts[Order] <= 7000
    assert 1.2 * counts[Order] <= counts[OrderLine] <= 2.5 * counts[Order]
    assert counts[Product] == 13
    assert 20 <= counts[Suppression] <= 80


def test_products_are_the_demo_catalogue(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    products = rows(store, Product)
    assert {p.sku for p in products} == SKUS == {p.sku for p in PRODUCTS}
    assert all(p.url.startswith("https://shop.example.com/products/") and p.image_url and p.price_cents > 0
               for p in products)
    assert set(REPLENISHMENT_CYCLES) == {
        "COFFEE-ETHIOPIA-250G", "COFFEE-COLOMBIA-250G", "COFFEE-HOUSE-1KG", "COFFEE-DECAF-250G",
        "TEA-EARLGREY-100G", "TEA-SENCHA-100G", "FILTER-V60-100"}
    with store.engine.connect() as conn:
        sold = set(conn.execute(select(table(OrderLine).c.sku).distinct()).scalars())
    assert sold == SKUS


def test_customers_look_real(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    customers = rows(store, Customer)
    assert customers[41].email == "customer-00042@example.com"
    assert {"Zoë", "José", "Łukasz"} <= {c.first_name for c in customers}
    with_birthday = [c for c in customers if c.birthday is not None]
    assert 0.6 <= len(with_birthday) / len(customers) <= 0.8
    assert all(c.birthday_md == c.birthday.strftime("%m-%d") and 1950 <= c.birthday.year <= 2005
               for c in with_birthday)
    assert all(c.birthday_md is None for c in customers if c.birthday is None)


def test_birthdays_include_29_february_today_and_tomorrow(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    month_days = Counter(c.birthday_md for c in rows(store, Customer))
    assert month_days["02-29"] >= 3
    assert month_days["11-23"] >= 3  # today, relative to NOW
    assert month_days["11-24"] >= 3  # tomorrow


def test_birthday_planted_on_a_leap_day_now(tmp_path: Path) -> None:
    store = new_store(tmp_path / "t.db")
    generate_shop(store, customers=300, now=dt.datetime(2028, 2, 29, 12, tzinfo=dt.UTC))
    month_days = Counter(c.birthday_md for c in rows(store, Customer))
    assert month_days["02-29"] >= 3 and month_days["03-01"] >= 3


def test_time_zones_on_both_sides_of_utc(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    zones = {c.time_zone for c in rows(store, Customer)}
    assert None in zones and "UTC" in zones
    offsets = {zone: ZoneInfo(zone).utcoffset(NOW_NAIVE) or dt.timedelta(0) for zone in zones if zone}
    assert any(offset > dt.timedelta(hours=9) for offset in offsets.values())  # Auckland, Sydney
    assert any(offset < dt.timedelta(0) for offset in offsets.values())  # the Americas


def test_consent_and_suppression(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    customers = rows(store, Customer)
    consenting = [c for c in customers if c.accepts_marketing]
    assert 0.75 <= len(consenting) / len(customers) <= 0.95
    assert all(c.consent_at is not None for c in consenting)
    assert all(c.consent_at is None for c in customers if not c.accepts_marketing)
    assert all(naive(c.consent_at) <= naive(c.first_order_at) for c in consenting if c.first_order_at)
    suppressions = rows(store, Suppression)
    emails = {c.email for c in customers}
    assert {s.email for s in suppressions} <= emails
    assert {s.reason for s in suppressions} == {"unsubscribed", "bounced", "complained"}
    assert all(naive(s.created_at) <= NOW_NAIVE for s in suppressions)


def test_customer_timestamps_precede_their_orders(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    o = table(Order)
    with store.engine.connect() as conn:
        first_placed = dict(conn.execute(
            select(o.c.customer_id, func.min(o.c.placed_at)).group_by(o.c.customer_id)).all())
    customers = rows(store, Customer)
    assert all(naive(c.created_at) <= naive(first_placed[c.id]) for c in customers if c.id in first_placed)
    assert 0 < sum(1 for c in customers if c.id not in first_placed) < 200  # newsletter-only sign-ups


def test_aggregates_equal_what_sql_computes(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    o = table(Order)
    computed = (select(o.c.customer_id, func.count(), func.sum(o.c.total_cents),
                       func.min(o.c.placed_at), func.max(o.c.placed_at))
                .where(o.c.cancelled_at.is_(None)).group_by(o.c.customer_id))
    with store.engine.connect() as conn:
        expected = {row[0]: (row[1], row[2], row[3], row[4]) for row in conn.execute(computed)}
    for c in rows(store, Customer):
        assert (c.order_count, c.total_spent_cents, c.first_order_at, c.last_order_at) == \
            expected.get(c.id, (0, 0, None, None)), c.id


def test_order_totals_come_from_lines(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    ol = table(OrderLine)
    with store.engine.connect() as conn:
        sums = dict(conn.execute(select(ol.c.order_id, func.sum(ol.c.quantity * ol.c.unit_price_cents))
                                 .group_by(ol.c.order_id)).all())
    orders = rows(store, Order)
    assert all(order.subtotal_cents == sums[order.id] for order in orders)
    assert all(order.total_cents == order.subtotal_cents for order in orders if order.discount_code is None)
    discounted = [order for order in orders if order.discount_code]
    assert 0.02 <= len(discounted) / len(orders) <= 0.12
    assert all(0 < order.total_cents < order.subtotal_cents for order in discounted)
    assert {order.currency for order in orders} == {"USD"}
    assert orders[122].external_id == "demo-000123" and orders[122].name == "#1123"


def test_foreign_keys_are_consistent(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    o, ol, c = table(Order), table(OrderLine), table(Customer)
    with store.engine.connect() as conn:
        orphan_lines = conn.execute(select(func.count()).select_from(ol.outerjoin(o, ol.c.order_id == o.c.id))
                                    .where(o.c.id.is_(None))).scalar_one()
        mismatched = conn.execute(select(func.count()).select_from(ol.join(o, ol.c.order_id == o.c.id))
                                  .where((ol.c.customer_id != o.c.customer_id) | (ol.c.placed_at != o.c.placed_at))
                                  ).scalar_one()
        orphan_orders = conn.execute(select(func.count()).select_from(o.outerjoin(c, o.c.customer_id == c.c.id))
                                     .where(c.c.id.is_(None))).scalar_one()
        empty_orders = conn.execute(select(func.count()).select_from(o.outerjoin(ol, ol.c.order_id == o.c.id))
                                    .where(ol.c.id.is_(None))).scalar_one()
        counts = Counter(conn.execute(select(func.count()).select_from(ol).group_by(ol.c.order_id)).scalars())
        duplicate_skus = conn.execute(select(func.count()).select_from(
            select(ol.c.order_id).group_by(ol.c.order_id, ol.c.sku).having(func.count() > 1).subquery())).scalar_one()
        tag_orphans = conn.execute(select(func.count()).select_from(
            table(CustomerTag).outerjoin(c, table(CustomerTag).c.customer_id == c.c.id)).where(c.c.id.is_(None))
        ).scalar_one()
    assert (orphan_lines, mismatched, orphan_orders, empty_orders, duplicate_skus, tag_orphans) == (0, 0, 0, 0, 0, 0)
    assert set(counts) == {1, 2, 3, 4}


def test_quantities_mostly_one_some_more_for_coffee(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    lines = rows(store, OrderLine)
    quantities = Counter(line.quantity for line in lines)
    assert quantities[1] / len(lines) > 0.75
    assert any(line.quantity == 3 and line.sku.startswith("COFFEE-") for line in lines)


def test_products_bought_together(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    skus_by_order: dict[int, set[str]] = {}
    for line in rows(store, OrderLine):
        skus_by_order.setdefault(line.order_id, set()).add(line.sku)
    baskets = list(skus_by_order.values())
    assert sum(1 for b in baskets if {"DRIPPER-V60", "FILTER-V60-100"} <= b) >= 50
    assert sum(1 for b in baskets if "GRINDER-HAND" in b and any(s.startswith("COFFEE-") for s in b)) >= 20


def test_history_shape(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    customers = rows(store, Customer)
    order_counts = Counter(c.order_count for c in customers)
    assert order_counts[1] > 0.3 * len(customers)  # many one-time buyers
    assert sum(n for count, n in order_counts.items() if count >= 5) > 0.1 * len(customers)  # regulars
    lapsed_days = [(NOW_NAIVE - naive(c.last_order_at)) / dt.timedelta(days=1)
                   for c in customers if c.last_order_at and c.order_count >= 3]
    assert sum(1 for days in lapsed_days if 60 <= days <= 200) >= 50
    assert sum(1 for days in lapsed_days if 89.5 <= days <= 90.5) >= 3
    orders = rows(store, Order)
    placed = [naive(order.placed_at) for order in orders]
    assert min(placed) >= NOW_NAIVE - dt.timedelta(days=549)
    assert max(placed) < NOW_NAIVE


def test_recent_orders_and_two_on_one_day(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    orders = rows(store, Order)
    recent = [order for order in orders if naive(order.placed_at) > NOW_NAIVE - dt.timedelta(days=3)]
    assert len(recent) >= 10
    two_days_ago = NOW_NAIVE - dt.timedelta(days=2)
    assert all(order.delivered_at is None for order in recent if naive(order.placed_at) > two_days_ago)
    per_day = Counter((order.customer_id, naive(order.placed_at).date()) for order in recent
                      if order.cancelled_at is None)
    assert any(n >= 2 for n in per_day.values())


def test_delivery_and_cancellation(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    orders = rows(store, Order)
    cancelled = [order for order in orders if order.cancelled_at is not None]
    assert 0.005 <= len(cancelled) / len(orders) <= 0.04
    assert all(order.delivered_at is None for order in cancelled)
    assert all(naive(order.placed_at) <= naive(order.cancelled_at) <= NOW_NAIVE for order in cancelled)
    for order in orders:
        if order.delivered_at is not None:
            delay = naive(order.delivered_at) - naive(order.placed_at)
            assert dt.timedelta(days=2) <= delay <= dt.timedelta(days=6)
            assert naive(order.delivered_at) <= NOW_NAIVE
        elif order.cancelled_at is None:
            assert naive(order.placed_at) > NOW_NAIVE - dt.timedelta(days=6)


def test_tags_vip_are_top_spenders(shop: tuple[Store, ShopSummary]) -> None:
    store, _ = shop
    tags = rows(store, CustomerTag)
    vip = {t.customer_id for t in tags if t.tag == "vip"}
    wholesale = {t.customer_id for t in tags if t.tag == "wholesale"}
    assert len(vip) == 40 and 1 <= len(wholesale) <= 30
    spent = {c.id: c.total_spent_cents for c in rows(store, Customer)}
    assert min(spent[i] for i in vip) >= max(spent[i] for i in spent if i not in vip)


def test_progress_reports_each_chunk_and_chunks_do_not_change_rows(tmp_path: Path) -> None:
    chunked = new_store(tmp_path / "a.db")
    seen: list[int] = []
    generate_shop(chunked, customers=1001, now=NOW, progress=seen.append, chunk_size=400)
    assert seen == [400, 800, 1001]
    whole = new_store(tmp_path / "b.db")
    seen.clear()
    generate_shop(whole, customers=1001, now=NOW, progress=seen.append)
    assert seen == [1001]
    for model in (Customer, CustomerTag, Order, OrderLine, Suppression):
        assert rows(chunked, model) == rows(whole, model), model.__name__


def test_refuses_a_store_that_holds_data(tmp_path: Path) -> None:
    store = new_store(tmp_path / "t.db")
    generate_shop(store, customers=10, now=NOW)
    with pytest.raises(StoreError, match="already holds data") as raised:
        generate_shop(store, customers=10, now=NOW)
    assert raised.value.hint == "generate the demo shop into a new, empty database"


def test_no_customers_gives_only_the_catalogue(tmp_path: Path) -> None:
    store = new_store(tmp_path / "t.db")
    assert generate_shop(store, customers=0, now=NOW) == ShopSummary(0, 0, 0, 13, 0)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table(CustomerTag))).scalar_one() == 0


def test_sqlite_settings_are_restored(tmp_path: Path) -> None:
    store = new_store(tmp_path / "t.db")
    generate_shop(store, customers=20, now=NOW)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def index_names(store: Store) -> set[str]:
    inspector = inspect(store.engine)
    return {str(index["name"]) for name in inspector.get_table_names() for index in inspector.get_indexes(name)}


def test_indexes_are_rebuilt_after_the_load(tmp_path: Path) -> None:
    store = new_store(tmp_path / "t.db")
    before = index_names(store)
    assert {"ix_orders_placed", "ix_order_line_reorder", "ix_customer_birthday"} <= before
    generate_shop(store, customers=20, now=NOW)
    assert index_names(store) == before


def test_indexes_are_rebuilt_when_the_load_fails(tmp_path: Path) -> None:
    store = new_store(tmp_path / "t.db")
    before = index_names(store)

    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_shop(store, customers=30, now=NOW, progress=interrupt, chunk_size=10)
    assert index_names(store) == before
    assert len(rows(store, Customer)) == 10  # the first chunk was committed
