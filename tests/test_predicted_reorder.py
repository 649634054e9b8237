"""The `predicted_reorder` trigger and the shipped campaign: due `before` the customer's next order is
expected by the mean interval of their own orders, once per cycle, cancelled by their next order."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from shopkit import ROOT, ShopBuilder, utc
from sqlalchemy import insert, select
from test_engine import ledger, sent_keys, tick
from test_review_request import text_parts

from runner import migrations
from runner.app import App
from runner.campaigns import parse_campaign
from runner.models import Customer, Order, ReorderForecast
from runner.store import Store
from runner.triggers.base import Window

DAY0 = utc(2026, 3, 1, 12, 0)


def install_enabled(campaigns_dir: Path) -> None:
    """The shipped campaign (off by default), turned on: K = 3 orders, due 3 days before, a week apart at least."""
    text = (ROOT / "campaigns" / "predicted-reorder.yaml").read_text()
    (campaigns_dir / "predicted-reorder.yaml").write_text(text.replace("enabled: false", "enabled: true"))


def orders_on(shop: ShopBuilder, customer: int, *days: float, **options) -> list[int]:
    return [shop.order(customer, DAY0 + dt.timedelta(days=day), **options) for day in days]


def day(n: float) -> dt.datetime:
    return DAY0 + dt.timedelta(days=n)


def test_due_exactly_before_the_expected_order_and_once_per_cycle(app: App, shop: ShopBuilder, campaigns_dir):
    install_enabled(campaigns_dir)
    ada = shop.customer("ada@example.com")
    *_, last = orders_on(shop, ada, 0, 10, 20)  # every 10 days: the next expected on day 30, due on day 27
    assert tick(app, day(27) - dt.timedelta(seconds=1))["predicted-reorder"]["due"] == 0
    assert tick(app, day(27))["predicted-reorder"]["sent"] == 1
    assert tick(app, day(27) + dt.timedelta(hours=1))["predicted-reorder"]["due"] == 0  # the next tick
    assert tick(app, day(40))["predicted-reorder"]["due"] == 0  # no order since: still one email per cycle
    (sent,) = ledger(app)
    assert (sent.occurrence_key, sent.order_id) == (f"reorder:{ada}:20260321120000", last)
    assert sent.reason == "3 orders, one every 10 days on average: the next is expected in 3 days (2026-03-31)"


def test_one_order_short_of_k_is_never_due(app: App, shop: ShopBuilder, campaigns_dir):
    install_enabled(campaigns_dir)
    ada = shop.customer("ada@example.com")
    orders_on(shop, ada, 0, 10)
    for at in (day(17), day(27), day(57)):
        assert tick(app, at)["predicted-reorder"]["due"] == 0
    assert ledger(app) == []


def test_an_order_after_the_last_cancels_it_and_starts_the_next_cycle(app: App, shop: ShopBuilder, campaigns_dir):
    install_enabled(campaigns_dir)
    ada = shop.customer("ada@example.com")
    orders_on(shop, ada, 0, 10, 20, 26)  # the fourth came a day before the reminder: 26 / 3 days apart
    assert tick(app, day(27))["predicted-reorder"]["due"] == 0
    next_due = day(26) + dt.timedelta(seconds=26 * 86400 // 3) - dt.timedelta(days=3)  # day 31.67
    assert tick(app, next_due - dt.timedelta(seconds=1))["predicted-reorder"]["due"] == 0
    assert tick(app, next_due)["predicted-reorder"]["sent"] == 1
    assert sent_keys(app) == [f"reorder:{ada}:20260327120000"]


def test_cancelled_orders_do_not_count(app: App, shop: ShopBuilder, campaigns_dir):
    install_enabled(campaigns_dir)
    ada = shop.customer("ada@example.com")
    orders_on(shop, ada, 0, 10)
    orders_on(shop, ada, 15, cancelled=True)  # counted, 3 orders 7.5 days apart would be due on day 19.5
    orders_on(shop, ada, 20)
    orders_on(shop, ada, 22, cancelled=day(22.5))  # cancelled: the last order is still day 20's
    assert tick(app, day(26))["predicted-reorder"]["due"] == 0
    assert tick(app, day(27))["predicted-reorder"]["sent"] == 1
    assert sent_keys(app) == [f"reorder:{ada}:20260321120000"]


def test_a_cancellation_after_the_last_order_does_not_move_its_forecast(app: App, shop: ShopBuilder):
    """The estimate is fixed when the order is placed: an earlier order cancelled later still counts."""
    ada = shop.customer("ada@example.com")
    first, second = orders_on(shop, ada, 0, 10)
    third = shop.order(ada, day(20))
    shop.order(ada, day(5), cancelled=day(21))  # live when the third was placed
    with app.store.session() as session:
        rows = {row.order_id: (row.orders, row.interval_seconds, row.expected_at)
                for row in session.exec(select(ReorderForecast)).scalars()}
    assert first not in rows  # a first order has no interval
    assert rows[second] == (3, 5 * 86400, day(15).replace(tzinfo=None))  # the day-5 order was live then
    assert rows[third] == (4, 20 * 86400 // 3, (day(20) + dt.timedelta(seconds=20 * 86400 // 3)).replace(tzinfo=None))


def test_cancelling_the_last_order_brings_back_the_previous_cycle(app: App, shop: ShopBuilder, campaigns_dir):
    install_enabled(campaigns_dir)
    ada = shop.customer("ada@example.com")
    orders_on(shop, ada, 0, 10, 20)
    orders_on(shop, ada, 25, cancelled=day(25.5))
    assert tick(app, day(27))["predicted-reorder"]["sent"] == 1
    assert sent_keys(app) == [f"reorder:{ada}:20260321120000"]


def test_a_rhythm_faster_than_min_interval_is_left_alone(app: App, shop: ShopBuilder, campaigns_dir):
    install_enabled(campaigns_dir)  # min_interval: 7d
    ada = shop.customer("ada@example.com")
    orders_on(shop, ada, 0, 6, 12)  # every 6 days
    for at in (day(15), day(18), day(24)):
        assert tick(app, at)["predicted-reorder"]["due"] == 0


def test_at_a_past_instant_the_later_order_has_not_happened_yet(app: App, shop: ShopBuilder, campaigns_dir):
    install_enabled(campaigns_dir)
    ada = shop.customer("ada@example.com")
    last = orders_on(shop, ada, 0, 10, 20)[-1]
    orders_on(shop, ada, 29)  # in the store, but after the instant previewed
    (item,) = app.preview(day(27), app.campaigns(day(27)))
    assert (item.occurrence.occurrence_key, item.occurrence.order_id) == (f"reorder:{ada}:20260321120000", last)
    assert item.occurrence.due_at == day(27).replace(tzinfo=None)
    assert list(app.preview(day(30), app.campaigns(day(30)))) == []  # the order of day 29 cancelled it


def test_the_email_shows_the_rhythm_and_the_last_order(app: App, shop: ShopBuilder, campaigns_dir):
    install_enabled(campaigns_dir)
    ada = shop.customer("ada@example.com")
    orders_on(shop, ada, 0, 10)
    shop.order(ada, day(20), [("COFFEE-HOUSE-250G", 2)])
    assert tick(app, day(27))["predicted-reorder"]["sent"] == 1
    (text,) = text_parts(app)
    assert "Time for your next order?" in text and "about every 10 days" in text
    assert "- Coffee-House-250G (x2): https://shop.example.com/COFFEE-HOUSE-250G" in text


def test_the_search_is_a_range_of_the_expected_at_index(app: App, tmp_path: Path):
    """On SQLite: one search of ix_reorder_forecast_expected, the order by its key, the newer order by
    (customer_id, placed_at); no scan of any table."""
    if app.store.engine.dialect.name != "sqlite":
        pytest.skip("the plan is SQLite's")
    campaign, _ = parse_campaign(ROOT / "campaigns" / "predicted-reorder.yaml")
    assert campaign is not None
    window = Window(start=day(0).replace(tzinfo=None), now=day(1).replace(tzinfo=None),
                    default_zone=app.shop().default_zone)
    plans = []
    for query in campaign.trigger.occurrences(window) + campaign.trigger.candidates(window):
        compiled = query.compile(app.store.engine, compile_kwargs={"literal_binds": True})
        with app.store.engine.connect() as conn:
            plans += [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
    assert not [plan for plan in plans if plan.startswith("SCAN")], plans
    assert any("ix_reorder_forecast_expected (expected_at>? AND expected_at<?)" in plan for plan in plans), plans


def test_min_interval_must_exceed_before(tmp_path: Path):
    text = (ROOT / "campaigns" / "predicted-reorder.yaml").read_text().replace("min_interval: 7d", "min_interval: 2d")
    (tmp_path / "fast.yaml").write_text(text)
    campaign, problems = parse_campaign(tmp_path / "fast.yaml")
    assert campaign is None
    assert "min_interval must be longer than before" in str(problems[0])


def test_upgrading_a_store_fills_the_forecasts_from_its_orders(database_url: str):
    store = Store(database_url)
    try:
        with store.engine.begin() as connection:
            before = migrations.scripts().get_revision("0010").down_revision  # the revision before the table
            command.upgrade(migrations.config(connection), before)
            connection.execute(insert(Customer.__table__), [{
                "id": 1, "email": "ada@example.com", "first_name": "Ada", "last_name": "", "accepts_marketing": True,
                "created_at": day(0).replace(tzinfo=None), "order_count": 3, "total_spent_cents": 7500}])
            connection.execute(insert(Order.__table__), [{
                "id": n + 1, "external_id": f"o-{n}", "name": f"#{n}", "customer_id": 1, "currency": "USD",
                "placed_at": day(10 * n).replace(tzinfo=None), "subtotal_cents": 2500, "total_cents": 2500}
                for n in range(3)])
        store.init()
        with store.session() as session:
            rows = [(row.order_id, row.orders, row.expected_at) for row in session.exec(select(ReorderForecast))
                    .scalars()]
        assert sorted(rows) == [(2, 2, day(20).replace(tzinfo=None)), (3, 3, day(30).replace(tzinfo=None))]
    finally:
        store.close()
