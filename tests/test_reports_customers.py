"""Retention figures and segments (`lifecycle customers`): definitions checked on a shop small enough to
work out by hand, as of past instants, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from shopkit import utc

from runner.segments import SegmentRules

AT = dt.datetime(2026, 6, 1)
YEAR = dt.timedelta(days=365)


@pytest.fixture
def small_shop(shop):
    """Four buyers (and one customer who never ordered):
    ann: 2025-03 (last period) and 2026-02 (this period): retained, repeat
    bob: 2025-04 only (last period): lost
    cat: 2026-01 and 2026-03 and 2026-05 (this period; new), one with a code: repeat, big spender
    dan: 2026-05-20, 100.00 with a code: first-time, discount shopper
    """
    ids = {name: shop.customer(f"{name}@example.com") for name in ("ann", "bob", "cat", "dan", "eve")}
    shop.order(ids["ann"], utc(2025, 3, 1), total_cents=4000)
    shop.order(ids["ann"], utc(2026, 2, 1), total_cents=6000)
    shop.order(ids["bob"], utc(2025, 4, 1), total_cents=2000)
    shop.order(ids["cat"], utc(2026, 1, 10), total_cents=30000)
    shop.order(ids["cat"], utc(2026, 3, 10), total_cents=30000, discount_code="SPRING")
    shop.order(ids["cat"], utc(2026, 5, 10), total_cents=30000)
    shop.order(ids["dan"], utc(2026, 5, 20), total_cents=10000, discount_code="WELCOME")
    shop.order(ids["dan"], utc(2026, 5, 21), total_cents=99999, cancelled=True)
    shop.order(ids["eve"], utc(2026, 7, 1), total_cents=5000)  # after AT: invisible
    return ids


def test_retention_figures_follow_their_definitions(app, small_shop):
    figures = app.customer_figures(AT, YEAR, SegmentRules(big_spender_cents=50000, lapsed_after=dt.timedelta(days=180)))
    assert (figures.customers, figures.orders, figures.revenue_cents) == (4, 7, 112000)
    assert figures.repeat_purchase_rate == pytest.approx(2 / 4)
    # last period's buyers: ann, bob; of them ann bought again this period
    assert figures.retention_rate == pytest.approx(1 / 2)
    # this period: ann 1 order, cat 3, dan 1 = 5 orders, 106000 revenue, 3 buying customers
    assert figures.average_order_value_cents == pytest.approx(106000 / 5)
    assert figures.purchase_frequency == pytest.approx(5 / 3)
    assert figures.lifespan_periods == pytest.approx(2.0)
    assert figures.lifetime_value_cents == pytest.approx(106000 / 5 * 5 / 3 * 2)
    assert figures.revenue_per_customer_cents == pytest.approx(112000 / 4)


def test_segments_are_the_declared_conditions(app, small_shop):
    figures = app.customer_figures(AT, YEAR, SegmentRules(vip_percentile=75, big_spender_cents=50000,
                                                          high_aov_percentile=50, discount_share=0.5,
                                                          lapsed_after=dt.timedelta(days=180)))
    by_name = {s.name: s for s in figures.segments}
    assert by_name["first_time"].customers == 2  # bob, dan
    assert by_name["repeat"].customers == 2  # ann, cat
    assert (by_name["vip"].customers, by_name["vip"].revenue_cents) == (1, 90000)  # top 25% of 4: cat
    assert by_name["big_spenders"].customers == 1  # cat: 900.00
    # AOVs: ann 5000, bob 2000, cat 30000, dan 10000; the top half: cat, dan
    assert by_name["high_aov"].customers == 2
    assert by_name["full_price"].customers == 2  # ann, bob
    assert by_name["discount_shoppers"].customers == 1  # dan: 1 of 1 (cat: 1 of 3)
    assert by_name["lapsed"].customers == 1  # bob: last order 2025-04
    assert by_name["repeat"].aov_cents == pytest.approx(100000 / 5)


def test_a_past_instant_sees_the_shop_as_it_was(app, small_shop):
    before = app.customer_figures(dt.datetime(2025, 12, 31), YEAR, SegmentRules())
    assert (before.customers, before.orders) == (2, 2)  # ann's first order and bob's
    assert before.retention_rate is None  # nobody bought in the period before
    assert before.lifetime_value_cents is None


def test_an_empty_store_has_no_figures_rather_than_zeros(app):
    figures = app.customer_figures(AT, YEAR, SegmentRules())
    assert figures.customers == 0
    assert figures.repeat_purchase_rate is None and figures.lifetime_value_cents is None
    assert all(s.customers == 0 and s.share is None for s in figures.segments)


def test_the_command_prints_a_table_json_and_csv(app, small_shop, settings, monkeypatch, capsys):
    from runner.cli import main

    monkeypatch.setattr("runner.settings.Settings.load", classmethod(lambda cls, *a, **k: settings))
    main(["customers", "--at", "2026-06-01T00:00:00", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert data["customers"] == 4 and data["retention_rate"] == 0.5
    assert data["at"] == "2026-06-01T00:00:00Z"  # ISO 8601 in UTC, like every instant of the JSON output
    assert {s["name"] for s in data["segments"]} >= {"vip", "lapsed", "discount_shoppers"}
    main(["customers", "--at", "2026-06-01T00:00:00", "--format", "csv"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "figure,value" and "customers,4" in lines and "retention_rate,0.5" in lines
    main(["customers", "--at", "2026-06-01T00:00:00"])
    table = capsys.readouterr().out
    assert "retention rate (365 days)" in table and "50.0%" in table and "discount_shoppers" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def test_the_json_instant_is_in_utc_whatever_zone_at_was_given_in(app, small_shop, settings, monkeypatch, capsys):
    from runner.cli import main

    monkeypatch.setattr("runner.settings.Settings.load", classmethod(lambda cls, *a, **k: settings))
    main(["customers", "--at", "2026-06-01T02:00:00+02:00", "--format", "json"])
    assert json.loads(capsys.readouterr().out)["at"] == "2026-06-01T00:00:00Z"
