"""The `anniversary` trigger and the shipped anniversary campaign: the local date of the first order (or
account), at a local hour, once a year, 29 February on 28 February in other years."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from shopkit import ShopBuilder, utc, write_campaign
from test_engine import install, ledger, sent_keys, tick

from runner.app import App
from runner.triggers.anniversary import YEARS, AnniversaryParams, AnniversaryTrigger, local_day_ranges
from runner.triggers.base import Window
from runner.triggers.local_time import UNION_ARMS

AUCKLAND, LOS_ANGELES = ZoneInfo("Pacific/Auckland"), ZoneInfo("America/Los_Angeles")


def local(zone: ZoneInfo, *args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=zone)


def test_due_exactly_at_the_local_hour_and_once_a_year(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "anniversary")  # 10:00 local
    ada = shop.customer("ada@example.com", time_zone="UTC")
    shop.order(ada, utc(2025, 3, 15, 18, 0))
    shop.order(ada, utc(2025, 6, 1, 18, 0))  # a later order is not an anniversary
    assert tick(app, utc(2026, 3, 15, 9, 59))["anniversary"]["due"] == 0
    assert tick(app, utc(2026, 3, 15, 10, 0))["anniversary"]["sent"] == 1
    assert tick(app, utc(2026, 3, 15, 10, 15))["anniversary"]["due"] == 0  # the next tick: nothing new
    assert tick(app, utc(2026, 6, 1, 10, 0))["anniversary"]["due"] == 0
    assert tick(app, utc(2027, 3, 15, 10, 0))["anniversary"]["sent"] == 1  # the second year
    assert sent_keys(app) == [f"anniversary:{ada}:2026", f"anniversary:{ada}:2027"]
    assert ledger(app)[0].reason == "first order anniversary on 2026-03-15 at 10:00 local time"


def test_no_anniversary_in_the_year_of_the_first_order(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "anniversary")
    shop.order(shop.customer("ada@example.com", time_zone="UTC"), utc(2026, 3, 15, 8, 0))
    assert tick(app, utc(2026, 3, 15, 10, 0))["anniversary"]["due"] == 0


@pytest.mark.parametrize(("year", "expected_day"), [(2027, 28), (2028, 29)])
def test_first_order_on_29_february(app: App, shop: ShopBuilder, campaigns_dir, year: int, expected_day: int):
    install(campaigns_dir, "anniversary")
    leap = shop.customer("leap@example.com", time_zone="UTC")
    shop.order(leap, utc(2024, 2, 29, 12, 0))
    the_28th = shop.customer("the28th@example.com", time_zone="UTC")
    shop.order(the_28th, utc(2024, 2, 28, 12, 0))
    due = utc(year, 2, expected_day, 10, 0)
    assert tick(app, due - dt.timedelta(days=1))["anniversary"]["sent"] == (1 if expected_day == 29 else 0)
    assert tick(app, due - dt.timedelta(minutes=1))["anniversary"]["due"] == 0
    assert tick(app, due)["anniversary"]["sent"] == (2 if expected_day == 28 else 1)
    assert tick(app, utc(year, 3, 1, 10, 0))["anniversary"]["due"] == 0  # once a year
    assert sorted(sent_keys(app)) == sorted([f"anniversary:{leap}:{year}", f"anniversary:{the_28th}:{year}"])
    assert {s.customer_id: s.due_at.day for s in ledger(app)} == {the_28th: 28, leap: expected_day}


def test_the_local_date_and_hour_in_auckland_and_los_angeles(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "anniversary")
    # 15 June 08:00 in Auckland is still 14 June in UTC; 14 June 20:00 in Los Angeles is already 15 June in UTC
    kiwi = shop.customer("kiwi@example.com", time_zone="Pacific/Auckland")
    shop.order(kiwi, local(AUCKLAND, 2025, 6, 15, 8, 0))
    angeleno = shop.customer("la@example.com", time_zone="America/Los_Angeles")
    shop.order(angeleno, local(LOS_ANGELES, 2025, 6, 14, 20, 0))
    assert tick(app, utc(2026, 6, 13, 22, 0))["anniversary"]["due"] == 0  # 10:00 on 14 June in Auckland
    assert tick(app, utc(2026, 6, 14, 16, 59))["anniversary"]["due"] == 0
    assert tick(app, utc(2026, 6, 14, 17, 0))["anniversary"]["sent"] == 1  # 10:00 PDT (UTC-7) on 14 June
    assert tick(app, utc(2026, 6, 14, 21, 59))["anniversary"]["due"] == 0
    assert tick(app, utc(2026, 6, 14, 22, 0))["anniversary"]["sent"] == 1  # 10:00 NZST (UTC+12) on 15 June
    assert tick(app, utc(2026, 6, 15, 17, 0))["anniversary"]["due"] == 0  # not on the UTC dates as well
    assert [s.customer_id for s in ledger(app, "sent")] == [angeleno, kiwi]
    assert sent_keys(app) == [f"anniversary:{angeleno}:2026", f"anniversary:{kiwi}:2026"]


def test_the_local_date_of_a_first_order_under_another_clock_that_year(app: App, shop: ShopBuilder, campaigns_dir):
    """00:30 on 5 April 2025 in Auckland was summer time (UTC+13): 4 April 11:30 UTC. Read with the
    offset 5 April has in 2026 (standard time, UTC+12) it would be 4 April."""
    install(campaigns_dir, "anniversary")
    kiwi = shop.customer("kiwi@example.com", time_zone="Pacific/Auckland")
    shop.order(kiwi, local(AUCKLAND, 2025, 4, 5, 0, 30))
    assert tick(app, utc(2026, 4, 3, 21, 0))["anniversary"]["due"] == 0  # 10:00 NZDT on 4 April
    assert tick(app, utc(2026, 4, 4, 22, 0))["anniversary"]["sent"] == 1  # 10:00 NZST on 5 April
    assert ledger(app)[0].reason == "first order anniversary on 2026-04-05 at 10:00 local time"


def test_customers_without_a_zone_use_the_shops(app: App, shop: ShopBuilder, campaigns_dir):
    app.settings = app.settings.with_values(DEFAULT_TIMEZONE="Pacific/Auckland")
    install(campaigns_dir, "anniversary")
    shop.order(shop.customer("plain@example.com"), local(AUCKLAND, 2025, 6, 15, 8, 0))
    assert tick(app, utc(2026, 6, 14, 21, 59))["anniversary"]["due"] == 0
    assert tick(app, utc(2026, 6, 14, 22, 0))["anniversary"]["sent"] == 1


def test_a_cancelled_first_order_is_not_the_first(app: App, shop: ShopBuilder, campaigns_dir):
    install(campaigns_dir, "anniversary")
    ada = shop.customer("ada@example.com", time_zone="UTC")
    shop.order(ada, utc(2025, 3, 15, 12, 0), cancelled=True)
    shop.order(ada, utc(2025, 3, 20, 12, 0))
    assert tick(app, utc(2026, 3, 15, 10, 0))["anniversary"]["due"] == 0
    assert tick(app, utc(2026, 3, 20, 10, 0))["anniversary"]["sent"] == 1


def test_account_anniversary_and_the_years_in_the_email(app: App, shop: ShopBuilder, campaigns_dir):
    write_campaign(campaigns_dir, """
        id: member-anniversary
        name: Member anniversary
        trigger: {type: anniversary, since: account, hour: 9}
        message:
          template: anniversary
          subject: "{{ occurrence.anniversary.years }} years since {{ occurrence.anniversary.since|date }}"
    """)
    ada = shop.customer("ada@example.com", time_zone="Europe/Berlin", created_at=utc(2022, 8, 1, 22, 30))
    shop.order(ada, utc(2024, 5, 1, 12, 0))  # the first order is not what counts here
    assert tick(app, utc(2026, 8, 2, 6, 59))["member-anniversary"]["due"] == 0  # 08:59 in Berlin (CEST)
    assert tick(app, utc(2026, 8, 2, 7, 0))["member-anniversary"]["sent"] == 1  # 2 August: 00:30 in Berlin
    (eml,) = Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]).rglob("*.eml")
    assert "Subject: 4 years since August 2, 2022" in eml.read_text()


def test_ranges_are_exact_per_year_and_merge_across_29_february():
    ranges = local_day_ranges(dt.date(2027, 2, 28), LOS_ANGELES)
    assert len(ranges) == YEARS
    # 2024 was a leap year: 28 and 29 February local, one range from 08:00 UTC on the 28th to 08:00 on 1 March
    assert (dt.datetime(2024, 2, 28, 8), dt.datetime(2024, 3, 1, 8)) in ranges
    assert (dt.datetime(2026, 2, 28, 8), dt.datetime(2026, 3, 1, 8)) == ranges[-1]
    assert dt.datetime(1977, 2, 28, 8) == ranges[0][0]


def test_each_query_stays_small_after_a_long_downtime():
    """A window of 40 days over many zones is one query per local date and due instant, each with one
    index range per zone condition and year: far below SQLite's expression depth of 1000; they are run
    as UNION ALLs of at most UNION_ARMS queries (SQLite allows 500)."""
    zones = ("America/Los_Angeles", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Pacific/Auckland", None)
    now = dt.datetime(2026, 11, 23, 10, 0)
    window = Window(start=now - dt.timedelta(days=60), now=now, default_zone=ZoneInfo("UTC"), time_zones=zones)
    statements = AnniversaryTrigger(AnniversaryParams()).occurrences(window)
    assert all(len(getattr(statement, "selects", [statement])) <= UNION_ARMS for statement in statements)
    queries = [query for statement in statements for query in getattr(statement, "selects", [statement])]
    assert 40 * len(zones) <= len(queries) <= 41 * len(zones)
    def terms(query: Any) -> int:  # one per zone condition (named zones, no zone) and range
        where = query.whereclause
        return (any(where.zones) + (None in where.zones)) * len(where.ranges)

    assert max(terms(q) for q in queries) <= 2 * YEARS
