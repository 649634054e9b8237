"""`segment:` in a campaign's audience keeps exactly the customers `lifecycle customers --segment` lists at
the same instant: one definition of the segments (runner/segments/) serves both."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from shopkit import write_campaign
from sqlalchemy import select

from runner.app import App
from runner.audience import audience_sql
from runner.campaigns import Condition
from runner.demo.shop import generate_shop
from runner.models import Customer
from runner.segments import SEGMENT_NAMES, SegmentRules
from runner.triggers.base import Window

NOW = dt.datetime(2026, 11, 23, 10, 0)
AT = dt.datetime(2026, 6, 1, 10, 0)  # the store holds later orders: figures as of AT only
RULES = SegmentRules(vip_percentile=80, big_spender_cents=20000, high_aov_percentile=60, discount_share=0.3,
                     lapsed_after=dt.timedelta(days=120))


@pytest.fixture
def demo(app: App) -> App:
    generate_shop(app.store, customers=300, now=NOW, seed=3)
    app.segment_rules = RULES  # as LIFECYCLE_SEGMENT_* would declare them
    return app


def audience(app: App, at: dt.datetime, **condition: object) -> set[int]:
    window = Window(start=at - dt.timedelta(days=1), now=at, default_zone=ZoneInfo("UTC"), as_of=True,
                    segment_rules=app.segment_rules)
    with app.store.reading() as session:
        query = select(Customer.id).where(audience_sql([Condition.model_validate(condition)], window))
        return set(session.execute(query).scalars())


@pytest.mark.parametrize("at", [AT, NOW], ids=["past", "now"])
def test_each_segment_keeps_the_customers_the_report_lists(demo: App, at: dt.datetime) -> None:
    with demo.store.reading() as session:
        everyone = set(session.execute(select(Customer.id)).scalars())
    sizes = {}
    for name in SEGMENT_NAMES:
        listed = {customer_id for customer_id, _ in demo.segment_members(at, name)}
        assert audience(demo, at, field="segment", eq=name) == listed, name
        assert audience(demo, at, field="segment", ne=name) == everyone - listed, name
        sizes[name] = len(listed)
    counted = {s.name: s.customers for s in demo.customer_figures(at, dt.timedelta(days=365), RULES).segments}
    assert counted == sizes
    assert all(0 < size < len(everyone) for size in sizes.values()), sizes  # every segment tells customers apart


def test_in_and_not_in_take_any_of_several_segments(demo: App) -> None:
    vip = {customer_id for customer_id, _ in demo.segment_members(AT, "vip")}
    lapsed = {customer_id for customer_id, _ in demo.segment_members(AT, "lapsed")}
    assert audience(demo, AT, field="segment", **{"in": ["vip", "lapsed"]}) == vip | lapsed
    assert not audience(demo, AT, field="segment", not_in=["vip", "lapsed"]) & (vip | lapsed)


def test_a_campaign_with_a_segment_reaches_its_trigger_customers_in_the_segment(demo: App, campaigns_dir: Path):
    base = """
        id: {id}
        name: Lapsed for a month
        trigger: {{type: lapsed, after: 30d}}
        {audience}
        message: {{template: winback, subject: "We miss you"}}
        expire_after: 200d
    """
    write_campaign(campaigns_dir, base.format(id="everyone", audience=""))
    write_campaign(campaigns_dir, base.format(id="repeat-only", audience="audience: [{field: segment, eq: repeat}]"))

    reached: dict[str, set[str]] = {"everyone": set(), "repeat-only": set()}
    for item in demo.preview(AT, demo.campaigns(AT)):
        reached[item.occurrence.campaign_id].add(item.occurrence.email)

    repeat = {email for _, email in demo.segment_members(AT, "repeat")}
    assert reached["repeat-only"] == reached["everyone"] & repeat
    assert reached["repeat-only"] and reached["everyone"] - repeat


def test_the_command_lists_a_segment(demo: App, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    for name, value in demo.settings.environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIFECYCLE_SEGMENT_VIP_PERCENTILE", "80")
    main(["customers", "--segment", "vip", "--at", AT.isoformat()])
    out, err = capsys.readouterr()
    listed = [email for _, email in demo.segment_members(AT, "vip")]
    assert out.splitlines() == listed
    assert err.startswith(f"{len(listed)} customer(s) in vip as of 2026-06-01 10:00 UTC")
