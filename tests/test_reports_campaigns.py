"""`lifecycle report`: sends per campaign and orders attributed to them, last touch within the window."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from shopkit import utc, write_campaign
from sqlmodel import select

from runner.models import Customer, Order, Send, SendStatus
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
    assert lines[1].startswith("winback,,,1,0,0,,,,,,,1,1,40.0,1.0,")
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


def test_conversion_rate_counts_emails_followed_by_an_order(app, shop):
    ann = shop.customer("ann@example.com")
    sent(app, "winback", ann, dt.datetime(2026, 5, 2, 9))
    shop.order(ann, utc(2026, 5, 3), total_cents=4000)
    shop.order(ann, utc(2026, 5, 4), total_cents=1000)  # two orders, one email: a rate of 1, not 2
    (result,) = app.campaign_results(SINCE, UNTIL, WINDOW)
    assert (result.conversions, result.converted, result.revenue_cents, result.conversion_rate) == (2, 1, 5000, 1.0)


# ---------------------------------------------------------------- variants (A/B tests)

def ab_sends(app, campaign_id: str, groups: dict[str | None, tuple[int, int]]) -> None:
    """For each variant, (sent, converted): that many emails in May, the converted ones followed by an order."""
    at = dt.datetime(2026, 5, 10, 9)
    with app.store.session() as session:
        for variant, (count, converted) in groups.items():
            customers = [Customer(email=f"{campaign_id}-{variant}-{n}@example.com", created_at=at)
                         for n in range(count)]
            session.add_all(customers)
            session.flush()
            session.add_all(Send(campaign_id=campaign_id, occurrence_key=f"k:{c.id}", customer_id=c.id, due_at=at,
                                 status=SendStatus.SENT, variant=variant, created_at=at, updated_at=at, sent_at=at)
                            for c in customers)
            session.add_all(Order(external_id=f"o-{c.id}", customer_id=c.id, placed_at=at + dt.timedelta(days=2),
                                  total_cents=3000) for c in customers[:converted])
        session.commit()


@pytest.fixture
def ab_results(app, campaigns_dir):
    """winback: the file lists `plain` first (the control), then `emoji`, which converts far better;
    five sends from before the test have no variant. birthday: no file; two variants 20 vs 24 in 200."""
    write_campaign(campaigns_dir, """
        id: winback
        name: Win-back
        trigger: {type: lapsed, after: 90d}
        message: {template: winback, subject: "We miss you"}
        variants: [{name: plain}, {name: emoji, subject: "We miss you 👋"}]
    """)
    ab_sends(app, "winback", {None: (5, 0), "plain": (400, 20), "emoji": (400, 48)})
    ab_sends(app, "birthday", {"b": (200, 24), "a": (200, 20)})


def test_each_variant_against_the_control(app, ab_results):
    results = {r.campaign_id: r for r in app.campaign_results(SINCE, UNTIL, WINDOW)}
    winback = results["winback"]
    assert (winback.sent, winback.converted, winback.revenue_cents) == (805, 68, 68 * 3000)
    plain, emoji = winback.variants  # the file's order: the control first, though "emoji" sorts before it
    assert (plain.variant, plain.sent, plain.converted, plain.control, plain.versus_control) == (
        "plain", 400, 20, None, None)
    assert (emoji.variant, emoji.sent, emoji.converted, emoji.control) == ("emoji", 400, 48, "plain")
    assert emoji.conversion_rate == 0.12 and emoji.conversion_interval == pytest.approx(wilson_interval(48, 400))
    assert emoji.versus_control.difference == pytest.approx(0.07)
    assert emoji.versus_control.significant and emoji.versus_control.p_value < 0.001

    a, b = results["birthday"].variants  # no campaign file: by name
    assert (a.variant, b.variant, b.control) == ("a", "b", "a")
    assert b.versus_control.difference == pytest.approx(0.02)
    assert not b.versus_control.significant and b.versus_control.p_value == pytest.approx(0.5227, abs=1e-4)
    assert results["birthday"].sent == 400


def test_provider_events_per_variant(app, ab_results):
    from runner.models import Event

    with app.store.session() as session:
        opened = session.exec(select(Send.id, Send.customer_id).where(Send.variant == "emoji").limit(3)).all()
        session.add_all(Event(provider="postmark", provider_event_id=str(send_id), type="opened", send_id=send_id,
                              customer_id=customer_id, email="x@example.com", occurred_at=dt.datetime(2026, 5, 11),
                              received_at=dt.datetime(2026, 5, 11)) for send_id, customer_id in opened)
        session.commit()
    winback = next(r for r in app.campaign_results(SINCE, UNTIL, WINDOW) if r.campaign_id == "winback")
    plain, emoji = winback.variants
    assert (winback.events["opened"], emoji.events["opened"], emoji.events["clicked"]) == (3, 3, 0)
    assert plain.events["opened"] is None  # no event for this variant at all: unknown, as for a campaign


def test_the_report_command_per_variant(app, ab_results, settings, monkeypatch, capsys):
    from runner.cli import main

    monkeypatch.setattr("runner.settings.Settings.load", classmethod(lambda cls, *a, **k: settings))
    period = ["report", "--since", "2026-05-01", "--until", "2026-06-01"]
    main([*period, "--format", "json"])
    birthday, winback = json.loads(capsys.readouterr().out)
    assert [(v["variant"], v["control"], v["sent"], v["converted"], v["significant"]) for v in winback["variants"]] == [
        ("plain", True, 400, 20, None), ("emoji", False, 400, 48, True)]
    assert winback["variants"][1]["difference"] == pytest.approx(0.07)
    assert [v["significant"] for v in birthday["variants"]] == [None, False]

    main([*period, "--format", "csv"])
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("campaign,variant,step,sent,")
    assert rows[0].endswith(",difference_vs_control,p_value,significant")
    assert [row.split(",")[:4] for row in rows[1:]] == [
        ["birthday", "", "", "400"], ["birthday", "a", "", "200"], ["birthday", "b", "", "200"],
        ["winback", "", "", "805"], ["winback", "plain", "", "400"], ["winback", "emoji", "", "400"]]
    assert rows[-1].endswith(",True") and rows[3].endswith(",False") and rows[-2].endswith(",,,")

    main(period)
    table = capsys.readouterr().out
    assert max(len(line) for line in table.splitlines()) <= 80
    lines = [" ".join(line.split()) for line in table.splitlines()]
    assert "emoji 400 48 $1,440.00 12.0% 9.2% to 15.6%" in lines
    assert "winback emoji plain +7.0 pts <0.001 yes" in lines
    assert "birthday b a +2.0 pts 0.523 no" in lines
