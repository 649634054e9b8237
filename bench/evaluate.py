"""Time the replenishment evaluation against a hand-written SQL floor finding the same due set.

    python bench/evaluate.py --db bench/store-100k.db [--rounds 3]

Reads a store made by bench/generate.py (it writes nothing). For windows ending at the
generator's --now (a day, an hour as the campaign's hourly schedule sees it, and nothing new: the
second tick at the same instant), it runs the shipped replenishment campaign's evaluation
(`find_occurrences`, every occurrence built) and a hand-written floor: plain sqlite3, one UNION ALL
branch per SKU pattern and quantity with its due offset as a constant, the same joins (customer,
suppression, ledger, later orders of the same SKU). Both must find the same (occurrence key,
customer, due instant) set; then prints the median times of the rounds, the ratio runner / floor,
and how many order lines the placed_at slices hold.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.floors import Found, floor_due, replenishment_offsets, stamp  # noqa: E402
from runner.app import App  # noqa: E402
from runner.campaigns import Campaign  # noqa: E402
from runner.engine import find_occurrences, store_time_zones  # noqa: E402
from runner.settings import Settings  # noqa: E402
from runner.triggers.base import Window  # noqa: E402
from runner.triggers.replenishment import ReplenishmentTrigger  # noqa: E402


def run_runner(app: App, campaign: Campaign, window: Window) -> Found:
    with app.store.reading() as session:
        return {(o.occurrence_key, o.customer_id, str(o.due_at)) for o in find_occurrences(session, campaign, window)}


def lines_in_slices(conn: sqlite3.Connection, trigger: ReplenishmentTrigger, window: Window) -> int:
    """The order lines placed in the window shifted back by each distinct span of the slices."""
    return sum(conn.execute("SELECT count(*) FROM order_line WHERE placed_at > ? AND placed_at <= ?",
                            (stamp(window.start - dt.timedelta(seconds=offset)),
                             stamp(window.now - dt.timedelta(seconds=offset)))).fetchone()[0]
               for offset in replenishment_offsets(trigger))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a store made by bench/generate.py")
    parser.add_argument("--at", default="2026-11-23T10:00:00", help="the window's end (the generator's --now, UTC)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    now = dt.datetime.fromisoformat(args.at)
    app = App(Settings({"LIFECYCLE_DATABASE_URL": f"sqlite:///{args.db}",
                        "LIFECYCLE_CAMPAIGNS_DIR": str(ROOT / "campaigns"), "LIFECYCLE_SECRET_KEY": "bench",
                        "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates")}))
    campaign = next(c for c in app.campaigns(now) if c.id == "replenishment")
    assert isinstance(campaign.trigger, ReplenishmentTrigger)
    with app.store.reading() as session:
        zones = store_time_zones(session)
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    lines = conn.execute("SELECT count(*) FROM order_line").fetchone()[0]
    print(f"{args.db.name}: {lines:,} order lines; replenishment evaluated at {now}, median of {args.rounds} rounds")
    for label, length in (("a day", dt.timedelta(days=1)), ("an hour", dt.timedelta(hours=1)),
                          ("nothing new (same instant)", dt.timedelta(0))):
        window = Window(start=now - length, now=now, default_zone=ZoneInfo("UTC"), time_zones=zones)
        times: dict[str, list[float]] = {"runner": [], "floor": []}
        found: dict[str, Found] = {}
        for round_ in range(args.rounds):
            for name in ("runner", "floor") if round_ % 2 == 0 else ("floor", "runner"):
                started = time.perf_counter()
                result = (run_runner(app, campaign, window) if name == "runner"
                          else floor_due(conn, campaign, window))
                elapsed = time.perf_counter() - started
                times[name].append(elapsed)
                found[name] = result
        if found["runner"] != found["floor"]:
            sys.exit(f"{label}: the runner found {len(found['runner']):,}, the floor {len(found['floor']):,}: "
                     f"{len(found['runner'] ^ found['floor']):,} differ")
        runner, floor = statistics.median(times["runner"]), statistics.median(times["floor"])
        print(f"  {label:<28} {len(found['runner']):>6,} due (same set)   runner {runner:7.3f} s   floor {floor:7.3f} s"
              f"   runner/floor {runner / floor if floor else float('nan'):5.2f}   "
              f"lines in the placed_at slices: {lines_in_slices(conn, campaign.trigger, window):,}")


if __name__ == "__main__":
    main()
