"""A/B variants: one stable variant per (campaign, customer), recorded in the ledger, sent, previewed and validated."""

from __future__ import annotations

import datetime as dt
import email
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from browserkit import chromium, console_errors, needs_chromium
from shopkit import ROOT, ShopBuilder, utc, write_campaign
from sqlalchemy import select

from runner.app import App
from runner.campaigns import parse_campaign
from runner.engine import plan, store_time_zones, window_for
from runner.gallery import write_gallery
from runner.models import Send
from runner.providers.file import FileProvider
from runner.variants import choose

AB_CAMPAIGN = """
    id: thanks-ab
    name: Thank-you A/B
    trigger: {type: order, delay: 1h}
    message:
      template: winback
      subject: "Thanks, {{ customer.first_name }}"
      params: {discount_code: BASE10, discount_percent: 10}
    variants:
      - name: plain
        weight: 1
      - name: offer
        weight: 1
        subject: "Still thinking of you, {{ customer.first_name }}"
        params: {discount_code: OFFER20}
"""
PLACED, DUE = utc(2026, 11, 20, 9, 0), utc(2026, 11, 20, 10, 0)
SUBJECTS = {"plain": "Thanks, Ada", "offer": "Still thinking of you, Ada"}


def outbox(app: App) -> Path:
    return Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])


def tick(app: App, at: dt.datetime) -> dict[str, dict]:
    report = app.tick(at, app.campaigns(at), FileProvider(outbox(app)))
    return {row["campaign"]: row for row in report.rows()}


def ledger(app: App) -> list[Send]:
    with app.store.reading() as session:
        return list(session.exec(select(Send).order_by(Send.id)).scalars())


def sent_emails(app: App) -> dict[int, email.message.Message]:
    """Every .eml the file provider wrote, by the send id in its X-Send-ID header."""
    messages = [email.message_from_bytes(path.read_bytes()) for path in outbox(app).rglob("*.eml")]
    return {int(m["X-Send-ID"]): m for m in messages}


def customers_with_orders(shop: ShopBuilder, count: int) -> list[int]:
    ids = [shop.customer(f"c{n}@example.com") for n in range(count)]
    for customer_id in ids:
        shop.order(customer_id, PLACED)
    return ids


# ---------------------------------------------------------------- assignment

def test_assignment_follows_the_weights_over_ten_thousand_customers():
    shares = Counter(choose([("a", 1), ("b", 3)], "winback", customer_id) for customer_id in range(10_000))
    assert shares["b"] / 10_000 == pytest.approx(0.75, abs=0.015)  # 3.5 standard deviations
    three = Counter(choose([("x", 2), ("y", 1), ("z", 1)], "birthday", n) for n in range(10_000))
    assert [three[name] / 10_000 for name in "xyz"] == pytest.approx([0.5, 0.25, 0.25], abs=0.015)


def test_assignment_is_the_same_on_every_call_and_in_other_processes():
    weights = [("a", 1.0), ("b", 1.0), ("c", 0.5)]
    here = [choose(weights, "winback", n) for n in range(300)]
    assert here == [choose(weights, "winback", n) for n in range(300)]
    assert here != [choose(weights, "birthday", n) for n in range(300)]  # each campaign splits anew
    script = ("import json, sys; from runner.variants import choose; "
              f"print(json.dumps([choose({weights!r}, 'winback', n) for n in range(300)]))")
    for seed in ("1", "2"):  # str hashes differ between these processes; the assignment must not
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, cwd=ROOT).stdout
        assert json.loads(out) == here


# ---------------------------------------------------------------- ledger and dispatch

def test_the_ledger_records_each_customers_variant_and_the_email_renders_it(
        app: App, shop: ShopBuilder, campaigns_dir):
    write_campaign(campaigns_dir, AB_CAMPAIGN)
    customers = customers_with_orders(shop, 30)
    assert tick(app, DUE)["thanks-ab"]["sent"] == 30
    campaign = app.campaigns(DUE)[0]
    rows = ledger(app)
    assert {s.customer_id: s.variant for s in rows} == {c: campaign.variant_for(c) for c in customers}
    assert set(Counter(s.variant for s in rows)) == {"plain", "offer"}
    emails = sent_emails(app)
    for send in rows:
        message = emails[send.id]
        assert message["Subject"] == SUBJECTS[send.variant]
        body = message.get_payload()[0].get_payload(decode=True).decode()  # the text part
        assert ("OFFER20" in body) == (send.variant == "offer") and ("BASE10" in body) == (send.variant == "plain")

    # A later occurrence of the same customers, on a later tick, gets the same variant.
    for customer_id in customers:
        shop.order(customer_id, utc(2026, 11, 21, 9, 0))
    tick(app, utc(2026, 11, 21, 10, 0))
    later = [s for s in ledger(app) if s.due_at.day == 21]
    assert len(later) == 30 and all(s.variant == campaign.variant_for(s.customer_id) for s in later)


