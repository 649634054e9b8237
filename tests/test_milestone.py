"""The `milestone` trigger and the shipped VIP campaign: due at the order that crosses a threshold, once per
threshold per customer, cancelled orders not counting, one email for an order that crosses several; entering
the VIP segment compared with the threshold recorded nightly, in effect when the order was placed."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from shopkit import ShopBuilder, utc, write_campaign
from sqlalchemy import select
from test_engine import install, ledger, sent_keys, tick

from runner.app import App
from runner.importers.aggregates import refresh_customer_aggregates
from runner.models import Order, SegmentThreshold
from runner.segments import SegmentRules, buying_customers, percentile_floor
from runner.segments.thresholds import latest_vip_threshold


def milestones(campaigns_dir: Path, *, orders: str = "[]", spent: str = "[]", delay: str = "0s",
               segment: str = "null") -> None:
    write_campaign(campaigns_dir, f"""
        id: milestones
        name: Milestones
        trigger: {{type: milestone, orders: {orders}, spent: {spent}, segment: {segment}, delay: {delay}}}
        message:
          template: vip_milestone
          subject: "{{{{ occurrence.milestone.ordinal or occurrence.milestone.spent }}}}"
        expire_after: 3d
    """)


def ordered(shop: ShopBuilder, customer: int, first: dt.datetime, count: int, total_cents: int = 2500) -> None:
    for n in range(count):
        shop.order(customer, first + dt.timedelta(days=10 * n), total_cents=total_cents)


def subjects(app: App) -> list[str]:
    outbox = Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])
    return sorted(str(make_header(decode_header(message_from_bytes(path.read_bytes())["Subject"])))
                  for path in outbox.rglob("*.eml"))


def test_vip_due_a_day_after_the_fifth_order_and_only_once(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "vip-milestone")  # 5th order or 500 spent, a day later
    ada = shop.customer("ada@example.com")
    ordered(shop, ada, utc(2026, 8, 1, 12, 0), 4)
    fifth = shop.order(ada, utc(2026, 11, 20, 9, 30))
    assert tick(app, utc(2026, 11, 21, 9, 29))["vip-milestone"]["due"] == 0
    assert tick(app, utc(2026, 11, 21, 9, 30))["vip-milestone"]["sent"] == 1
    assert tick(app, utc(2026, 11, 21, 9, 45))["vip-milestone"]["due"] == 0  # the next tick
    shop.order(ada, utc(2026, 11, 22, 9, 30))  # the sixth
    assert tick(app, utc(2026, 11, 23, 9, 30))["vip-milestone"]["due"] == 0
    (sent,) = ledger(app)
    assert (sent.occurrence_key, sent.order_id) == (f"milestone:{ada}:orders:5", fifth)
    assert sent.reason == "order #1005 is the customer's 5th order, placed 24 hours ago"
    assert subjects(app) == ["Your 5th order: thank you, Ada"]


def test_cancelled_orders_do_not_count_nor_cross(app: App, shop: ShopBuilder, campaigns_dir):
    milestones(campaigns_dir, orders="[3]")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 1, 12, 0))
    shop.order(ada, utc(2026, 11, 5, 12, 0), cancelled=True)
    shop.order(ada, utc(2026, 11, 10, 12, 0))  # the second that counts
    shop.order(ada, utc(2026, 11, 12, 12, 0), cancelled=True)  # would be the third: cancelled
    third = shop.order(ada, utc(2026, 11, 14, 12, 0))
    assert tick(app, utc(2026, 11, 12, 12, 0))["milestones"]["due"] == 0
    assert tick(app, utc(2026, 11, 14, 12, 0))["milestones"]["sent"] == 1
    assert [s.order_id for s in ledger(app)] == [third]


def test_one_order_crossing_two_amounts_is_one_email_about_the_higher(app: App, shop: ShopBuilder,
                                                                      campaigns_dir):
    milestones(campaigns_dir, spent="[100, 250]")
    ada, bob = shop.customer("ada@example.com"), shop.customer("bob@example.com", first_name="Bob")
    shop.order(ada, utc(2026, 11, 1, 12, 0), total_cents=5000)
    shop.order(ada, utc(2026, 11, 20, 12, 0), total_cents=30000)  # 50 -> 350: past 100 and 250
    shop.order(bob, utc(2026, 11, 20, 12, 0), total_cents=10000)  # exactly 100: crossed
    assert tick(app, utc(2026, 11, 20, 12, 0))["milestones"]["sent"] == 2
    shop.order(ada, utc(2026, 11, 21, 12, 0), total_cents=5000)  # the passed-over 100 is not crossed again
    shop.order(bob, utc(2026, 11, 21, 12, 0), total_cents=14999)  # 249.99: not yet
    assert tick(app, utc(2026, 11, 21, 12, 0))["milestones"]["due"] == 0
    shop.order(bob, utc(2026, 11, 22, 12, 0), total_cents=1)  # 250.00
    assert tick(app, utc(2026, 11, 22, 12, 0))["milestones"]["sent"] == 1
    assert sorted(sent_keys(app)) == sorted([f"milestone:{ada}:spent:USD:25000", f"milestone:{bob}:spent:USD:10000",
                                             f"milestone:{bob}:spent:USD:25000"])
    assert subjects(app) == ["$100.00", "$250.00", "$250.00"]
    assert "order #1002 takes their spending to $250.00 or more, placed now" in {s.reason for s in ledger(app)}


def test_an_order_reaching_a_count_and_an_amount_is_one_email_about_the_count(app: App, shop: ShopBuilder,
                                                                              campaigns_dir):
    milestones(campaigns_dir, orders="[5]", spent="[500]", delay="1d")
    ada = shop.customer("ada@example.com")
    ordered(shop, ada, utc(2026, 8, 1, 12, 0), 4, total_cents=12000)  # 480.00 in four orders
    shop.order(ada, utc(2026, 11, 20, 12, 0), total_cents=3000)  # the fifth, and 510.00
    assert tick(app, utc(2026, 11, 21, 12, 0))["milestones"]["sent"] == 1
    shop.order(ada, utc(2026, 11, 22, 12, 0), total_cents=3000)
    assert tick(app, utc(2026, 11, 23, 12, 0))["milestones"]["due"] == 0
    assert sent_keys(app) == [f"milestone:{ada}:orders:5"]


def test_amounts_count_only_orders_in_the_shop_currency(app: App, shop: ShopBuilder, campaigns_dir):
    milestones(campaigns_dir, spent="[100]")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 1, 12, 0), total_cents=9000, currency="EUR")
    shop.order(ada, utc(2026, 11, 20, 12, 0), total_cents=5000)  # 50 USD: the euros are not added in
    assert tick(app, utc(2026, 11, 20, 12, 0))["milestones"]["due"] == 0
    shop.order(ada, utc(2026, 11, 21, 12, 0), total_cents=5000)
    assert tick(app, utc(2026, 11, 21, 12, 0))["milestones"]["sent"] == 1


def test_a_euro_shop_counts_euros(app: App, shop: ShopBuilder, campaigns_dir):
    app.settings = app.settings.with_values(SHOP_CURRENCY="EUR")
    milestones(campaigns_dir, spent="[100]")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 20, 12, 0), total_cents=12000, currency="EUR")
    assert tick(app, utc(2026, 11, 20, 12, 0))["milestones"]["sent"] == 1
    assert sent_keys(app) == [f"milestone:{ada}:spent:EUR:10000"]
    assert subjects(app) == ["€100.00"]


def test_a_threshold_once_even_when_the_order_that_crossed_it_is_cancelled(app: App, shop: ShopBuilder,
                                                                           campaigns_dir):
    milestones(campaigns_dir, orders="[2]")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 1, 12, 0))
    second = shop.order(ada, utc(2026, 11, 20, 12, 0))
    assert tick(app, utc(2026, 11, 20, 12, 0))["milestones"]["sent"] == 1
    with app.store.session() as session:  # the order is cancelled after the email went out
        order = session.get(Order, second)
        order.cancelled_at = dt.datetime(2026, 11, 20, 13, 0)
        refresh_customer_aggregates(session, [ada])
        session.commit()
    shop.order(ada, utc(2026, 11, 21, 12, 0))  # the second order again, by count
    assert tick(app, utc(2026, 11, 21, 12, 0))["milestones"]["due"] == 0
    assert sent_keys(app) == [f"milestone:{ada}:orders:2"]


def test_orders_of_the_same_instant_count_in_id_order(app: App, shop: ShopBuilder, campaigns_dir):
    milestones(campaigns_dir, orders="[1, 2]")
    ada = shop.customer("ada@example.com")
    first = shop.order(ada, utc(2026, 11, 20, 12, 0))
    second = shop.order(ada, utc(2026, 11, 20, 12, 0))
    assert tick(app, utc(2026, 11, 20, 12, 0))["milestones"]["sent"] == 2
    assert {s.occurrence_key: s.order_id for s in ledger(app)} == {f"milestone:{ada}:orders:1": first,
                                                                  f"milestone:{ada}:orders:2": second}


def test_a_campaign_needs_a_threshold(app: App, campaigns_dir):
    milestones(campaigns_dir)
    _, problems = app.problems(utc(2026, 11, 20, 12, 0))
    assert [p.message for p in problems] == ["trigger: give at least one threshold: orders (e.g. [5]), spent "
                                             "(e.g. [500]) or segment (vip)"]


def test_validation_refuses_milestone_wording_in_a_campaign_without_milestones(app: App, campaigns_dir):
    write_campaign(campaigns_dir, """
        id: thanks
        name: Thanks
        trigger: {type: order}
        message: {template: vip_milestone, subject: Thanks}
    """)
    _, problems = app.problems(utc(2026, 11, 20, 12, 0))
    assert {(Path(p.path).name, p.line) for p in problems} == {("vip_milestone.html", 10), ("vip_milestone.txt", 9)}
    assert {p.message for p in problems} == {"`occurrence.milestone` is not defined"}


# ---------------------------------------------------------------- entering the VIP segment

def vip_shop(shop: ShopBuilder) -> tuple[int, int]:
    """Ten buying customers: nine spent 100.00, Zoe 300.00, so the top tenth by spend is Zoe alone and
    the VIP threshold (90th percentile) is 300.00. Returns (Ada, one of the nine; Zoe)."""
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 8, 1, 12, 0), total_cents=10000)
    for n in range(8):
        shop.order(shop.customer(f"c{n}@example.com"), utc(2026, 8, 2, 12, 0), total_cents=10000)
    zoe = shop.customer("zoe@example.com", first_name="Zoe")
    shop.order(zoe, utc(2026, 8, 3, 12, 0), total_cents=30000)
    return ada, zoe


def test_the_refresh_records_the_threshold_the_vip_segment_uses(app: App, shop: ShopBuilder):
    vip_shop(shop)
    at = utc(2026, 11, 1, 3, 30)
    assert app.refresh_vip_threshold(at) is True
    with app.store.session() as session:
        population = buying_customers(at.replace(tzinfo=None))
        segment = session.execute(select(percentile_floor(population.c.revenue, population, 90.0))).scalar()
        assert latest_vip_threshold(session, SegmentRules()) == (at.replace(tzinfo=None), segment) == (
            at.replace(tzinfo=None), 30000)


def test_refreshed_when_a_day_old_or_the_percentile_changed(app: App, shop: ShopBuilder):
    vip_shop(shop)
    at = utc(2026, 11, 1, 3, 30)
    assert app.refresh_vip_threshold(at, only_if_stale=True) is True  # none yet
    assert app.refresh_vip_threshold(at + dt.timedelta(hours=23, minutes=59), only_if_stale=True) is False
    assert app.refresh_vip_threshold(at + dt.timedelta(hours=24), only_if_stale=True) is True
    halves = App(app.settings.with_values(SEGMENT_VIP_PERCENTILE="50"))  # the shop restarted with another
    try:
        assert halves.refresh_vip_threshold(at + dt.timedelta(hours=25), only_if_stale=True) is True
        with halves.store.session() as session:  # half of ten: the five highest spends, the least 100.00
            assert latest_vip_threshold(session, halves.segment_rules) == (dt.datetime(2026, 11, 2, 4, 30), 10000)
    finally:
        halves.store.close()


def test_no_threshold_recorded_for_a_shop_without_orders(app: App):
    assert app.refresh_vip_threshold(utc(2026, 11, 1, 3, 30)) is False
    with app.store.session() as session:
        assert latest_vip_threshold(session, SegmentRules()) is None


@pytest.mark.parametrize("later_order", [False, True], ids=["live", "as-of"])
def test_entering_vip_is_due_a_day_after_the_order_that_reaches_the_threshold(app: App, shop: ShopBuilder,
                                                                             campaigns_dir, later_order: bool):
    install(campaigns_dir, "vip-milestone")  # segment: vip or the 5th order, a day later
    ada, _ = vip_shop(shop)
    app.refresh_vip_threshold(utc(2026, 11, 1, 3, 30))  # 300.00
    shop.order(ada, utc(2026, 11, 10, 9, 30), total_cents=19999)  # 299.99: one cent short
    entering = shop.order(ada, utc(2026, 11, 20, 9, 30), total_cents=1)  # 300.00: at the threshold
    if later_order:  # the store holds what happened after each tick: evaluated as of the tick's instant
        shop.order(ada, utc(2026, 11, 25, 9, 30), total_cents=5000)
    assert tick(app, utc(2026, 11, 11, 9, 30))["vip-milestone"]["due"] == 0
    assert tick(app, utc(2026, 11, 21, 9, 29))["vip-milestone"]["due"] == 0
    assert tick(app, utc(2026, 11, 21, 9, 30))["vip-milestone"]["sent"] == 1
    assert tick(app, utc(2026, 11, 26, 9, 30))["vip-milestone"]["due"] == 0  # once: already a VIP
    (sent,) = ledger(app)
    assert (sent.occurrence_key, sent.order_id) == (f"milestone:{ada}:segment:vip", entering)
    assert sent.reason == "order #1012 takes their spending into the VIP segment, placed 24 hours ago"
    assert subjects(app) == ["Welcome to our VIPs: thank you, Ada"]
    eml = next(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]).rglob("*.eml")).read_bytes()
    assert b"you've joined the customers who shop with" in eml.replace(b"=\r\n", b"").replace(b"=\n", b"")


def test_an_order_is_compared_with_the_threshold_in_effect_when_it_was_placed(app: App, shop: ShopBuilder,
                                                                             campaigns_dir):
    milestones(campaigns_dir, segment="vip")
    ada, bob = shop.customer("ada@example.com"), shop.customer("bob@example.com")
    with app.store.session() as session:  # two nightly refreshes: 200.00, then 400.00
        session.add_all([SegmentThreshold(segment="vip", percentile=90.0, computed_at=dt.datetime(2026, 11, 1, 3, 30),
                                          value=20000),
                         SegmentThreshold(segment="vip", percentile=90.0, computed_at=dt.datetime(2026, 11, 2, 3, 30),
                                          value=40000),
                         SegmentThreshold(segment="vip", percentile=50.0, computed_at=dt.datetime(2026, 11, 2, 3, 30),
                                          value=100)])  # of another percentile: not read
        session.commit()
    shop.order(ada, utc(2026, 10, 1, 12, 0), total_cents=25000)  # before any refresh: the first one, 200.00
    shop.order(bob, utc(2026, 11, 2, 3, 29), total_cents=25000)  # the 1 November one: 200.00
    assert tick(app, utc(2026, 11, 2, 3, 29))["milestones"]["sent"] == 1
    late = shop.order(ada, utc(2026, 11, 2, 3, 30), total_cents=10000)  # 350.00 under 400.00: not yet
    assert tick(app, utc(2026, 11, 2, 3, 30))["milestones"]["due"] == 0
    carol = shop.customer("carol@example.com")
    shop.order(carol, utc(2026, 11, 3, 12, 0), total_cents=40000)  # exactly 400.00
    assert tick(app, utc(2026, 11, 3, 12, 0))["milestones"]["sent"] == 1
    assert sorted(sent_keys(app)) == sorted([f"milestone:{bob}:segment:vip", f"milestone:{carol}:segment:vip"])
    assert late not in {s.order_id for s in ledger(app)}


def test_without_a_recorded_threshold_nobody_enters_and_counts_still_send(app: App, shop: ShopBuilder,
                                                                         campaigns_dir):
    milestones(campaigns_dir, segment="vip", orders="[1]")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 20, 12, 0), total_cents=100000)
    assert tick(app, utc(2026, 11, 20, 12, 0))["milestones"]["sent"] == 1
    assert sent_keys(app) == [f"milestone:{ada}:orders:1"]


def test_an_order_entering_vip_and_reaching_a_count_is_one_email_about_vip(app: App, shop: ShopBuilder,
                                                                           campaigns_dir):
    milestones(campaigns_dir, segment="vip", orders="[2]", spent="[250]")
    ada, zoe = vip_shop(shop)
    app.refresh_vip_threshold(utc(2026, 11, 1, 3, 30))  # 300.00
    shop.order(ada, utc(2026, 11, 20, 12, 0), total_cents=20000)  # 2nd order, 300.00: VIP and past 250.00
    shop.order(zoe, utc(2026, 11, 20, 12, 0), total_cents=100)  # 2nd order; a VIP already
    assert tick(app, utc(2026, 11, 20, 12, 0))["milestones"]["sent"] == 2
    assert sorted(sent_keys(app)) == sorted([f"milestone:{ada}:segment:vip", f"milestone:{zoe}:orders:2"])


def test_only_vip_can_be_a_milestone_segment(app: App, campaigns_dir):
    milestones(campaigns_dir, segment="repeat")
    _, problems = app.problems(utc(2026, 11, 20, 12, 0))
    assert [p.message for p in problems] == [
        "trigger.segment: only vip can be entered as a milestone (spending at or above the VIP percentile), "
        "not 'repeat'; pick customers in the other segments with an audience `segment:`"]


def test_a_tick_leaves_the_threshold_to_the_daemons_nightly_job(app: App, shop: ShopBuilder, campaigns_dir):
    from runner.daemon import Daemon

    install(campaigns_dir, "vip-milestone")
    vip_shop(shop)
    at = utc(2026, 11, 20, 12, 0)
    tick(app, at)
    with app.store.session() as session:
        assert latest_vip_threshold(session, SegmentRules()) is None
    daemon = Daemon(app, clock=lambda: at)
    daemon.load()
    assert daemon.scheduler.get_job("refresh-affinity-if-stale").kwargs == {"only_if_stale": True}
    daemon.refresh_affinity(only_if_stale=True)  # the job at start: the affinity table, then the threshold
    with app.store.session() as session:
        assert latest_vip_threshold(session, SegmentRules()) == (at.replace(tzinfo=None), 30000)
