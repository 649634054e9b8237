"""`lifecycle report`: sends per campaign and orders attributed to them, last touch within the window."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from shopkit import utc
from sqlmodel import select

from runner.models import Send, SendStatus
from runner.reports.stats import two_proportion_test, wilson_interval

WINDOW = dt.timedelta(days=5)
SINCE, UNTIL = dt.datetime(2026, 5, 1), dt.datetime(2026, 6, 1)


def sent(app, campaign_id: str, customer_id: int, at: dt.datetime, status: str = SendStatus.SENT) -> None:
    with app.store.session() as session:
        session.add(Send(campaign_id=campaign_id, occurrence_key=f"{customer_id}:{at:%Y%m%d%H%M}",
                         customer_id=customer_id, due_at=at, status=status, created_at=at, updated_at=at,
                         sent_at=at if status == SendStatus.SENT else None))
        session.commit()


def test_orders_go_to_the_last_email_within_the_window(app, shop):
    ann, bob, cat = (shop.customer(f"{n}@example.com") for n in ("ann", "bob", "cat"))
    sent(app, "winback", ann, dt.datetime(2026, 5, 2, 9))
    sent(app, "birthday", ann, dt.datetime(2026, 5, 4, 9))  # the last touch before ann's order
    shop.order(ann, utc(2026, 5, 5, 12), total_cents=4000)
    sent(app, "winback", bob, dt.datetime(2026, 5, 10, 9))
    shop.order(bob, utc(2026, 5, 15, 9), total_cents=9999)  # exactly 5 days: inside
    shop.order(bob, utc(2026, 5, 15, 9, 1), total_cents=7777, cancelled=True)  # cancelled: never counts
    sent(app, "winback", cat, dt.datetime(2026, 5, 10, 9))
    shop.order(cat, utc(2026, 5, 15, 9, 1), total_cents=5000)  # a minute past the window: not attributed
    sent(app, "winback", cat, dt.datetime(2026, 5, 20), status=SendStatus.FAILED)

    results = {r.campaign_id: r for r in app.campaign_results(SINCE, UNTIL, WINDOW)}
    birthday = results["birthday"]
    assert (birthday.sent, birthday.conversions, birthday.revenue_cents) == (1, 1, 4000)
    winback = results["winback"]
    assert (winback.sent, winback.failed, winback.conversions, winback.revenue_cents) == (3, 1, 1, 9999)
    assert winback.conversion_rate == pytest.approx(1 / 3)
    assert winback.events["opened"] is None  # no events recorded: unknown, not zero


def test_emails_before_the_period_do_not_claim_its_orders(app, shop):
    ann = shop.customer("ann@example.com")
    sent(app, "winback", ann, dt.datetime(2026, 4, 29))
    shop.order(ann, utc(2026, 5, 2), total_cents=4000)
    assert app.campaign_results(SINCE, UNTIL, WINDOW) == []
    sent(app, "birthday", ann, dt.datetime(2026, 5, 20))
    assert [(r.campaign_id, r.sent, r.conversions) for r in app.campaign_results(SINCE, UNTIL, WINDOW)] == [
        ("birthday", 1, 0)]


def test_wilson_interval_and_two_proportion_test():
    low, high = wilson_interval(10, 100)
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    assert wilson_interval(0, 0) is None
    assert wilson_interval(0, 20)[0] == 0.0
    comparison = two_proportion_test(100, 1000, 140, 1000)
    assert comparison.difference == pytest.approx(0.04)
    assert comparison.z == pytest.approx(2.7524, abs=1e-3)
    assert comparison.significant and comparison.p_value == pytest.approx(0.00592, abs=1e-4)
    assert not two_proportion_test(10, 100, 12, 100).significant
    assert two_proportion_test(0, 100, 0, 100) is None


def test_the_report_command(app, shop, settings, monkeypatch, capsys):
    from runner.cli import main

    ann = shop.customer("ann@example.com")
    sent(app, "winback", ann, dt.datetime(2026, 5, 2, 9))
    shop.order(ann, utc(2026, 5, 3), total_cents=4000)
    monkeypatch.setattr("runner.settings.Settings.load", classmethod(lambda cls, *a, **k: settings))
    main(["report", "--since", "2026-05-01", "--until", "2026-06-01", "--format", "json"])
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["campaign"], row["sent"], row["conversions"], row["revenue_cents"], row["opened"]) == (
        "winback", 1, 1, 4000, None)
    main(["report", "--since", "2026-05-01", "--until", "2026-06-01", "--format", "csv"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("winback,1,0,0,,,,,,,1,40.0,1.0,")
    main(["report", "--since", "2026-05-01", "--until", "2026-06-01"])
    table = capsys.readouterr().out
    assert "winback" in table and "$40.00" in table and "100.0%" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def test_event_counts_are_emails_with_each_event_and_unknown_without_any(app, shop):
    from runner.models import Event

    ann, bob = shop.customer("ann@example.com"), shop.customer("bob@example.com")
    sent(app, "winback", ann, dt.datetime(2026, 5, 2, 9))
    sent(app, "winback", bob, dt.datetime(2026, 5, 2, 9))
    sent(app, "birthday", ann, dt.datetime(2026, 5, 3, 9))
    with app.store.session() as session:
        ids = {s.customer_id: s.id for s in session.exec(select(Send).where(Send.campaign_id == "winback"))}
        for n, (customer, kind) in enumerate([(ann, "delivered"), (bob, "delivered"), (ann, "opened"),
                                              (ann, "opened"), (ann, "clicked"), (bob, "bounced")]):
            session.add(Event(provider="postmark", provider_event_id=str(n), type=kind, send_id=ids[customer],
                              customer_id=customer, email="x@example.com", occurred_at=dt.datetime(2026, 5, 2, 10),
                              received_at=dt.datetime(2026, 5, 2, 10)))
        session.commit()
    results = {r.campaign_id: r for r in app.campaign_results(SINCE, UNTIL, WINDOW)}
    assert results["winback"].events == {"delivered": 2, "opened": 1, "clicked": 1, "bounced": 1, "complained": 0,
                                         "unsubscribed": 0}
    assert set(results["birthday"].events.values()) == {None}