def plan_without_sending(app: App, shop: ShopBuilder, campaigns_dir: Path) -> dict[int, str | None]:
    """Twenty orders of the A/B campaign planned (not yet sent): the variant of each send, by send id."""
    write_campaign(campaigns_dir, AB_CAMPAIGN)
    customers_with_orders(shop, 20)
    campaign = app.campaigns(DUE)[0]
    with app.store.reading() as session:
        window = window_for(campaign, DUE.replace(tzinfo=None), None, app.shop().default_zone,
                            store_time_zones(session))
    plan(app.store, campaign, window)
    planned = {s.id: s.variant for s in ledger(app)}
    assert set(planned.values()) == {"plain", "offer"}
    return planned


def test_a_planned_send_keeps_its_variant_when_the_weights_change(app: App, shop: ShopBuilder, campaigns_dir):
    planned = plan_without_sending(app, shop, campaigns_dir)
    write_campaign(campaigns_dir, AB_CAMPAIGN.replace("weight: 1\n      - name: offer",
                                                      "weight: 1000\n      - name: offer"))
    assert all(app.campaigns(DUE)[0].variant_for(s.customer_id) == "plain" for s in ledger(app))  # new weights

    tick(app, DUE)
    assert {s.id: s.variant for s in ledger(app)} == planned
    assert {send_id: m["Subject"] for send_id, m in sent_emails(app).items()} == {
        send_id: SUBJECTS[variant] for send_id, variant in planned.items()}


def test_a_send_whose_variant_was_removed_is_sent_and_recorded_as_the_customers_variant_now(
        app: App, shop: ShopBuilder, campaigns_dir):
    planned = plan_without_sending(app, shop, campaigns_dir)
    write_campaign(campaigns_dir, AB_CAMPAIGN.replace("- name: plain", "- name: short").replace(
        'weight: 1\n      - name: offer', 'weight: 1\n        subject: "Hi"\n      - name: offer'))
    tick(app, DUE)
    rows, emails = ledger(app), sent_emails(app)
    assert {s.status for s in rows} == {"sent"}
    assert {s.id: s.variant for s in rows} == {send_id: "short" if variant == "plain" else variant
                                              for send_id, variant in planned.items()}
    assert all(emails[s.id]["Subject"] == ("Hi" if s.variant == "short" else SUBJECTS["offer"]) for s in rows)


# ---------------------------------------------------------------- preview

def test_preview_shows_each_emails_variant(app: App, shop: ShopBuilder, campaigns_dir, tmp_path, capsys):
    from runner.cli.output import print_preview_summary

    write_campaign(campaigns_dir, AB_CAMPAIGN)
    customers_with_orders(shop, 12)
    items = list(app.preview(DUE, app.campaigns(DUE)))
    assert {item.occurrence.variant for item in items} == {"plain", "offer"}
    assert all(item.email.subject == SUBJECTS[item.occurrence.variant] for item in items)

    entries = write_gallery(items, tmp_path / "pv", DUE)
    assert [e["variant"] for e in entries] == [item.occurrence.variant for item in items]
    index = (tmp_path / "pv" / "index.html").read_text()
    assert 'data-variant="offer"' in index and '<span class="badge variant" title="variant">offer</span>' in index
    assert '<select id="variant">' in index
    page = (tmp_path / "pv" / next(e["file"] for e in entries if e["variant"] == "offer")).read_text()
    assert "<dt>Variant</dt><dd>offer</dd>" in page and SUBJECTS["offer"] in page

    print_preview_summary(entries)
    table = capsys.readouterr().out
    counts = Counter(e["variant"] for e in entries)
    rows = {" ".join(line.split()[:-1]): line.split()[-1] for line in table.splitlines() if "variant" in line}
    assert rows == {"variant offer": str(counts["offer"]), "variant plain": str(counts["plain"])}
    assert "  variant offer" in table  # indented under its campaign


