"""Customers' data rights on a real store (SQLite and PostgreSQL): export everything held on one
customer, forget them, and never mail a forgotten address again, whatever brings it back."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
from shopkit import ShopBuilder, utc, write_campaign
from sqlalchemy import func, select

from runner.app import App
from runner.errors import LifecycleError
from runner.importers import import_customers, import_orders
from runner.links.unsubscribe import unsubscribe
from runner.models import (
    ConsentChange,
    Customer,
    CustomerTag,
    Event,
    EventType,
    Meta,
    Order,
    OrderLine,
    Send,
    Suppression,
)
from runner.privacy import export_customer, forget_customer
from runner.privacy.export import to_json
from runner.privacy.forgotten import HASH_KEY, HASHED_PREFIX
from runner.providers.file import FileProvider
from runner.settings import Settings
from runner.suppressions import suppress
from runner.webhooks.base import ProviderEvent
from runner.webhooks.receive import record_events

NOW = dt.datetime(2026, 11, 24, 9, 30)
CUSTOMERS_CSV = """\
Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Country Code,Tags,\
Birth date (customer.metafields.facts.birth_date)
'501,Ada,Lovelace,ada@example.com,yes,DE,"vip, newsletter",1990-12-10
'502,Grace,Hopper,grace@example.com,yes,,,1990-12-10
"""
ORDERS_CSV = """\
Name,Id,Email,Created at,Currency,Subtotal,Total,Accepts Marketing,\
Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku
#2001,'9001,ada@example.com,2026-12-10 08:00:00 +0000,EUR,24.00,29.00,yes,2,Mug,12.00,MUG
"""


def ledger_row(app: App, customer_id: int, email: str) -> int:
    with app.store.session() as session:
        row = Send(campaign_id="birthday", occurrence_key=f"birthday:{customer_id}:2025", customer_id=customer_id,
                   due_at=NOW, reason="birthday on 2025-12-10 at 09:00 local time", status="failed",
                   last_error=f"550 5.1.1 <{email}>: mailbox unavailable", created_at=NOW, updated_at=NOW,
                   provider="postmark", provider_message_id="pm-1")
        session.add(row)
        session.commit()
        return row.id  # type: ignore[return-value]


def a_customer_with_everything(app: App, shop: ShopBuilder) -> int:
    ada = shop.customer("ada@example.com", birthday=dt.date(1990, 12, 10), time_zone="Europe/Berlin",
                        locale="de_DE", external_id="501", consent_at=dt.datetime(2025, 1, 1))
    shop.order(ada, utc(2026, 11, 20, 9, 0), [("MUG", 2), ("TEA", 1)], total_cents=2900, discount_code="WELCOME")
    with app.store.session() as session:
        session.add_all([CustomerTag(customer_id=ada, tag="vip"), CustomerTag(customer_id=ada, tag="newsletter")])
        session.commit()
        suppress(session, "ada@example.com", "bounced", NOW, detail="550 5.1.1 <ada@example.com>: mailbox unavailable",
                 source="provider-rejection:postmark")
    ledger_row(app, ada, "ada@example.com")
    return ada


def all_stored_text(app: App) -> str:
    """Every value of every row of every table, as one text to search for personal data."""
    with app.store.engine.connect() as conn:
        return "\n".join(" | ".join(map(str, row)) for table in Customer.metadata.sorted_tables
                         for row in conn.execute(select(table)))


# ---------------------------------------------------------------- export

def test_export_holds_profile_tags_consent_orders_sends_and_suppressions(app: App, shop: ShopBuilder):
    ada = a_customer_with_everything(app, shop)
    shop.customer("grace@example.com")  # someone else's data stays out
    with app.store.session() as session:
        record_events(session, "postmark", [
            ProviderEvent("e1", EventType.OPENED, "Open", "ada@example.com", NOW),
            ProviderEvent("e2", EventType.OPENED, "Open", "grace@example.com", NOW)], NOW)
        session.commit()

    with app.store.session() as session:
        document = json.loads(to_json(export_customer(session, "  Ada@Example.com ", NOW)))

    assert document["email"] == "ada@example.com" and document["exported_at"] == "2026-11-24T09:30:00Z"
    assert document["forgotten"] is False
    profile = document["customer"]
    assert (profile["id"], profile["first_name"], profile["birthday"], profile["time_zone"]) == (
        ada, "Ada", "1990-12-10", "Europe/Berlin")
    assert profile["accepts_marketing"] is False and profile["consent_at"] == "2025-01-01T00:00:00Z"
    assert document["tags"] == ["newsletter", "vip"]
    assert [(c["accepted_before"], c["accepted_after"], c["source"]) for c in document["consent_history"]] == [
        (True, False, "provider-rejection:postmark")]
    (order,) = document["orders"]
    assert (order["total_cents"], order["discount_code"]) == (2900, "WELCOME")
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [("MUG", 2), ("TEA", 1)]
    (send,) = document["sends"]
    assert (send["campaign_id"], send["status"], send["provider_message_id"]) == ("birthday", "failed", "pm-1")
    (event,) = document["events"]
    assert (event["provider_event_id"], event["type"], event["customer_id"]) == ("e1", "opened", ada)
    (suppression,) = document["suppressions"]
    assert (suppression["email"], suppression["reason"]) == ("ada@example.com", "bounced")
    (history,) = document["suppression_history"]
    assert (history["action"], history["source"]) == ("added", "provider-rejection:postmark")


def test_export_of_an_address_the_store_does_not_know_is_empty(app: App, shop: ShopBuilder):
    shop.customer("grace@example.com")
    with app.store.session() as session:
        document = export_customer(session, "nobody@example.com", NOW)
    assert document["customer"] is None and document["forgotten"] is False
    assert all(document[name] == [] for name in ("tags", "consent_history", "orders", "sends", "events",
                                                 "suppressions", "suppression_history"))


@pytest.mark.parametrize("text", ["", "ada", "ada@example", "ada @example.com", "a@b@c.com"])
def test_export_and_forget_refuse_what_is_not_an_address(app: App, shop: ShopBuilder, text: str):
    shop.customer("ada@example.com")
    for request in (export_customer, forget_customer):
        with app.store.session() as session, pytest.raises(LifecycleError) as refused:
            request(session, text, NOW)
        assert "is not an email address" in str(refused.value) and "\n" not in str(refused.value)
        assert refused.value.hint
    with app.store.session() as session:
        assert session.execute(select(Customer.email)).scalars().all() == ["ada@example.com"]


# ---------------------------------------------------------------- forget

def test_forget_erases_personal_data_and_keeps_amounts_statuses_and_a_hash(app: App, shop: ShopBuilder):
    ada = a_customer_with_everything(app, shop)
    grace = shop.customer("grace@example.com", birthday=dt.date(1985, 3, 1), time_zone="Europe/Paris")
    grace_send = ledger_row(app, grace, "grace@example.com")

    with app.store.session() as session:
        erasure = forget_customer(session, "ADA@example.com", NOW)

    assert (erasure.customer_id, erasure.already_forgotten) == (ada, False)
    with app.store.session() as session:
        row = session.get(Customer, ada)
        assert row is not None
        assert (row.email, row.external_id, row.first_name, row.last_name) == (f"forgotten-{ada}", None, "", "")
        assert (row.birthday, row.birthday_md, row.time_zone, row.locale, row.consent_at) == (None,) * 5
        assert (row.accepts_marketing, row.order_count, row.total_spent_cents) == (False, 1, 2900)
        assert session.execute(select(CustomerTag).where(CustomerTag.customer_id == ada)).all() == []
        order = session.execute(select(Order).where(Order.customer_id == ada)).scalar_one()
        assert (order.total_cents, order.placed_at) == (2900, dt.datetime(2026, 11, 20, 9, 0))
        assert session.execute(select(func.count()).select_from(OrderLine).where(OrderLine.customer_id == ada)
                               ).scalar() == 2
        sends = {s.customer_id: s for s in session.execute(select(Send)).scalars()}
        assert (sends[ada].status, sends[ada].reason, sends[ada].last_error) == ("failed", "", None)
        assert sends[grace].id == grace_send and sends[grace].last_error and sends[grace].reason  # untouched
        suppressed = dict(session.execute(select(Suppression.email, Suppression.reason)).all())
        key = session.get(Meta, HASH_KEY)
    hashed = [email for email in suppressed if email.startswith(HASHED_PREFIX)]
    assert len(hashed) == 1 and suppressed[hashed[0]] == "bounced"  # the suppression keeps its reason
    assert suppressed[f"forgotten-{ada}"] == "forgotten"  # the erased row is never planned again
    assert key is not None and len(bytes.fromhex(key.value)) == 32
    # the hash and the store's hash key are random hex, which can hold "501" by chance: blanked first
    stored = all_stored_text(app).replace(hashed[0], HASHED_PREFIX).replace(key.value, "<hash key>")
    for personal in ("ada@example.com", "Lovelace", "1990-12-10", "Europe/Berlin", "de_DE", "vip", "501"):
        assert personal not in stored, personal
    assert "grace@example.com" in stored and "1985-03-01" in stored


def test_forgetting_twice_changes_nothing_and_export_says_it_was_forgotten(app: App, shop: ShopBuilder):
    ada = a_customer_with_everything(app, shop)
    with app.store.session() as session:
        forget_customer(session, "ada@example.com", NOW)
    before = all_stored_text(app)

    with app.store.session() as session:
        again = forget_customer(session, "ada@example.com", NOW + dt.timedelta(days=1))
        document = export_customer(session, "ada@example.com", NOW)

    assert (again.customer_id, again.already_forgotten) == (None, True)
    assert "already forgotten" in again.summary()
    assert all_stored_text(app) == before
    assert document["forgotten"] is True and document["customer"] is None and document["orders"] == []
    (hashed,) = document["suppressions"]
    assert hashed["email"].startswith(HASHED_PREFIX) and "ada" not in json.dumps(hashed)
    assert ada not in [row["customer_id"] for row in document["consent_history"]]


def test_forgetting_an_unknown_address_keeps_its_hash_so_no_import_brings_it_back(app: App, tmp_path: Path):
    with app.store.session() as session:
        erasure = forget_customer(session, "ada@example.com", NOW)
    assert (erasure.customer_id, erasure.already_forgotten) == (None, False)
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS_CSV)
    import_customers(app.store, path, now=NOW)
    with app.store.session() as session:
        assert session.execute(select(Suppression.reason).where(Suppression.email == "ada@example.com")
                               ).scalar() == "forgotten"


def test_an_old_unsubscribe_link_clicked_after_forget_does_not_bring_the_address_back(app: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    with app.store.session() as session:
        forget_customer(session, "ada@example.com", NOW)

    assert unsubscribe(app.store, ada, "ada@example.com", (NOW + dt.timedelta(days=3)).replace(tzinfo=dt.UTC)) is False

    assert "ada@example.com" not in all_stored_text(app)
    with app.store.session() as session:
        assert session.execute(select(func.count()).select_from(Suppression)).scalar() == 2  # hash, placeholder


def test_provider_events_about_a_forgotten_address_stay_for_counts_but_never_name_it(app: App, shop: ShopBuilder):
    ada = shop.customer("ada@example.com")
    send_id = ledger_row(app, ada, "ada@example.com")
    with app.store.session() as session:
        record_events(session, "postmark", [
            ProviderEvent("e1", EventType.OPENED, "Open", "ada@example.com", NOW, send_id=send_id,
                          detail={"user_agent": "Mail"}),
            ProviderEvent("e2", EventType.SOFT_BOUNCED, "SoftBounce", "ada@example.com", NOW,
                          detail={"reason": "<ada@example.com> mailbox full"}),  # no send: matched by address
            ProviderEvent("e0", EventType.BOUNCED, "HardBounce", "zoe@example.com", NOW),  # nobody's
        ], NOW)
        session.commit()
        forget_customer(session, "ada@example.com", NOW)
        forget_customer(session, "zoe@example.com", NOW)
    late = [ProviderEvent("e3", EventType.CLICKED, "Click", "Ada@example.com", NOW, send_id=send_id,
                          detail={"url": "https://shop.example.com/?who=ada@example.com"}),
            ProviderEvent("e4", EventType.BOUNCED, "HardBounce", "ada@example.com", NOW)]

    with app.store.session() as session:
        receipt = record_events(session, "postmark", late, NOW + dt.timedelta(days=1))
        session.commit()
        stored = session.execute(select(Event.provider_event_id, Event.customer_id, Event.email, Event.detail)
                                 .order_by(Event.id)).all()

    assert [tuple(row) for row in stored] == [("e1", ada, f"forgotten-{ada}", None),
                                              ("e2", ada, f"forgotten-{ada}", None),
                                              ("e3", ada, f"forgotten-{ada}", None)]
    assert receipt.recorded == {"clicked": 1} and receipt.suppressed == 0
    stored_text = all_stored_text(app)
    assert "ada@example.com" not in stored_text and "zoe@example.com" not in stored_text


def test_forget_logs_one_line_without_the_address(app: App, shop: ShopBuilder, caplog: pytest.LogCaptureFixture):
    ada = a_customer_with_everything(app, shop)
    with caplog.at_level(logging.INFO, logger="runner.privacy"), app.store.session() as session:
        forget_customer(session, "ada@example.com", NOW)
    (record,) = [r for r in caplog.records if r.name.startswith("runner.privacy")]
    assert f"customer {ada} forgotten" in record.getMessage()
    assert "ada@example.com" not in caplog.text and "\n" not in record.getMessage()


# ---------------------------------------------------------------- never mailed again

def test_a_forgotten_address_reimported_from_a_customers_csv_is_suppressed_and_not_mailed(
        app: App, campaigns_dir: Path, tmp_path: Path):
    write_campaign(campaigns_dir, """
        id: birthday
        name: Birthday
        trigger: {type: birthday, hour: 9}
        message: {template: birthday, subject: "Happy birthday {{ customer.first_name }}"}
    """)
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS_CSV)
    import_customers(app.store, path, now=NOW)
    with app.store.session() as session:
        forget_customer(session, "ada@example.com", NOW)
    # A new secret key must not make the runner forget whom it forgot: the hash key is the store's.
    app = App(Settings({**app.settings.environ, "LIFECYCLE_SECRET_KEY": "another-key"}))

    report = import_customers(app.store, path, now=NOW + dt.timedelta(days=1))
    outbox = Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])
    at = utc(2026, 12, 10, 9, 0)
    rows = {row["campaign"]: row for row in app.tick(at, app.campaigns(at), FileProvider(outbox)).rows()}

    assert report.customers_created == 1  # a new row: nothing links it to the erased one
    with app.store.session() as session:
        again = session.execute(select(Customer).where(Customer.email == "ada@example.com")).scalar_one()
        suppression = session.execute(select(Suppression).where(Suppression.email == "ada@example.com")).scalar_one()
        skipped = session.execute(select(Send.skip_reason).where(Send.customer_id == again.id)).scalar_one()
    assert suppression.reason == "forgotten" and again.accepts_marketing is False  # the file said yes
    assert skipped == "suppressed"
    assert rows["birthday"]["sent"] == 1 and rows["birthday"]["skipped"] == {"suppressed": 1}
    mailed = "".join(p.read_text() for p in outbox.rglob("*.eml"))
    assert "grace@example.com" in mailed and "ada@example.com" not in mailed


def test_a_forgotten_address_brought_back_by_an_orders_import_gets_no_transactional_mail(
        app: App, shop: ShopBuilder, campaigns_dir: Path, tmp_path: Path):
    write_campaign(campaigns_dir, """
        id: receipt
        name: Receipt
        kind: transactional
        trigger: {type: order, delay: 1h}
        message: {template: thank_you, subject: "Your order {{ order.number }}"}
    """)
    shop.customer("ada@example.com")
    with app.store.session() as session:
        forget_customer(session, "ada@example.com", NOW)
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV)
    import_orders(app.store, path, default_zone=dt.UTC, now=NOW)
    outbox = Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])
    at = utc(2026, 12, 10, 9, 30)

    rows = {row["campaign"]: row for row in app.tick(at, app.campaigns(at), FileProvider(outbox)).rows()}

    assert rows["receipt"]["sent"] == 0 and rows["receipt"]["skipped"] == {"suppressed": 1}
    with app.store.session() as session:
        again = session.execute(select(Customer).where(Customer.email == "ada@example.com")).scalar_one()
        history = session.execute(select(ConsentChange).where(ConsentChange.customer_id == again.id)).all()
    assert again.accepts_marketing is False and history == []  # the order said yes; never again after forget
    assert not list(outbox.rglob("*.eml"))
