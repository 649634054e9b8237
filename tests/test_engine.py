"""The four shipped campaigns against a real SQLite store, at explicit instants."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from shopkit import ROOT, ShopBuilder, utc, write_campaign
from sqlalchemy import DateTime, select
from sqlalchemy.dialects import sqlite

from runner.app import App
from runner.engine import Occurrence, record
from runner.models import Send, SkipReason
from runner.providers.file import FileProvider
from runner.sql import sqlite_stamp
from runner.triggers.base import Window


def install(campaigns_dir: Path, *ids: str) -> None:
    for campaign_id in ids:
        shutil.copy(ROOT / "campaigns" / f"{campaign_id}.yaml", campaigns_dir)


def tick(app: App, at: dt.datetime) -> dict[str, dict]:
    provider = FileProvider(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]))
    report = app.tick(at, app.campaigns(at), provider)
    return {row["campaign"]: row for row in report.rows()}


def ledger(app: App, status: str | None = None) -> list[Send]:
    with app.store.session() as session:
        query = select(Send).order_by(Send.id)
        if status:
            query = query.where(Send.status == status)
        return list(session.exec(query).scalars())


def sent_keys(app: App) -> list[str]:
    return [s.occurrence_key for s in ledger(app, "sent")]


# ---------------------------------------------------------------- thank-you

def test_thank_you_fires_two_hours_after_the_order_and_not_before(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "thank-you")
    ada = shop.customer("ada@example.com")
    order = shop.order(ada, utc(2026, 11, 20, 10, 0))
    assert tick(app, utc(2026, 11, 20, 11, 59))["thank-you"]["due"] == 0
    assert tick(app, utc(2026, 11, 20, 12, 0))["thank-you"]["sent"] == 1
    assert sent_keys(app) == [f"order:{order}"]
    eml = list(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]).rglob("*.eml"))
    assert len(eml) == 1
    assert "X-Campaign-ID: thank-you" in eml[0].read_text()


def test_thank_you_once_per_order_with_two_orders_a_day(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "thank-you")
    ada = shop.customer("ada@example.com")
    first = shop.order(ada, utc(2026, 11, 20, 9, 0))
    second = shop.order(ada, utc(2026, 11, 20, 9, 30))
    tick(app, utc(2026, 11, 20, 12, 0))
    tick(app, utc(2026, 11, 20, 12, 10))
    assert sorted(sent_keys(app)) == sorted([f"order:{first}", f"order:{second}"])


def test_cancelled_orders_get_no_thank_you(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "thank-you")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 20, 9, 0), cancelled=True)
    assert tick(app, utc(2026, 11, 20, 12, 0))["thank-you"]["due"] == 0


# ---------------------------------------------------------------- replenishment

def test_replenishment_due_after_cycle_times_quantity_minus_lead(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "replenishment")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 10, 1, 10, 0), [("COFFEE-ETHIOPIA-250G", 2), ("MUG-STONEWARE", 1)])
    # COFFEE-*: 21d x 2 bags - 3d lead = 39 days -> due 2026-11-09 10:00
    assert tick(app, utc(2026, 11, 9, 9, 59))["replenishment"]["due"] == 0
    assert tick(app, utc(2026, 11, 9, 10, 0))["replenishment"]["sent"] == 1
    (sent,) = ledger(app, "sent")
    assert sent.order_line_id is not None and "COFFEE-ETHIOPIA-250G" in sent.reason


def test_specific_cycle_pattern_wins_over_general_one(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "replenishment")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 9, 1, 10, 0), [("COFFEE-HOUSE-1KG", 1)])
    # COFFEE-*-1KG: 60d - 3d = 57 days -> 2026-10-28 10:00, not the 21-day COFFEE-* cycle
    assert tick(app, utc(2026, 9, 20, 10, 0))["replenishment"]["due"] == 0
    assert tick(app, utc(2026, 10, 28, 10, 0))["replenishment"]["sent"] == 1


def test_replenishment_quantities_are_capped_and_each_line_found_once_over_a_long_window(
        app: App, shop: ShopBuilder, campaigns_dir):
    """Quantities above max_quantity count as max_quantity, below 1 as 1; a window long enough for the
    slices of several cycles and quantities to overlap still finds each line once, when it is due."""
    install(campaigns_dir, "replenishment")
    ada, bob = shop.customer("ada@example.com"), shop.customer("bob@example.com")
    shop.order(ada, utc(2025, 12, 1, 10, 0), [("COFFEE-HOUSE-1KG", 9)])  # 60d x 6 - 3d = 357 days: 2026-11-23
    shop.order(bob, utc(2026, 9, 1, 10, 0), [("TEA-SENCHA", 0), ("FILTER-PAPER", 2)])  # 27 days, 97 days
    assert tick(app, utc(2026, 9, 28, 9, 59))["replenishment"]["due"] == 0
    assert tick(app, utc(2026, 9, 28, 10, 0))["replenishment"]["sent"] == 1  # the tea
    # A daemon down for 56 days: the window reaches back to the last evaluation.
    assert tick(app, utc(2026, 11, 23, 10, 0))["replenishment"]["sent"] == 1  # the coffee, capped at 6
    assert tick(app, utc(2026, 12, 7, 9, 59))["replenishment"]["due"] == 0
    assert tick(app, utc(2026, 12, 7, 10, 0))["replenishment"]["sent"] == 1  # the filters
    assert tick(app, utc(2027, 12, 7, 10, 0))["replenishment"]["due"] == 0  # a year's window: nothing twice
    assert [s.reason.split()[0] for s in ledger(app, "sent")] == ["TEA-SENCHA", "COFFEE-HOUSE-1KG", "FILTER-PAPER"]


def test_replenishment_with_nothing_new_since_the_last_evaluation_runs_no_query(app: App, campaigns_dir):
    install(campaigns_dir, "replenishment")
    at = dt.datetime(2026, 11, 23, 10)
    (campaign,) = app.campaigns(at)
    nothing_new = Window(start=at, now=at, default_zone=ZoneInfo("UTC"))
    assert campaign.trigger.occurrences(nothing_new) == []
    assert campaign.trigger.candidates(nothing_new) == []
    assert len(campaign.trigger.occurrences(Window(start=at - dt.timedelta(hours=1), now=at,
                                                   default_zone=ZoneInfo("UTC")))) == 1


def test_replenishment_suppressed_by_a_reorder_of_the_same_sku(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "replenishment")
    ada = shop.customer("ada@example.com")
    bob = shop.customer("bob@example.com")
    shop.order(ada, utc(2026, 10, 1, 10, 0), [("TEA-SENCHA-100G", 1)])
    shop.order(ada, utc(2026, 10, 20, 10, 0), [("TEA-SENCHA-100G", 1)])  # reorder before the first runs out
    shop.order(bob, utc(2026, 10, 1, 10, 0), [("TEA-SENCHA-100G", 1)])
    shop.order(bob, utc(2026, 10, 20, 10, 0), [("TEA-EARLGREY-100G", 1)])  # another tea: no reorder
    # TEA-*: 30d - 3d -> first orders due 2026-10-28 10:00
    row = tick(app, utc(2026, 10, 28, 10, 0))["replenishment"]
    assert row["sent"] == 1
    (sent,) = ledger(app, "sent")
    assert sent.customer_id == bob


# ---------------------------------------------------------------- win-back

def test_winback_cancelled_by_a_new_order_and_a_second_lapse_gets_a_second_email(
        app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "winback")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 1, 1, 12, 0))
    # she orders again on day 80, before the 90-day email went out
    shop.order(ada, utc(2026, 3, 22, 12, 0))
    assert tick(app, utc(2026, 4, 1, 12, 0))["winback"]["due"] == 0
    # 90 days after the second order she lapses: one email
    assert tick(app, utc(2026, 6, 20, 12, 0))["winback"]["sent"] == 1
    assert tick(app, utc(2026, 6, 21, 12, 0))["winback"]["due"] == 0
    # she comes back, then lapses again: a second email
    shop.order(ada, utc(2026, 7, 1, 12, 0))
    assert tick(app, utc(2026, 9, 29, 12, 0))["winback"]["sent"] == 1
    keys = sent_keys(app)
    assert len(keys) == 2 and len(set(keys)) == 2


# ---------------------------------------------------------------- birthday

@pytest.mark.parametrize(("year", "expected_day"), [(2027, 28), (2028, 29)])
def test_birthday_on_29_february(app: App, shop: ShopBuilder, campaigns_dir, year: int, expected_day: int):
    install(campaigns_dir, "birthday")
    shop.customer("leap@example.com", birthday=dt.date(2000, 2, 29), time_zone="UTC")
    # the day before the celebration, nothing
    day_before = utc(year, 2, expected_day, 9, 0) - dt.timedelta(days=1)
    assert tick(app, day_before)["birthday"]["due"] == 0
    assert tick(app, utc(year, 2, expected_day, 8, 59))["birthday"]["due"] == 0
    assert tick(app, utc(year, 2, expected_day, 9, 0))["birthday"]["sent"] == 1
    assert tick(app, utc(year, 3, 1, 9, 0))["birthday"]["due"] == 0  # once per year
    assert sent_keys(app)[0].endswith(f":{year}")


def test_birthday_at_each_customers_own_local_hour(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "birthday")
    kiwi = shop.customer("kiwi@example.com", birthday=dt.date(1990, 6, 15), time_zone="Pacific/Auckland")
    angeleno = shop.customer("la@example.com", birthday=dt.date(1985, 6, 15), time_zone="America/Los_Angeles")
    # 09:00 in Auckland (NZST, UTC+12) on 15 June is 21:00 UTC on 14 June
    assert tick(app, utc(2026, 6, 14, 20, 59))["birthday"]["due"] == 0
    assert tick(app, utc(2026, 6, 14, 21, 0))["birthday"]["sent"] == 1
    assert ledger(app, "sent")[0].customer_id == kiwi
    # 09:00 in Los Angeles (PDT, UTC-7) on 15 June is 16:00 UTC
    assert tick(app, utc(2026, 6, 15, 15, 59))["birthday"]["due"] == 0
    assert tick(app, utc(2026, 6, 15, 16, 0))["birthday"]["sent"] == 1
    assert [s.customer_id for s in ledger(app, "sent")] == [kiwi, angeleno]


def test_birthday_without_time_zone_uses_the_shop_default(app: App, shop: ShopBuilder, campaigns_dir):
    app.settings = app.settings.with_values(DEFAULT_TIMEZONE="Europe/Berlin")
    install(campaigns_dir, "birthday")
    shop.customer("plain@example.com", birthday=dt.date(1980, 1, 10))
    assert tick(app, utc(2027, 1, 10, 7, 59))["birthday"]["due"] == 0  # 08:59 in Berlin
    assert tick(app, utc(2027, 1, 10, 8, 0))["birthday"]["sent"] == 1


# ---------------------------------------------------------------- consent and suppression

def test_no_consent_or_suppressed_never_emailed(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "thank-you", "winback", "birthday")
    silent = shop.customer("silent@example.com", consent=False, birthday=dt.date(1990, 11, 21), time_zone="UTC")
    gone = shop.customer("gone@example.com", birthday=dt.date(1990, 11, 21), time_zone="UTC")
    shop.suppress("gone@example.com", "bounced")
    for customer in (silent, gone):
        shop.order(customer, utc(2026, 8, 23, 8, 0))
        shop.order(customer, utc(2026, 11, 21, 8, 0))
    for hours in range(0, 24 * 3, 6):
        tick(app, utc(2026, 11, 21, 0, 0) + dt.timedelta(hours=hours))
    assert ledger(app, "sent") == []
    reasons = {(s.customer_id, s.skip_reason) for s in ledger(app, "skipped")}
    assert (silent, "no_consent") in reasons and (gone, "suppressed") in reasons
    assert not list(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]).rglob("*.eml"))


def test_unsubscribe_between_planning_and_retry_is_honoured(app: App, shop: ShopBuilder, campaigns_dir):
    from runner.suppressions import suppress

    install(campaigns_dir, "thank-you")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 20, 9, 0))
    from runner.engine import plan, store_time_zones, window_for

    campaign = app.campaigns(utc(2026, 11, 20, 12))[0]
    now = dt.datetime(2026, 11, 20, 12, 0)
    with app.store.reading() as session:
        zones = store_time_zones(session)
    plan(app.store, campaign, window_for(campaign, now, None, dt.UTC, zones))
    with app.store.session() as session:
        suppress(session, "ada@example.com", "unsubscribed", now, source="manual")
    row = tick(app, utc(2026, 11, 20, 12, 5))["thank-you"]
    assert row["sent"] == 0 and row["skipped"] == {"suppressed": 1}


# ---------------------------------------------------------------- idempotency and downtime

def test_tick_twice_at_the_same_instant_sends_nothing_new(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "thank-you", "winback")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2026, 11, 20, 9, 0))
    at = utc(2026, 11, 20, 12, 0)
    assert tick(app, at)["thank-you"]["sent"] == 1
    second = tick(app, at)
    assert all(row["due"] == 0 and row["sent"] == 0 for row in second.values())
    assert len(ledger(app)) == 1


def test_daemon_down_three_days_sends_each_due_once_and_skips_expired(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "thank-you")  # expire_after: 2d
    ada = shop.customer("ada@example.com")
    tick(app, utc(2026, 11, 10, 0, 0))  # the last tick before going down
    stale = shop.order(ada, utc(2026, 11, 10, 6, 0))  # due 11-10 08:00: more than 2 days before coming back
    fresh = shop.order(ada, utc(2026, 11, 12, 6, 0))  # due 11-12 08:00: within 2 days
    back = utc(2026, 11, 13, 0, 0)
    row = tick(app, back)["thank-you"]
    assert row["sent"] == 1 and row["skipped"] == {"expired": 1}
    assert sent_keys(app) == [f"order:{fresh}"]
    assert [s.occurrence_key for s in ledger(app, "skipped")] == [f"order:{stale}"]
    again = tick(app, back + dt.timedelta(minutes=10))["thank-you"]
    assert again["due"] == 0 and again["sent"] == 0 and again["skipped"] == {}


def test_reasons_say_what_is_true_when_the_occurrence_is_found(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "thank-you", "winback", "replenishment")
    ada = shop.customer("ada@example.com")
    tick(app, utc(2026, 11, 10, 0, 0))  # the last tick before going down
    shop.order(ada, utc(2026, 11, 10, 6, 0))  # due 11-10 08:00, found three days late: expired
    shop.order(ada, utc(2026, 11, 12, 22, 0))  # due 11-13 00:00, found on time
    shop.order(shop.customer("bob@example.com"), utc(2026, 8, 12, 6, 0))  # lapsed 11-10 06:00
    shop.order(shop.customer("cleo@example.com"), utc(2026, 10, 24, 12, 0), [("COFFEE-HOUSE", 1)])  # 11-14 12:00
    tick(app, utc(2026, 11, 13, 0, 0))
    assert sorted(s.reason for s in ledger(app)) == [
        "COFFEE-HOUSE should run out in 36 hours",
        "no order since 2026-08-12, 92 days ago (lapses after 90d)",
        "order #1001 placed 2 days ago",
        "order #1002 placed 2 hours ago",
    ]


def test_first_run_does_not_dig_up_history(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "thank-you")
    ada = shop.customer("ada@example.com")
    shop.order(ada, utc(2025, 1, 1, 9, 0))
    row = tick(app, utc(2026, 11, 20, 12, 0))["thank-you"]
    assert row["due"] == 0 and row["skipped"] == {}


def test_audience_filters_limit_who_gets_a_campaign(app: App, shop: ShopBuilder, campaigns_dir):
    write_campaign(campaigns_dir, """
        id: vip-thanks
        name: VIP thanks
        trigger: {type: order, delay: 1h}
        audience:
          - {field: order_count, gte: 2}
          - {field: email, not_in: [excluded@example.com]}
        message: {template: thank_you, subject: "Thanks {{ customer.first_name }}"}
    """)
    once = shop.customer("once@example.com")
    twice = shop.customer("twice@example.com")
    excluded = shop.customer("excluded@example.com")
    shop.order(twice, utc(2026, 10, 1, 9, 0))
    for customer in (once, twice, excluded):
        shop.order(customer, utc(2026, 11, 20, 9, 0))
    shop.order(excluded, utc(2026, 10, 1, 9, 0))
    tick(app, utc(2026, 11, 20, 10, 0))
    assert [s.customer_id for s in ledger(app, "sent")] == [twice]


def test_validation_refuses_a_template_needing_data_its_trigger_never_has(app: App, campaigns_dir):
    write_campaign(campaigns_dir, """
        id: birthday-order
        name: Birthday with an order number
        trigger: {type: birthday}
        message: {template: birthday, subject: "About order {{ order.number }}"}
    """)
    _, problems = app.problems(utc(2026, 11, 20, 10, 0))
    assert [(Path(p.path).name, p.line) for p in problems] == [("birthday-order.yaml", 4)]
    assert problems[0].message == "message.subject: `order` is empty here, so `order.number` cannot be read"
    assert "{% if order %}" in (problems[0].hint or "")


def test_audience_amounts_use_the_shop_currency_and_empty_values_count_as_the_shops(
        app: App, shop: ShopBuilder, campaigns_dir):
    app.settings = app.settings.with_values(SHOP_CURRENCY="JPY", DEFAULT_TIMEZONE="Europe/Berlin")
    write_campaign(campaigns_dir, """
        id: loyal-non-tokyo
        name: Loyal customers outside Tokyo
        trigger: {type: order, delay: 1h}
        audience:
          - {field: total_spent, gte: 3000}
          - {field: time_zone, ne: Asia/Tokyo}
          - {field: first_name, not_in: [Bob]}
          - {field: time_zone, in: [Europe/Berlin, America/New_York]}
        message: {template: thank_you, subject: "Thanks"}
    """)
    berlin_by_default = shop.customer("berlin@example.com", first_name=None)  # no zone, no name
    new_york = shop.customer("ny@example.com", time_zone="America/New_York")
    tokyo = shop.customer("tokyo@example.com", time_zone="Asia/Tokyo")
    bob = shop.customer("bob@example.com", first_name="Bob")
    one_order = shop.customer("once@example.com")
    for customer in (berlin_by_default, new_york, tokyo, bob):
        shop.order(customer, utc(2026, 10, 1, 9, 0))  # 2,500 yen each: two orders reach 3,000
    for customer in (berlin_by_default, new_york, tokyo, bob, one_order):
        shop.order(customer, utc(2026, 11, 20, 9, 0))
    tick(app, utc(2026, 11, 20, 10, 0))
    assert sorted(s.customer_id for s in ledger(app, "sent")) == [berlin_by_default, new_york]


def test_recording_the_same_occurrences_twice_keeps_one_ledger_row_each(app: App, shop: ShopBuilder):
    """Another tick or worker planned them already: the second insert is ignored, not an error. Every
    column comes back as it was recorded (the rows go to the driver without SQLAlchemy's types)."""
    at = dt.datetime(2026, 3, 2, 10)
    customer = shop.customer("ada@example.com")
    found = [Occurrence(campaign_id="thank-you", occurrence_key=f"order:{n}", customer_id=customer,
                        email="ada@example.com", order_id=None, order_line_id=None,
                        due_at=at - dt.timedelta(hours=n, microseconds=n - 1), reason=f"bench {n}",
                        skip_reason=SkipReason.NO_CONSENT if n == 2 else None) for n in (1, 2, 3)]
    found.append(Occurrence(campaign_id="thank-you", occurrence_key="order:4", customer_id=customer,
                            email="ada@example.com", order_id=None, order_line_id=None, due_at=at, reason="held",
                            skip_reason=SkipReason.QUIET_HOURS, deferred_until=at + dt.timedelta(hours=8),
                            variant="b", step=2))
    for _ in range(2):
        with app.store.session() as session:
            record(session.connection(), found, at)
            session.commit()
    rows = ledger(app)
    due = [o.due_at for o in found]
    assert [(s.occurrence_key, s.status, s.skip_reason, s.due_at, s.next_attempt_at, s.reason, s.variant, s.step,
             s.attempts) for s in rows] == [
        ("order:1", "planned", None, due[0], due[0], "bench 1", None, None, 0),
        ("order:2", "skipped", "no_consent", due[1], None, "bench 2", None, None, 0),
        ("order:3", "planned", None, due[2], due[2], "bench 3", None, None, 0),
        ("order:4", "planned", "quiet_hours", at, at + dt.timedelta(hours=8), "held", "b", 2, 0),
    ]
    assert due[1].microsecond == 999_999 and all(s.created_at == s.updated_at == at for s in rows)
    with app.store.session() as session:  # compared in SQL with timestamps SQLAlchemy binds itself
        between = (Send.due_at < due[1] + dt.timedelta(microseconds=1), Send.due_at >= due[2])
        assert session.scalars(select(Send.occurrence_key).where(*between).order_by(Send.id)).all() == [
            "order:2", "order:3"]


@pytest.mark.parametrize("moment", [dt.datetime(2026, 11, 23, 10), dt.datetime(2026, 1, 2, 3, 4, 5, 6),
                                    dt.datetime(999, 12, 31, 23, 59, 59, 999999),
                                    dt.datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Europe/Berlin"))])
def test_the_ledger_writes_sqlite_timestamps_as_sqlalchemy_does(moment: dt.datetime) -> None:
    """Stored text is compared as text: the same format as the column type's, or ranges go wrong."""
    dialect = sqlite.dialect()
    assert sqlite_stamp(moment) == DateTime().dialect_impl(dialect).bind_processor(dialect)(moment)
