"""What each provider's events become: the normalized type, the ledger row they match, the suppression
they add (or not), a batch in one go, and a hard bounce that stops the next tick."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from conftest import NOW, add_send, snapshot
from shopkit import ROOT, ShopBuilder, utc
from signers import Case, Event, sendgrid_case
from sqlalchemy import select

from runner.app import App
from runner.models import Event as EventRow
from runner.models import Send, Suppression, SuppressionHistory
from runner.providers.file import FileProvider
from runner.settings import Settings
from runner.webhooks import receive

SUPPRESSING = {"bounced": "bounced", "complained": "complained", "unsubscribed": "unsubscribed"}
# Each provider's message id as the send recorded it (what its send API answered).
MESSAGE_IDS = {"sendgrid": "W86EgYT6SQKk0lRflfLRsA", "mailgun": "<20261124080000.1.A1B2C3@mg.shop.example.com>",
               "resend": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794", "postmark": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"}


def events(app: App) -> list[EventRow]:
    with app.store.session() as session:
        return list(session.execute(select(EventRow).order_by(EventRow.id)).scalars())


def suppressions(app: App) -> dict[str, Suppression]:
    with app.store.session() as session:
        return {s.email: s for s in session.execute(select(Suppression)).scalars()}


def test_each_kind_of_event(app: App, case: Case, hook_settings: Settings, ada: int):
    send_id = add_send(app.store, ada, provider=case.name)
    for number, kind in enumerate(sorted(case.kinds), start=1):
        already = bool(suppressions(app))
        receipt = receive(app.store, hook_settings, case.name,
                          *case.request([Event(kind, "ada@example.com", str(2000 + number), send_id=send_id)], NOW),
                          NOW)
        if kind == "other":
            assert receipt.recorded == {} and sum(receipt.ignored.values()) == 1, receipt
        else:
            assert receipt.recorded == {kind: 1}, (kind, receipt)
            assert receipt.suppressed == (kind in SUPPRESSING and not already)
    stored = {e.type: e for e in events(app)}
    assert set(stored) == case.kinds - {"other"}
    for row in stored.values():
        assert (row.send_id, row.customer_id, row.email, row.provider) == (send_id, ada, "ada@example.com", case.name)
        assert row.occurred_at == dt.datetime(2026, 11, 24, 9, 0)
        assert row.received_at == NOW.replace(tzinfo=None)
        assert json.loads(row.detail or "{}")["provider_type"]
    assert json.loads(stored["clicked"].detail or "{}")["url"] == "https://shop.example.com/p"
    # the first suppressing event added the address; later ones found it there
    (suppression,) = suppressions(app).values()
    first = min((k for k in case.kinds if k in SUPPRESSING), key=lambda k: sorted(case.kinds).index(k))
    assert suppression.reason == SUPPRESSING[first] and suppression.source == f"webhook:{case.name}"


@pytest.mark.parametrize("kind", ["bounced", "complained", "unsubscribed", "soft_bounced"])
def test_what_suppresses_and_what_does_not(app: App, case: Case, hook_settings: Settings, ada: int, kind: str):
    if kind not in case.kinds:
        pytest.skip(f"{case.name} reports no {kind} events")
    receipt = receive(app.store, hook_settings, case.name, *case.request([Event(kind, "ada@example.com", "3001")],
                                                                         NOW), NOW)
    assert receipt.recorded == {kind: 1}
    found = suppressions(app)
    if kind == "soft_bounced":
        assert found == {} and receipt.suppressed == 0
        assert snapshot(app.store)["consent"]["ada@example.com"] is True
        return
    assert found["ada@example.com"].reason == SUPPRESSING[kind]
    assert case.name in (found["ada@example.com"].detail or "")
    assert snapshot(app.store)["consent"]["ada@example.com"] is False
    with app.store.session() as session:
        (history,) = session.execute(select(SuppressionHistory)).scalars()
    assert (history.action, history.reason, history.source) == ("added", SUPPRESSING[kind], f"webhook:{case.name}")


def test_matched_by_the_provider_message_id_when_no_send_id_came_back(app: App, case: Case, hook_settings: Settings,
                                                                      ada: int, shop: ShopBuilder):
    bob = shop.customer("bob@example.com")
    add_send(app.store, bob, provider=case.name, message_id="another-message", key="lapse:2")
    send_id = add_send(app.store, ada, provider=case.name, message_id=MESSAGE_IDS[case.name])
    event = Event("delivered", "ada@example.com", "4001", message_id=MESSAGE_IDS[case.name])
    receipt = receive(app.store, hook_settings, case.name, *case.request([event], NOW), NOW)
    assert receipt.recorded == {"delivered": 1} and receipt.unmatched == 0
    assert [(e.send_id, e.customer_id) for e in events(app)] == [(send_id, ada)]


def test_a_message_id_of_another_provider_does_not_match(app: App, case: Case, hook_settings: Settings, ada: int):
    add_send(app.store, ada, provider="some-other-provider", message_id=MESSAGE_IDS[case.name])
    event = Event("delivered", "ada@example.com", "4002", message_id=MESSAGE_IDS[case.name])
    assert receive(app.store, hook_settings, case.name, *case.request([event], NOW), NOW).unmatched == 1


def test_an_unmatched_event_is_kept_with_the_customer_found_by_address(app: App, case: Case,
                                                                       hook_settings: Settings, ada: int):
    event = Event("bounced", "Ada@Example.com", "5001", send_id=999_999)  # a ledger id this store never had
    receipt = receive(app.store, hook_settings, case.name, *case.request([event], NOW), NOW)
    assert receipt.unmatched == 1 and receipt.suppressed == 1
    assert [(e.send_id, e.customer_id, e.email) for e in events(app)] == [(None, ada, "ada@example.com")]
    stranger = Event("bounced", "nobody@example.org", "5002")
    receive(app.store, hook_settings, case.name, *case.request([stranger], NOW), NOW)
    assert [(e.send_id, e.customer_id) for e in events(app)][1] == (None, None)
    assert "nobody@example.org" in suppressions(app)


def test_a_batch_is_recorded_in_one_go(app: App, shop: ShopBuilder, ada: int):
    case = sendgrid_case()
    settings = app.settings.with_values(**case.settings)
    bob, cy = shop.customer("bob@example.com"), shop.customer("cy@example.com")
    sends = {who: add_send(app.store, cid, provider="sendgrid", key=f"lapse:{cid}")
             for who, cid in (("ada", ada), ("bob", bob), ("cy", cy))}
    batch = [Event("delivered", "ada@example.com", "6001", send_id=sends["ada"]),
             Event("opened", "ada@example.com", "6002", send_id=sends["ada"]),
             Event("clicked", "ada@example.com", "6003", send_id=sends["ada"]),
             Event("bounced", "bob@example.com", "6004", send_id=sends["bob"]),
             Event("complained", "cy@example.com", "6005", send_id=sends["cy"]),
             Event("other", "cy@example.com", "6006", send_id=sends["cy"]),
             Event("delivered", "ada@example.com", "6001", send_id=sends["ada"])]  # the same event twice
    receipt = receive(app.store, settings, "sendgrid", *case.request(batch, NOW), NOW)
    assert receipt.recorded == {"delivered": 1, "opened": 1, "clicked": 1, "bounced": 1, "complained": 1}
    assert (receipt.duplicates, receipt.unmatched, receipt.suppressed) == (1, 0, 2)
    assert receipt.ignored == {"processed": 1}
    assert {e: s.reason for e, s in suppressions(app).items()} == {"bob@example.com": "bounced",
                                                                   "cy@example.com": "complained"}
    # the next batch repeats two of them and brings one new event
    more = [batch[3], batch[4], Event("unsubscribed", "ada@example.com", "6007", send_id=sends["ada"])]
    receipt = receive(app.store, settings, "sendgrid", *case.request(more, NOW), NOW)
    assert receipt.recorded == {"unsubscribed": 1} and receipt.duplicates == 2 and receipt.suppressed == 1
    assert len(events(app)) == 6


def test_sendgrid_apple_machine_opens_are_marked(app: App, ada: int):
    case = sendgrid_case()
    _, body = case.request([Event("opened", "ada@example.com", "7001")], NOW)
    item = json.loads(body)
    item[0]["sg_machine_open"] = True
    body = json.dumps(item).encode()
    receive(app.store, app.settings.with_values(**case.settings), "sendgrid", case.sign(body, NOW), body, NOW)
    assert json.loads(events(app)[0].detail or "{}")["machine_open"] is True


def test_a_hard_bounce_by_webhook_stops_the_next_tick(app: App, case: Case, hook_settings: Settings,
                                                      shop: ShopBuilder, campaigns_dir: Path):
    shutil.copy(ROOT / "campaigns" / "thank-you.yaml", campaigns_dir)
    provider = FileProvider(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]))
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 20, 10, 0))
    first = app.tick(utc(2026, 11, 20, 12, 0), app.campaigns(utc(2026, 11, 20, 12, 0)), provider)
    assert first.rows()[0]["sent"] == 1
    with app.store.session() as session:
        send_id = session.execute(select(Send.id)).scalar_one()
    at = utc(2026, 11, 20, 12, 5)
    receive(app.store, hook_settings, case.name, *case.request([Event("bounced", "ada@example.com", "8001",
                                                                       send_id=send_id, at=at)], at), at)
    shop.order(ada, utc(2026, 11, 21, 10, 0))
    second = app.tick(utc(2026, 11, 21, 12, 0), app.campaigns(utc(2026, 11, 21, 12, 0)), provider)
    assert second.rows()[0]["sent"] == 0 and second.rows()[0]["skipped"] == {"suppressed": 1}
    assert len(list(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]).rglob("*.eml"))) == 1


def test_a_store_upgraded_from_release_0_1_records_events_and_keeps_its_suppressions(database_url: str):
    from signers import postmark_case
    from test_migrations import release_0_1_store

    store = release_0_1_store(database_url)
    try:
        store.init()
        if store.engine.dialect.name == "postgresql":  # the fixture wrote explicit ids past the sequence
            with store.engine.begin() as connection:
                connection.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('suppression', 'id'), (SELECT max(id) FROM suppression))")
        case = postmark_case()
        settings = Settings({"LIFECYCLE_DATABASE_URL": database_url, **case.settings})
        event = Event("bounced", "ada@example.com", "9001", send_id=1)  # release 0.1's send 1 went to Ada
        receipt = receive(store, settings, "postmark", *case.request([event], NOW), NOW)
        assert receipt.recorded == {"bounced": 1} and receipt.unmatched == 0 and receipt.suppressed == 1
        with store.session() as session:
            found = {s.email: (s.reason, s.source) for s in session.execute(select(Suppression)).scalars()}
        assert found == {"bob@example.com": ("unsubscribed", None), "ada@example.com": ("bounced", "webhook:postmark")}
    finally:
        store.close()