@needs_chromium
def test_the_gallerys_variant_filter_in_chromium(app: App, shop: ShopBuilder, campaigns_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    write_campaign(campaigns_dir, AB_CAMPAIGN)
    customers_with_orders(shop, 8)
    entries = write_gallery(app.preview(DUE, app.campaigns(DUE)), tmp_path / "pv", DUE)
    with chromium(tmp_path / "profile", width=390, height=900) as browser:
        browser.get((tmp_path / "pv" / "index.html").as_uri())
        Select(browser.find_element(By.ID, "variant")).select_by_visible_text("offer")
        visible = [row for row in browser.find_elements(By.CSS_SELECTOR, "#occurrences tbody tr") if row.is_displayed()]
        assert [row.get_attribute("data-variant") for row in visible] == [
            e["variant"] for e in entries if e["variant"] == "offer"]
        assert visible and console_errors(browser) == []


def test_send_test_sends_the_variant_asked_for(app: App, shop: ShopBuilder, campaigns_dir):
    from runner.errors import LifecycleError

    write_campaign(campaigns_dir, AB_CAMPAIGN)
    campaign = app.campaigns(DUE)[0]
    provider = FileProvider(outbox(app))
    assert app.send_test(DUE, campaign, "me@example.com", provider, variant="offer")[1] == (
        "[TEST] Still thinking of you, Sam")
    assert app.send_test(DUE, campaign, "me@example.com", provider)[1] == "[TEST] Thanks, Sam"  # the control
    with pytest.raises(LifecycleError, match="has no variant 'bold'") as refused:
        app.send_test(DUE, campaign, "me@example.com", provider, variant="bold")
    assert refused.value.hint == "its variants: plain, offer"


# ---------------------------------------------------------------- validation

BROKEN_AB = 'id: broken-ab\nname: Broken A/B\ntrigger: {type: order}\nmessage: {template: winback, subject: "Hi"}\n'


@pytest.mark.parametrize(("variants", "expected"), [
    ("variants:\n  - name: a\n    weight: 0\n  - name: b\n    subjet: Hello\n",
     [(7, "variants.0.weight must be more than 0, got 0", None),
      (9, "unknown key 'subjet'", "did you mean 'subject'?")]),
    ("variants:\n  - name: a\n  - name: b\n  - name: a\n",
     [(8, "variants.2.name: 'a' names another variant too", "give every variant its own name")]),
    ("variants:\n  - {name: Variant B}\n",
     [(6, "variants.0.name: 'Variant B' may contain only lowercase letters, digits, '-' and '_', starting with a "
          "letter or digit", None)]),
], ids=["weight-and-key", "repeated-name", "name-not-a-slug"])
def test_variant_problems_are_reported_at_their_lines(tmp_path, variants, expected):
    path = tmp_path / "broken-ab.yaml"
    path.write_text(BROKEN_AB + variants)
    campaign, problems = parse_campaign(path)
    assert campaign is None
    assert [(p.line, p.message) for p in problems] == [(line, message) for line, message, _ in expected]
    for problem, (_, _, hint) in zip(problems, expected, strict=True):
        assert hint is None or problem.hint.startswith(hint)


def test_each_variants_message_is_checked_against_the_triggers_context(app: App, campaigns_dir):
    write_campaign(campaigns_dir, """
        id: lapsed-ab
        name: Win-back A/B
        trigger: {type: lapsed, after: 90d}
        message:
          template: winback
          subject: "Hello {{ customer.frist_name }}"
        variants:
          - name: a
          - name: b
            subject: "Your order {{ order.number }}"
          - name: c
            template: winbak
          - name: d
            preheader: "{{ params.code }}"
            params: {discount_code: X}
    """)
    _, problems = app.problems(DUE)
    found = [(p.line, p.message.split(":")[0]) for p in problems]
    # The shared subject's mistake once, though three variants use it; each variant's own at its line.
    assert found == [(6, "message.subject"), (10, "variants.1.subject"), (12, "template 'winbak' not found"),
                     (14, "variants.3.preheader")]
    assert "did you mean `customer.first_name`?" in problems[0].message
    assert "did you mean 'winback'?" in problems[2].hint


def test_a_variant_can_supply_params_the_message_lacks(app: App, campaigns_dir):
    path = write_campaign(campaigns_dir, """
        id: params-ab
        name: Params A/B
        trigger: {type: order}
        message: {template: winback, subject: "{{ params.discount_percent }}% off"}
        variants:
          - {name: ten, params: {discount_percent: 10}}
          - {name: twenty, params: {discount_percent: 20}}
    """)
    assert app.problems(DUE)[1] == []
    campaign, _ = parse_campaign(path)
    assert [campaign.message_for(name).params for name in campaign.variant_names] == [
        {"discount_percent": 10}, {"discount_percent": 20}]
    assert campaign.message_for(None).params == {}
