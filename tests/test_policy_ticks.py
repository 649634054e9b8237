"""Policies applied by ticks and previews on a real store (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from freezegun import freeze_time
from shopkit import ShopBuilder, utc, write_campaign
from sqlalchemy import select
from test_dispatch import ScriptedProvider

from runner.app import App
from runner.gallery import write_gallery
from runner.models import Event, Send
from runner.providers.base import SendResult
from runner.providers.file import FileProvider


def policy_file(campaigns_dir: Path, text: str) -> None:
    campaigns_dir.mkdir(parents=True, exist_ok=True)
    (campaigns_dir / "_policy.yaml").write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")


def order_campaign(campaigns_dir: Path, campaign_id: str, *, kind: str = "marketing", delay: str = "0s",
                   expire_after: str = "2d", policy: str = "") -> None:
    write_campaign(campaigns_dir, textwrap.dedent(f"""
        id: {campaign_id}
        name: {campaign_id}
        kind: {kind}
        trigger: {{type: order, delay: {delay}}}
        message: {{template: thank_you, subject: "Order {{{{ order.number }}}}"}}
        expire_after: {expire_after}
    """) + (f"policy: {policy}\n" if policy else ""))


def tick(app: App, at: dt.datetime) -> dict[str, dict]:
    provider = FileProvider(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]))
    return {row["campaign"]: row for row in app.tick(at, app.campaigns(at), provider).rows()}


def ledger(app: App) -> dict[tuple[str, int], Send]:
    with app.store.session() as session:
        return {(s.campaign_id, s.customer_id): s for s in session.exec(select(Send)).scalars()}


def naive(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- priority

AT_TEN = utc(2026, 11, 2, 10, 0)


def rivals(campaigns_dir: Path, shop: ShopBuilder, low: str, high: str, low_policy: str = "{priority: 1}") -> int:
    """Two order campaigns due for one customer at AT_TEN, 16 hours of smart sending; the customer."""
    policy_file(campaigns_dir, "smart_sending: 16h")
    order_campaign(campaigns_dir, low, policy=low_policy)
    order_campaign(campaigns_dir, high, policy="{priority: 9}")
    ada = shop.customer("ada@example.com")
    shop.order(ada, AT_TEN)
    return ada


def test_two_campaigns_due_for_one_customer_in_one_tick(app: App, shop: ShopBuilder, campaigns_dir):
    # file order would put "a-cross-sell" first: priority, not the name, decides
    ada = rivals(campaigns_dir, shop, "a-cross-sell", "z-thanks")
    rows = tick(app, AT_TEN)
    assert rows["z-thanks"]["sent"] == 1
    assert rows["a-cross-sell"]["sent"] == 0 and rows["a-cross-sell"]["deferred"] == {"priority": 1}
    held = ledger(app)[("a-cross-sell", ada)]
    assert (held.status, held.skip_reason) == ("planned", "priority")
    assert held.next_attempt_at == naive(utc(2026, 11, 3, 2, 0))  # 16 hours after the winner
    assert tick(app, utc(2026, 11, 3, 1, 59))["a-cross-sell"]["sent"] == 0
    assert tick(app, utc(2026, 11, 3, 2, 0))["a-cross-sell"]["sent"] == 1


def test_the_lower_priority_campaign_may_declare_skip(app: App, shop: ShopBuilder, campaigns_dir):
    ada = rivals(campaigns_dir, shop, "cross-sell", "thanks", low_policy="{priority: 1, on_conflict: skip}")
    rows = tick(app, AT_TEN)
    assert rows["thanks"]["sent"] == 1 and rows["cross-sell"]["skipped"] == {"priority": 1}
    assert ledger(app)[("cross-sell", ada)].status == "skipped"


def test_preview_decides_as_the_tick_would_in_every_format(app: App, shop: ShopBuilder, campaigns_dir, tmp_path):
    ada = rivals(campaigns_dir, shop, "cross-sell", "thanks")
    entries = write_gallery(app.preview(AT_TEN, app.campaigns(AT_TEN)), tmp_path / "pv", naive(AT_TEN))
    by_campaign = {entry["campaign"]: entry for entry in entries}
    assert by_campaign["thanks"]["status"] == "send" and by_campaign["thanks"]["file"]
    held = by_campaign["cross-sell"]
    assert (held["status"], held["skip_reason"], held["deferred_until"]) == ("deferred:priority", "priority",
                                                                             "2026-11-03T02:00:00Z")
    assert held["file"]  # it will be sent, later: its email is rendered
    assert "held back (priority) until 2026-11-03 02:00 UTC" in (tmp_path / "pv" / "index.html").read_text()
    assert "until 2026-11-03 02:00 UTC (priority)" in (tmp_path / "pv" / held["file"]).read_text()
    assert ledger(app) == {}
    tick(app, AT_TEN)
    assert ledger(app)[("cross-sell", ada)].next_attempt_at == naive(utc(2026, 11, 3, 2, 0))


# ---------------------------------------------------------------- frequency cap

def test_cap_counts_the_ledger_and_frees_a_slot_at_the_window_edge(app: App, shop: ShopBuilder, campaigns_dir):
    policy_file(campaigns_dir, """
        frequency_cap: {max: 2, per: 7d}
    """)
    order_campaign(campaigns_dir, "thanks")
    ada = shop.customer("ada@example.com")
    for day in (2, 3):
        shop.order(ada, utc(2026, 11, day, 10, 0))
        assert tick(app, utc(2026, 11, day, 10, 0))["thanks"]["sent"] == 1
    third = shop.order(ada, utc(2026, 11, 8, 10, 0))
    assert tick(app, utc(2026, 11, 8, 10, 0))["thanks"]["deferred"] == {"capped": 1}
    with app.store.session() as session:
        held = session.exec(select(Send).where(Send.order_id == third)).scalar_one()
    assert held.next_attempt_at == naive(utc(2026, 11, 9, 10, 0))  # 7 days after the first, to the second
    assert tick(app, utc(2026, 11, 9, 9, 59, 59))["thanks"]["sent"] == 0
    assert tick(app, utc(2026, 11, 9, 10, 0))["thanks"]["sent"] == 1


def test_transactional_mail_ignores_caps_but_never_reaches_a_hard_bounce(app: App, shop: ShopBuilder,
                                                                           campaigns_dir):
    policy_file(campaigns_dir, """
        frequency_cap: {max: 1, per: 7d}
        send_window: {start: "08:00", end: "21:00"}
    """)
    order_campaign(campaigns_dir, "news", expire_after="8d")
    order_campaign(campaigns_dir, "receipt", kind="transactional")
    ada = shop.customer("ada@example.com")
    bounced = shop.customer("bounced@example.com")
    shop.suppress("bounced@example.com", reason="bounced")
    shop.order(ada, utc(2026, 11, 2, 10, 0))
    shop.order(bounced, utc(2026, 11, 2, 10, 0))
    rows = tick(app, utc(2026, 11, 2, 10, 0))
    assert rows["news"]["sent"] == 1 and rows["receipt"]["sent"] == 1  # the receipt is not capped by the news
    assert rows["receipt"]["skipped"] == {"suppressed": 1}
    # at night, and with the cap reached, the receipt still goes; the marketing email waits
    shop.order(ada, utc(2026, 11, 2, 23, 30))
    rows = tick(app, utc(2026, 11, 2, 23, 30))
    assert rows["receipt"]["sent"] == 1 and rows["news"]["deferred"] == {"capped": 1}


def test_transactional_mail_does_not_count_toward_the_cap(app: App, shop: ShopBuilder, campaigns_dir):
    policy_file(campaigns_dir, "frequency_cap: {max: 1, per: 7d}")
    order_campaign(campaigns_dir, "receipt", kind="transactional")
    order_campaign(campaigns_dir, "news", delay="1h")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 2, 10, 0))
    assert tick(app, utc(2026, 11, 2, 10, 0))["receipt"]["sent"] == 1
    assert tick(app, utc(2026, 11, 2, 11, 0))["news"]["sent"] == 1


# ---------------------------------------------------------------- send window

def test_send_window_in_auckland_and_los_angeles(app: App, shop: ShopBuilder, campaigns_dir):
    policy_file(campaigns_dir, 'send_window: {start: "08:00", end: "21:00"}')
    order_campaign(campaigns_dir, "thanks")
    kiwi = shop.customer("kiwi@example.com", time_zone="Pacific/Auckland")
    angeleno = shop.customer("la@example.com", time_zone="America/Los_Angeles")
    shop.order(kiwi, utc(2026, 11, 2, 9, 30))  # 22:30 NZDT
    shop.order(angeleno, utc(2026, 11, 2, 9, 30))  # 01:30 PST
    rows = tick(app, utc(2026, 11, 2, 9, 30))
    assert rows["thanks"]["deferred"] == {"quiet_hours": 2}
    held = ledger(app)
    assert held[("thanks", kiwi)].next_attempt_at == naive(utc(2026, 11, 2, 19, 0))  # 08:00 NZDT
    assert held[("thanks", angeleno)].next_attempt_at == naive(utc(2026, 11, 2, 16, 0))  # 08:00 PST
    assert tick(app, utc(2026, 11, 2, 15, 59))["thanks"]["sent"] == 0
    assert tick(app, utc(2026, 11, 2, 16, 0))["thanks"]["sent"] == 1
    assert tick(app, utc(2026, 11, 2, 19, 0))["thanks"]["sent"] == 1
    sent = ledger(app)[("thanks", kiwi)]
    assert (sent.status, sent.skip_reason) == ("sent", "quiet_hours")  # the ledger keeps why it waited


def test_an_occurrence_that_would_expire_before_the_window_opens_is_skipped(app: App, shop: ShopBuilder,
                                                                             campaigns_dir):
    policy_file(campaigns_dir, 'send_window: {start: "08:00", end: "21:00"}')
    order_campaign(campaigns_dir, "flash", expire_after="6h")
    ada = shop.customer("ada@example.com", time_zone="America/Los_Angeles")
    shop.order(ada, utc(2026, 11, 2, 7, 0))  # 23:00 PST: the window opens in 9 hours, after it expires
    assert tick(app, utc(2026, 11, 2, 7, 0))["flash"]["skipped"] == {"quiet_hours": 1}


def test_the_shop_time_zone_stands_in_for_an_unknown_one(settings, shop: ShopBuilder, campaigns_dir):
    app = App(settings.with_values(DEFAULT_TIMEZONE="Pacific/Auckland"))
    policy_file(campaigns_dir, 'send_window: {start: "08:00", end: "21:00"}')
    order_campaign(campaigns_dir, "thanks")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 2, 9, 30))
    assert tick(app, utc(2026, 11, 2, 9, 30))["thanks"]["deferred"] == {"quiet_hours": 1}
    assert ledger(app)[("thanks", ada)].next_attempt_at == naive(utc(2026, 11, 2, 19, 0))


@pytest.mark.parametrize("retry_after", [None, 3600])
def test_a_retry_that_would_land_in_quiet_hours_waits_for_the_window_to_open(
        app: App, shop: ShopBuilder, campaigns_dir, retry_after):
    policy_file(campaigns_dir, 'send_window: {start: "08:00", end: "21:00"}')
    order_campaign(campaigns_dir, "thanks")
    angeleno = shop.customer("la@example.com", time_zone="America/Los_Angeles")
    at = utc(2026, 11, 3, 4, 58)  # 20:58 PST: inside the window, two minutes before it closes
    shop.order(angeleno, at)
    outbox = Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])
    flaky = ScriptedProvider(outbox, [SendResult.retryable("HTTP 503", retry_after=retry_after)])
    # The wall clock is frozen elsewhere: the retry is placed from the tick's `now`, never from the clock.
    with freeze_time("2031-06-01 12:00:00"):
        assert app.tick(at, app.campaigns(at), flaky).rows()[0]["retrying"] == 1
    retry = ledger(app)[("thanks", angeleno)]
    assert (retry.status, retry.attempts) == ("planned", 1)
    assert retry.next_attempt_at == naive(utc(2026, 11, 3, 16, 0))  # 08:00 PST, not 21:03 or 21:58
    assert retry.skip_reason == "quiet_hours"
    assert tick(app, utc(2026, 11, 3, 6, 0))["thanks"]["sent"] == 0  # 22:00 PST
    assert tick(app, utc(2026, 11, 3, 16, 0))["thanks"]["sent"] == 1


def test_a_retry_inside_the_window_keeps_its_backoff(app: App, shop: ShopBuilder, campaigns_dir):
    policy_file(campaigns_dir, 'send_window: {start: "08:00", end: "21:00"}')
    order_campaign(campaigns_dir, "thanks")
    angeleno = shop.customer("la@example.com", time_zone="America/Los_Angeles")
    at = utc(2026, 11, 2, 20, 0)  # 12:00 PST
    shop.order(angeleno, at)
    outbox = Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"])
    flaky = ScriptedProvider(outbox, [SendResult.retryable("HTTP 503", retry_after=600)])
    app.tick(at, app.campaigns(at), flaky)
    retry = ledger(app)[("thanks", angeleno)]
    assert naive(at) + dt.timedelta(minutes=10) <= retry.next_attempt_at <= naive(at) + dt.timedelta(minutes=11)
    assert retry.skip_reason is None


# ---------------------------------------------------------------- sunset

def birthday_campaign(campaigns_dir: Path) -> None:
    write_campaign(campaigns_dir, """
        id: birthday
        name: Birthday
        trigger: {type: birthday, hour: 9}
        message: {template: birthday, subject: "Happy birthday", params: {discount_code: B, discount_percent: 10}}
    """)


def test_sunset_by_orders(app: App, shop: ShopBuilder, campaigns_dir):
    policy_file(campaigns_dir, "sunset: {after: 180d}")
    birthday_campaign(campaigns_dir)
    birthday = dt.date(1990, 11, 2)
    recent = shop.customer("recent@example.com", birthday=birthday, time_zone="UTC")
    lapsed = shop.customer("lapsed@example.com", birthday=birthday, time_zone="UTC")
    never = shop.customer("never@example.com", birthday=birthday, time_zone="UTC")  # joined 2020, no order
    shop.order(recent, utc(2026, 5, 7, 9, 0, 1))  # 179 days and a bit before
    shop.order(lapsed, utc(2026, 5, 6, 9, 0))  # 180 days before
    rows = tick(app, utc(2026, 11, 2, 9, 0))
    assert rows["birthday"]["sent"] == 1 and rows["birthday"]["skipped"] == {"sunset": 2}
    sends = ledger(app)
    assert sends[("birthday", recent)].status == "sent"
    assert sends[("birthday", lapsed)].skip_reason == sends[("birthday", never)].skip_reason == "sunset"


def event(app: App, customer_id: int, kind: str, at: dt.datetime) -> None:
    with app.store.session() as session:
        session.add(Event(provider="postmark", provider_event_id=f"{kind}-{customer_id}-{at:%Y%m%d%H%M%S}",
                          type=kind, customer_id=customer_id, email=f"{customer_id}@example.com",
                          occurred_at=naive(at), received_at=naive(at)))
        session.commit()


@pytest.mark.parametrize("opens", [False, True])
def test_sunset_by_clicks_and_by_opens_only_when_the_policy_counts_them(app: App, shop: ShopBuilder,
                                                                       campaigns_dir, opens: bool):
    policy_file(campaigns_dir, f"sunset: {{after: 180d, opens: {str(opens).lower()}}}")
    birthday_campaign(campaigns_dir)
    birthday = dt.date(1990, 11, 2)
    now = utc(2026, 11, 2, 9, 0)
    clicker, opener, stale = (shop.customer(f"{name}@example.com", birthday=birthday, time_zone="UTC")
                              for name in ("clicker", "opener", "stale"))
    for customer in (clicker, opener, stale):
        shop.order(customer, now - dt.timedelta(days=400))  # every order long ago
    event(app, clicker, "clicked", now - dt.timedelta(days=179))
    event(app, opener, "opened", now - dt.timedelta(days=10))  # may be Apple's proxy, not a reader
    event(app, stale, "clicked", now - dt.timedelta(days=180))
    event(app, stale, "delivered", now - dt.timedelta(days=1))  # delivered is no sign of a reader
    tick(app, now)
    sends = ledger(app)
    assert sends[("birthday", clicker)].status == "sent"
    assert sends[("birthday", stale)].skip_reason == "sunset"
    assert (sends[("birthday", opener)].status, sends[("birthday", opener)].skip_reason) == (
        ("sent", None) if opens else ("skipped", "sunset"))


# ---------------------------------------------------------------- validation

def test_policy_problems_are_reported_with_file_and_line(app: App, campaigns_dir):
    policy_file(campaigns_dir, """
        # shop policy
        frequency_cap:
          max: 2
          pre: 7d
        send_window: {start: "8am", end: "21:00"}
    """)
    order_campaign(campaigns_dir, "news", policy="{smart_sendng: 16h}")
    order_campaign(campaigns_dir, "receipt", kind="transactional", policy="{priority: 3}")
    (campaigns_dir / "_draft.yaml").write_text("not: [a campaign\n")  # `_` files are not campaigns
    _, problems = app.problems(utc(2026, 11, 2, 10, 0))
    lines = sorted(f"{Path(p.path).name}:{p.line}: {p.message} (hint: {p.hint})" for p in problems)
    assert len(lines) == 5, lines
    assert lines[0].startswith("_policy.yaml:2: frequency_cap.per is required")
    assert lines[1].startswith("_policy.yaml:4: unknown key 'pre'") and "did you mean 'per'?" in lines[1]
    assert lines[2].startswith("_policy.yaml:5: send_window.start: '8am' is not a time of day")
    assert lines[3].startswith("news.yaml:7: unknown key 'smart_sendng'") and "'smart_sending'" in lines[3]
    assert lines[4].startswith("receipt.yaml:7: policy: transactional campaigns ignore")
