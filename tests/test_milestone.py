"""The `milestone` trigger and the shipped VIP campaign: due at the order that crosses a threshold, once per
threshold per customer, cancelled orders not counting, one email for an order that crosses several."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

from shopkit import ShopBuilder, utc, write_campaign
from test_engine import install, ledger, sent_keys, tick

from runner.app import App
from runner.importers.aggregates import refresh_customer_aggregates
from runner.models import Order


def milestones(campaigns_dir: Path, *, orders: str = "[]", spent: str = "[]", delay: str = "0s") -> None:
    write_campaign(campaigns_dir, f"""
        id: milestones
        name: Milestones
        trigger: {{type: milestone, orders: {orders}, spent: {spent}, delay: {delay}}}
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
    install(campaigns_dir, "vip-milestone")
    ada = shop.customer("ada@example.com")
    ordered(shop, ada, utc(2026, 8, 1, 12, 0), 4, total_cents=12000)  # 480.00 in four orders
    shop.order(ada, utc(2026, 11, 20, 12, 0), total_cents=3000)  # the fifth, and 510.00
    assert tick(app, utc(2026, 11, 21, 12, 0))["vip-milestone"]["sent"] == 1
    shop.order(ada, utc(2026, 11, 22, 12, 0), total_cents=3000)
    assert tick(app, utc(2026, 11, 23, 12, 0))["vip-milestone"]["due"] == 0
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
    assert [p.message for p in problems] == ["trigger: give at least one threshold: orders (e.g. [5]) or spent "
                                             "(e.g. [500])"]


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
