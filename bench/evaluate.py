"""Time the evaluation of every shipped campaign against a hand-written SQL floor finding the same due set.

    python bench/evaluate.py --db bench/store-100k.db [--rounds 5] [--only replenishment,birthday]

Reads a store made by bench/generate.py (it writes nothing). For windows ending at the generator's
--now (a day, an hour, and nothing new: the second evaluation at the same instant), it runs each shipped
campaign's evaluation (`find_occurrences`, every occurrence built with its reason and skip reason,
disabled campaigns included) and its floor from bench/floors.py (plain sqlite3, one statement per
trigger, the same audience, ledger, consent and suppression reads). Both must find the same
(occurrence key, customer, due instant) set, else it stops; then it prints the median CPU time of the
rounds (runner and floor alternating first; CPU time, since on a shared machine the wall clock mostly
measures the other processes), the ratio runner / floor, and the runner's cost with nothing new as a
share of its cost for a day's window.
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

from bench.floors import Found, floor_due  # noqa: E402
from runner.app import App  # noqa: E402
from runner.campaigns import Campaign  # noqa: E402
from runner.engine import Occurrence, find_occurrences, store_time_zones  # noqa: E402
from runner.settings import Settings  # noqa: E402
from runner.triggers.base import Window  # noqa: E402

WINDOWS = (("a day", dt.timedelta(days=1)), ("an hour", dt.timedelta(hours=1)), ("nothing new", dt.timedelta(0)))


def run_runner(app: App, campaign: Campaign, window: Window) -> list[Occurrence]:
    with app.store.reading() as session:
        return list(find_occurrences(session, campaign, window))


def runner_set(occurrences: list[Occurrence]) -> Found:
    """The runner's occurrences as the floor writes them (outside the timing: the floor's text needs no
    conversion)."""
    return {(o.occurrence_key, o.customer_id, str(o.due_at)) for o in occurrences}


def compare(app: App, conn: sqlite3.Connection, campaign: Campaign, window: Window,
            rounds: int) -> tuple[int, float, float]:
    """The due count and the median times of the runner and the floor; exits when the sets differ."""
    times: dict[str, list[float]] = {"runner": [], "floor": []}
    found: dict[str, Found] = {}
    for round_ in range(rounds):
        for name in ("runner", "floor") if round_ % 2 == 0 else ("floor", "runner"):
            started = time.process_time()
            if name == "runner":
                occurrences = run_runner(app, campaign, window)
                times[name].append(time.process_time() - started)
                found[name] = runner_set(occurrences)
            else:
                found[name] = floor_due(conn, campaign, window)
                times[name].append(time.process_time() - started)
    if found["runner"] != found["floor"]:
        only_runner, only_floor = found["runner"] - found["floor"], found["floor"] - found["runner"]
        sys.exit(f"{campaign.id}, {window.now - window.start}: the runner found {len(found['runner']):,}, "
                 f"the floor {len(found['floor']):,}; only the runner: {sorted(only_runner)[:3]}, "
                 f"only the floor: {sorted(only_floor)[:3]}")
    return len(found["runner"]), statistics.median(times["runner"]), statistics.median(times["floor"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a store made by bench/generate.py")
    parser.add_argument("--at", default="2026-11-23T10:00:00", help="the windows' end (the generator's --now, UTC)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="", help="campaign ids, comma-separated (default: every shipped one)")
    args = parser.parse_args()
    now = dt.datetime.fromisoformat(args.at)
    app = App(Settings({"LIFECYCLE_DATABASE_URL": f"sqlite:///{args.db}",
                        "LIFECYCLE_CAMPAIGNS_DIR": str(ROOT / "campaigns"), "LIFECYCLE_SECRET_KEY": "bench",
                        "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates")}))
    campaigns = app.campaigns(now, [c for c in args.only.split(",") if c] or None, enabled=False)
    with app.store.reading() as session:
        zones = store_time_zones(session)
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    customers = conn.execute("SELECT count(*) FROM customer").fetchone()[0]
    print(f"{args.db.name}: {customers:,} customers; evaluated at {now}, median of {args.rounds} rounds")
    print(f"  {'campaign':<20} {'window':<12} {'due':>7}   {'runner':>8}   {'floor':>8}   runner/floor  (CPU seconds)")
    totals: dict[str, list[float]] = {label: [0.0, 0.0] for label, _ in WINDOWS}
    for campaign in campaigns:
        day = 0.0
        for label, length in WINDOWS:
            window = Window(start=now - length, now=now, default_zone=ZoneInfo("UTC"),
                            time_zones=zones)
            due, runner, floor = compare(app, conn, campaign, window, args.rounds)
            totals[label][0] += runner
            totals[label][1] += floor
            day = runner if label == "a day" else day
            share = f"   nothing new: {runner / day:.1%} of a day's" if label == "nothing new" and day else ""
            print(f"  {campaign.id:<20} {label:<12} {due:>7,}   {runner:7.4f}s   {floor:7.4f}s   "
                  f"{runner / floor if floor else float('nan'):6.2f}{share}")
    for label, (runner, floor) in totals.items():
        print(f"  {'all':<20} {label:<12} {'':>7}   {runner:7.4f}s   {floor:7.4f}s   {runner / floor:6.2f}")


if __name__ == "__main__":
    main()
