"""The abandoned-checkout reminder: due a delay after the checkout was left, never once the customer bought."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email import message_from_bytes
from pathlib import Path

import pytest
from shopkit import ShopBuilder, utc
from sqlmodel import select
from test_engine import install, ledger, tick

from runner.app import App
from runner.models import Checkout, CheckoutLine, Product
from runner.privacy import export_customer, forget_customer
from runner.providers.file import FileProvider
from runner.simulation.grid import TickGrid

LEFT = utc(2026, 11, 10, 9, 0)  # the checkout's last update
DUE = LEFT + dt.timedelta(hours=4)  # the shipped campaign's delay
CAMPAIGN = "abandoned-checkout"


def checkout(shop: ShopBuilder, customer_id: int, *, created: dt.datetime = LEFT - dt.timedelta(minutes=20),
             left: dt.datetime = LEFT, completed: dt.datetime | None = None,
             lines: Sequence[tuple[str, int, int]] = (("SOAP-LAV", 2, 1250),), name: str = "#C1") -> int:
    """A checkout as `lifecycle import checkouts` stores it; `lines` are (sku, quantity, unit price in cents)."""
    with shop.store.session() as session:
        row = Checkout(external_id=name.lstrip("#"), name=name, customer_id=customer_id,
                       created_at=created.replace(tzinfo=None), abandoned_at=left.replace(tzinfo=None),
                       completed_at=completed.replace(tzinfo=None) if completed else None,
                       recovery_url=f"https://shop.example.com/checkouts/{name.lstrip('#')}/recover?key=k",
                       total_cents=sum(q * p for _, q, p in lines), currency="EUR")
        session.add(row)
        session.flush()
        session.add_all(CheckoutLine(checkout_id=row.id, sku=sku, name=sku.title(), quantity=quantity,
                                     unit_price_cents=price) for sku, quantity, price in lines)
        session.commit()
        return row.id  # type: ignore[return-value]


def previewed(app: App, at: dt.datetime) -> list:
    return list(app.preview(at, app.campaigns(at)))


def sent(app: App) -> list[str]:
    return [s.occurrence_key for s in ledger(app, "sent")]


@pytest.fixture
def reminder(app: App, campaigns_dir: Path) -> App:
    install(campaigns_dir, CAMPAIGN)
    return app


def test_due_four_hours_after_the_checkout_was_left_and_sent_once(reminder: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    left = checkout(shop, ada)
    assert tick(reminder, DUE - dt.timedelta(minutes=1))[CAMPAIGN]["due"] == 0
    assert tick(reminder, DUE)[CAMPAIGN]["sent"] == 1
    assert tick(reminder, DUE + dt.timedelta(minutes=10))[CAMPAIGN]["due"] == 0
    (send,) = ledger(reminder)
    assert (send.occurrence_key, send.reason) == (f"checkout:{left}", "checkout #C1 abandoned 4 hours ago")


def test_an_order_one_minute_later_means_no_reminder_ever(reminder: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    checkout(shop, ada)
    shop.order(ada, LEFT + dt.timedelta(minutes=1))
    for at in (DUE, DUE + dt.timedelta(hours=1), DUE + dt.timedelta(days=2)):
        assert tick(reminder, at)[CAMPAIGN]["due"] == 0
    assert ledger(reminder) == []


def test_an_order_after_the_reminder_fell_due_but_before_a_tick_ran_cancels_it(reminder: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    checkout(shop, ada)
    shop.order(ada, DUE + dt.timedelta(minutes=5))
    assert tick(reminder, DUE + dt.timedelta(minutes=10))[CAMPAIGN]["due"] == 0
    assert ledger(reminder) == []


def test_a_completed_checkout_is_never_reminded(reminder: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    checkout(shop, ada, completed=LEFT + dt.timedelta(minutes=3))
    assert tick(reminder, DUE)[CAMPAIGN]["due"] == 0
    assert ledger(reminder) == []


def test_orders_before_the_checkout_or_by_someone_else_do_not_cancel_it(reminder: App, shop: ShopBuilder):
    ada, bob = shop.customer("ada@example.com"), shop.customer("bob@example.com")
    shop.order(ada, LEFT - dt.timedelta(hours=1))  # before the checkout began
    shop.order(bob, LEFT + dt.timedelta(minutes=1))
    left = checkout(shop, ada)
    assert tick(reminder, DUE)[CAMPAIGN]["sent"] == 1
    assert sent(reminder) == [f"checkout:{left}"]


def test_a_customer_without_consent_is_skipped(reminder: App, shop: ShopBuilder):
    checkout(shop, shop.customer("ada@example.com", consent=False))
    assert tick(reminder, DUE)[CAMPAIGN]["skipped"] == {"no_consent": 1}
    (send,) = ledger(reminder)
    assert send.skip_reason == "no_consent"


def test_at_a_past_instant_a_later_order_has_not_cancelled_it_yet(reminder: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    left = checkout(shop, ada)
    shop.order(ada, DUE + dt.timedelta(hours=2))
    then = DUE + dt.timedelta(minutes=30)
    (item,) = previewed(reminder, then)
    assert item.occurrence.occurrence_key == f"checkout:{left}"
    now = DUE + dt.timedelta(hours=3)
    assert previewed(reminder, now) == []


def test_at_a_past_instant_a_later_completion_has_not_happened_yet(reminder: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    checkout(shop, ada, completed=DUE + dt.timedelta(hours=2))
    shop.order(ada, DUE + dt.timedelta(days=1))  # the store holds later orders: evaluated as of the instant
    then = DUE + dt.timedelta(minutes=30)
    assert len(previewed(reminder, then)) == 1


def test_the_email_shows_the_cart_and_links_back_to_it(reminder: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    with shop.store.session() as session:
        session.add(Product(sku="SOAP-LAV", name="Lavender Soap", url="https://shop.example.com/soap",
                            image_url="https://cdn.example.com/soap.jpg", price_cents=1250))
        session.commit()
    checkout(shop, ada, lines=[("SOAP-LAV", 2, 1250), ("CANDLE", 1, 2000)])
    assert tick(reminder, DUE)[CAMPAIGN]["sent"] == 1
    (path,) = sorted(Path(reminder.settings.environ["LIFECYCLE_OUTBOX_DIR"]).rglob("*.eml"))
    parts = {part.get_content_type(): part.get_payload(decode=True).decode()
             for part in message_from_bytes(path.read_bytes()).walk() if not part.is_multipart()}
    text, html = parts["text/plain"], parts["text/html"]
    assert "- Soap-Lav x 2: €25.00" in text
    assert "- Candle: €20.00" in text
    assert "Total: €45.00" in text
    assert "Complete your order: https://shop.example.com/checkouts/C1/recover?key=k" in text
    assert 'href="https://shop.example.com/checkouts/C1/recover?key=k"' in html
    assert 'src="https://cdn.example.com/soap.jpg"' in html  # a known product shows its picture
    assert 'href="https://shop.example.com/soap"' in html


def test_simulating_a_period_sends_what_real_ticks_over_it_send(reminder: App, shop: ShopBuilder):
    """Checkouts left at various instants, some bought or completed before, at or after the reminder
    fell due: `lifecycle simulate` records what ticks every 80 minutes record."""
    grid = TickGrid(LEFT.replace(tzinfo=None), (LEFT + dt.timedelta(days=2)).replace(tzinfo=None),
                    dt.timedelta(minutes=80))
    for n, (bought, completed) in enumerate([(None, None), (1, None), (245, None), (300, None), (None, 3),
                                             (None, 250), (30 * 60, None)]):
        left = LEFT + dt.timedelta(minutes=37 * n)
        customer = shop.customer(f"c{n}@example.com")
        checkout(shop, customer, left=left, created=left, name=f"#C{n}",
                 completed=left + dt.timedelta(minutes=completed) if completed else None)
        if bought is not None:
            shop.order(customer, left + dt.timedelta(minutes=bought))
    simulated = {(o.occurrence_key, o.tick_at) for o in reminder.simulate(grid, reminder.campaigns(grid.start))}
    provider = FileProvider(Path(reminder.settings.environ["LIFECYCLE_OUTBOX_DIR"]))
    for at in grid.ticks():
        reminder.tick(at, reminder.campaigns(at), provider)
    assert simulated == {(send.occurrence_key, send.sent_at) for send in ledger(reminder, "sent")}
    # sent: the untouched one, and those bought 300 minutes or a day later (after the first tick past due)
    assert {key for key, _ in simulated} == {"checkout:1", "checkout:4", "checkout:7"}


def test_export_holds_the_customers_checkouts_and_forget_erases_them(app: App, shop: ShopBuilder):
    ada, grace = shop.customer("ada@example.com"), shop.customer("grace@example.com")
    checkout(shop, ada, lines=[("SOAP-LAV", 2, 1250), ("CANDLE", 1, 2000)])
    kept = checkout(shop, grace, name="#C2")
    with app.store.session() as session:
        (exported,) = export_customer(session, "ada@example.com", LEFT)["checkouts"]
    assert exported["recovery_url"] == "https://shop.example.com/checkouts/C1/recover?key=k"
    assert [(line["sku"], line["quantity"]) for line in exported["lines"]] == [("SOAP-LAV", 2), ("CANDLE", 1)]
    with app.store.session() as session:
        forget_customer(session, "ada@example.com", LEFT)
        session.commit()
    with app.store.session() as session:
        assert [c.id for c in session.exec(select(Checkout)).all()] == [kept]
        assert {line.checkout_id for line in session.exec(select(CheckoutLine)).all()} == {kept}
