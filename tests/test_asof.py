"""Evaluating at a past instant on a store that already holds later orders answers as the store was then."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from history import build_history, cut_back, write_campaigns
from shopkit import ROOT, ShopBuilder, utc, write_campaign

from runner.app import App
from runner.asof import holds_orders_after


def previewed(app: App, at: dt.datetime) -> list[tuple]:
    return sorted((item.occurrence.campaign_id, item.occurrence.occurrence_key, item.occurrence.due_at,
                   item.occurrence.skip_reason) for item in app.preview(at, app.campaigns(at)))


@pytest.mark.parametrize(("seed", "at"), [(1, dt.datetime(2026, 3, 10, 9)), (2, dt.datetime(2026, 3, 17, 14, 30))])
def test_preview_at_a_past_instant_equals_preview_of_the_store_cut_back_to_it(
        app: App, shop: ShopBuilder, campaigns_dir: Path, seed: int, at: dt.datetime):
    write_campaigns(campaigns_dir)
    build_history(shop, dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 20), customers=80, seed=seed)
    with app.store.session() as session:
        assert holds_orders_after(session, at)
    with_later_orders = previewed(app, at)
    cut_back(app.store, at)
    with app.store.session() as session:
        assert not holds_orders_after(session, at)
    assert with_later_orders == previewed(app, at)
    assert {campaign for campaign, *_ in with_later_orders} >= {"lapse", "lapse-new", "refill", "bday"}


def test_a_win_back_at_a_past_instant_sees_the_last_order_then(app: App, shop: ShopBuilder, campaigns_dir: Path):
    shutil.copy(ROOT / "campaigns" / "winback.yaml", campaigns_dir)
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 1, 1, 12))
    shop.order(ada, utc(2026, 5, 1, 12))  # she came back a month after the lapse
    (item,) = app.preview(utc(2026, 4, 1, 12), app.campaigns(utc(2026, 4, 1, 12)))
    assert item.occurrence.occurrence_key == f"lapse:{ada}:20260101120000"
    assert item.occurrence.order_id is None


def test_orders_after_the_instant_do_not_count_in_the_audience(app: App, shop: ShopBuilder, campaigns_dir: Path):
    write_campaign(campaigns_dir, """
        id: first-buyers
        name: Thanks to first-time buyers
        trigger: {type: order, event: placed, delay: 1h}
        audience:
          - {field: order_count, eq: 1}
          - {field: total_spent, lt: 30}
          - {field: last_order_at, within: 2h}
        message: {template: thank_you, subject: "Thanks"}
    """)
    ada = shop.customer("ada@example.com")
    first = shop.order(ada, utc(2026, 3, 1, 9), total_cents=2500)
    shop.order(ada, utc(2026, 3, 8, 9), total_cents=2500)
    at = utc(2026, 3, 1, 10)
    assert [i.occurrence.occurrence_key for i in app.preview(at, app.campaigns(at))] == [f"order:{first}"]


def test_a_cancellation_after_the_instant_has_not_happened_yet(app: App, shop: ShopBuilder, campaigns_dir: Path):
    shutil.copy(ROOT / "campaigns" / "thank-you.yaml", campaigns_dir)
    ada = shop.customer("ada@example.com")
    order = shop.order(ada, utc(2026, 3, 1, 9), cancelled=utc(2026, 3, 2, 9))
    shop.order(ada, utc(2026, 3, 9, 9))
    at = utc(2026, 3, 1, 11)
    assert [i.occurrence.occurrence_key for i in app.preview(at, app.campaigns(at))] == [f"order:{order}"]
    later = utc(2026, 3, 2, 10)  # cancelled by then: a tick would no longer send it
    assert [i.occurrence.occurrence_key for i in app.preview(later, app.campaigns(later))] == []


def test_no_birthday_for_a_customer_who_had_no_account_yet(app: App, shop: ShopBuilder, campaigns_dir: Path):
    shutil.copy(ROOT / "campaigns" / "birthday.yaml", campaigns_dir)
    ada = shop.customer("ada@example.com", birthday=dt.date(1990, 3, 1), created_at=dt.datetime(2026, 3, 5))
    shop.order(ada, utc(2026, 3, 6, 9))
    at = utc(2026, 3, 1, 9, 30)
    assert list(app.preview(at, app.campaigns(at))) == []
    next_year = utc(2027, 3, 1, 9, 30)
    assert [i.occurrence.occurrence_key for i in app.preview(next_year, app.campaigns(next_year))] == [
        f"birthday:{ada}:2027"]
