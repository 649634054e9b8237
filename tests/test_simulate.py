"""`lifecycle simulate`: the same sends as real ticks over the period, without writing or sending anything."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import pytest
from history import build_history, write_campaigns
from shopkit import ShopBuilder
from sqlalchemy import select
from test_cli import AT, digest, run, workdir  # noqa: F401 - workdir is a fixture used here

from runner.app import App
from runner.errors import LifecycleError
from runner.models import Order, Send, SendStatus
from runner.providers.file import FileProvider
from runner.simulation.chart import write_report
from runner.simulation.grid import TickGrid
from runner.simulation.summary import SimulationSummary

START, END = dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 4, 23, 59)


def simulated(app: App, grid: TickGrid) -> set[tuple]:
    campaigns = app.campaigns(grid.start)
    return {(o.campaign_id, o.occurrence_key, o.outcome, o.tick_at) for o in app.simulate(grid, campaigns)}


def ticked(app: App, grid: TickGrid) -> set[tuple]:
    """Real ticks at every instant of the grid, from an empty ledger: what the ledger then holds."""
    campaigns = app.campaigns(grid.start)
    provider = FileProvider(Path(app.settings.environ["LIFECYCLE_OUTBOX_DIR"]))
    for at in grid.ticks():
        app.tick(at, campaigns, provider)
    with app.store.session() as session:
        rows = list(session.exec(select(Send)).scalars())
    assert {row.status for row in rows} <= {SendStatus.SENT, SendStatus.SKIPPED}
    return {(row.campaign_id, row.occurrence_key, row.skip_reason or "sent",
             row.sent_at if row.status == SendStatus.SENT else row.created_at) for row in rows}


# Steps longer than the thank-you's expire_after (1h), so some of its emails expire between ticks;
# 80 minutes puts ticks off the hour, where orders are not.
@pytest.mark.parametrize(("step", "seed"), [(dt.timedelta(hours=2), 1), (dt.timedelta(minutes=80), 2)])
def test_simulating_a_period_sends_what_real_ticks_over_it_send(
        app: App, shop: ShopBuilder, campaigns_dir: Path, step: dt.timedelta, seed: int):
    write_campaigns(campaigns_dir)
    build_history(shop, START, END, customers=50, seed=seed)
    grid = TickGrid(START, END, step)
    simulation = simulated(app, grid)
    assert simulation == ticked(app, grid)
    outcomes = {(campaign, outcome) for campaign, _, outcome, _ in simulation}
    campaigns = {campaign for campaign, outcome in outcomes if outcome == "sent"}
    assert campaigns == {"lapse", "lapse-new", "thanks", "delivered", "refill", "vip", "reorder", "anniv", "bday"}
    assert ("thanks", "expired") in outcomes and "no_consent" in {outcome for _, outcome in outcomes}


# ---------------------------------------------------------------- the tick grid in SQL


def test_the_first_tick_at_or_after_an_instant_is_the_same_in_sql_and_python(app: App, shop: ShopBuilder):
    grid = TickGrid(dt.datetime(2026, 3, 1, 0, 0, 0), dt.datetime(2026, 3, 3), dt.timedelta(minutes=80))
    tick = dt.datetime(2026, 3, 1, 2, 40)  # the third tick
    instants = [dt.datetime(2026, 2, 27, 5, 0), grid.start, grid.start + dt.timedelta(microseconds=1), tick,
                tick - dt.timedelta(microseconds=1), tick + dt.timedelta(microseconds=500_000),
                tick + dt.timedelta(seconds=1), dt.datetime(2026, 3, 2, 13, 7, 42, 123456)]
    ada = shop.customer("ada@example.com")
    for at in instants:
        shop.order(ada, at)
    plus = dt.timedelta(hours=3)
    with app.store.engine.connect() as conn:
        rows = conn.execute(select(Order.placed_at, grid.first_at_or_after_sql(Order.placed_at),
                                   grid.first_at_or_after_sql(Order.placed_at, plus))).all()
    assert sorted(placed for placed, _, _ in rows) == sorted(instants)
    for placed, first, shifted in rows:
        assert first == grid.first_at_or_after(placed), placed
        assert shifted == grid.first_at_or_after(placed + plus), placed


def test_a_grid_refuses_what_it_cannot_tick():
    with pytest.raises(LifecycleError, match="whole number of seconds"):
        TickGrid(START, END, dt.timedelta(milliseconds=1500))
    with pytest.raises(LifecycleError, match="ends before it starts"):
        TickGrid(END, START, dt.timedelta(hours=1))
    grid = TickGrid(START, dt.datetime(2026, 3, 1, 5, 30), dt.timedelta(hours=2))
    assert list(grid.ticks()) == [START, START + dt.timedelta(hours=2), START + dt.timedelta(hours=4)]
    assert grid.first_at_or_after(dt.datetime(2026, 3, 1, 4, 0, 1)) is None


# ---------------------------------------------------------------- the command


@pytest.fixture
def demo_shop(workdir: Path, capsys) -> Path:  # noqa: F811 - the fixture imported above
    """A working directory whose store holds the demo shop (400 customers, history up to AT)."""
    code, out, _ = run(capsys, "demo", "--customers", "400", "--at", AT)
    assert code == 0, out
    return workdir


def test_simulate_writes_nothing_to_the_store_and_sends_nothing(demo_shop: Path, capsys):
    db, outbox = demo_shop / "lifecycle.db", demo_shop / "outbox"
    before, sent_before = digest(db), sorted(outbox.rglob("*"))
    code, out, err = run(capsys, "simulate", "--from", "2026-08-01", "--to", "2026-10-31", "--out", "sim")
    assert code == 0, err
    assert digest(db) == before and sorted(outbox.rglob("*")) == sent_before
    assert "Emails per week" in out and "winback" in out and "Nothing was sent" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    page = (demo_shop / "sim" / "index.html").read_text()
    assert "<svg" in page and "winback" in page
    assert 'src="' not in page and "stylesheet" not in page  # self-contained
    daily = (demo_shop / "sim" / "daily.csv").read_text().splitlines()
    assert daily[0] == "day,campaign,sent,no_consent,suppressed,expired"
    assert len(daily) == 1 + 92 * 8  # every day of August to October, for each of the eight campaigns
    assert ElementTree.fromstring((demo_shop / "sim" / "daily.svg").read_text()).tag.endswith("svg")


def test_simulate_prints_json_or_the_daily_csv(demo_shop: Path, capsys):
    code, out, err = run(capsys, "simulate", "--from", "2026-10-01", "--to", "2026-10-07T12:00", "--step", "30m",
                         "--campaign", "winback", "--format", "json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["from"] == "2026-10-01T00:00:00Z" and summary["to"] == "2026-10-07T12:00:00Z"
    assert summary["ticks"] == 6 * 48 + 25 and [c["campaign"] for c in summary["campaigns"]] == ["winback"]
    code, out, _ = run(capsys, "simulate", "--from", "2026-10-01", "--to", "2026-10-02", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "day,campaign,sent,no_consent,suppressed,expired"
    assert len(out.splitlines()) == 1 + 2 * 8


def test_assuming_consent_counts_customers_without_it_and_still_skips_suppressed_ones(demo_shop: Path, capsys):
    period = ["--from", "2026-08-01", "--to", "2026-09-30", "--format", "json"]
    code, out, err = run(capsys, "simulate", *period)
    assert code == 0, err
    as_stored = {c["campaign"]: c for c in json.loads(out)["campaigns"]}
    code, out, err = run(capsys, "simulate", *period, "--assume-consent")
    assert code == 0, err
    assumed = json.loads(out)
    assert assumed["assumed_consent"] is True
    for campaign in assumed["campaigns"]:
        before = as_stored[campaign["campaign"]]
        assert campaign["skipped"]["no_consent"] == 0
        assert campaign["skipped"]["suppressed"] == before["skipped"]["suppressed"]
        assert campaign["sent"] == before["sent"] + before["skipped"]["no_consent"]
    assert sum(c["skipped"]["no_consent"] for c in as_stored.values()) > 0


@pytest.mark.parametrize(("args", "message"), [
    (["--step", "fast"], "'fast' is not a duration"),
    (["--to", "2026-09-01"], "--to must be after --from"),
    (["--campaign", "nope"], "no campaign with id 'nope'"),
])
def test_simulate_refuses_bad_input_in_one_line(demo_shop: Path, capsys, args: list[str], message: str):
    options = {"--from": "2026-10-01", "--to": "2026-10-31", **dict(zip(args[::2], args[1::2], strict=True))}
    code, _, err = run(capsys, "simulate", *(part for pair in options.items() for part in pair))
    assert code != 0 and message in err
    assert "Traceback" not in err


def test_the_chart_is_also_a_png_when_matplotlib_is_installed(tmp_path: Path):
    pytest.importorskip("matplotlib")
    grid = TickGrid(START, END, dt.timedelta(hours=1))
    summary = SimulationSummary(grid, ["winback", "thank-you"])
    summary.daily[("winback", START.date())] = Counter(sent=3, no_consent=1)
    summary.daily[("thank-you", END.date())] = Counter(sent=5)
    written = write_report(summary, tmp_path)
    assert (tmp_path / "daily.png") in written
    assert (tmp_path / "daily.png").read_bytes().startswith(b"\x89PNG")
    assert 'href="daily.png"' in (tmp_path / "index.html").read_text()


def test_a_summary_counts_each_day_and_groups_days_for_reading():
    grid = TickGrid(dt.datetime(2026, 1, 30), dt.datetime(2026, 3, 2, 12), dt.timedelta(hours=6))
    summary = SimulationSummary(grid, ["a", "b"])
    summary.daily[("a", dt.date(2026, 1, 30))] = Counter(sent=2, expired=1)
    summary.daily[("a", dt.date(2026, 2, 2))] = Counter(sent=4)
    summary.daily[("b", dt.date(2026, 3, 2))] = Counter(sent=1, suppressed=2)
    assert len(summary.days()) == 32 and summary.bucket_unit() == "week"
    assert summary.buckets()[:2] == [("2026-01-26", {"a": 2, "b": 0}), ("2026-02-02", {"a": 4, "b": 0})]
    assert summary.buckets()[-1] == ("2026-03-02", {"a": 0, "b": 1})
    data = summary.as_dict()
    assert data["campaigns"][0] | {"sent_per_day": None} == {
        "campaign": "a", "sent": 6, "skipped": {"no_consent": 0, "suppressed": 0, "expired": 1},
        "sent_per_day": None, "peak_day": "2026-02-02", "peak_sent": 4}
    assert len(data["days"]) == 64 and data["days"][0] == {
        "day": "2026-01-30", "campaign": "a", "sent": 2, "no_consent": 0, "suppressed": 0, "expired": 1}
