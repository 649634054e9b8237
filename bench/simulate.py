"""Time `lifecycle simulate` over a generated store, campaign by campaign, and one evaluation at a past instant.

    python bench/generate.py --customers 100000 --db bench/store-100k.db --now 2026-11-23T10:00:00Z
    python bench/simulate.py --db bench/store-100k.db [--from 2025-11-23 --to 2026-11-22 --step 1h]

The simulation reads the store itself (it writes nothing, which this script checks by hashing the
file before and after). Figures: seconds and outcomes per campaign for the whole period, peak
resident memory, and for comparison the engine's evaluation of each campaign at one instant on the
live path (the generator's --now) and as of an instant half-way through the period (the store
then holds later orders, so the win-back and the audience read the orders table).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.app import App  # noqa: E402
from runner.asof import holds_orders_after  # noqa: E402
from runner.engine import find_occurrences, store_time_zones, window_for  # noqa: E402
from runner.settings import Settings  # noqa: E402
from runner.simulation.grid import TickGrid  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def digest(path: Path) -> str:
    """The store file and its write-ahead log, hashed in chunks (the file may be larger than the process)."""
    hashes = []
    for part in (path, path.with_name(path.name + "-wal")):
        if part.exists():
            with part.open("rb") as stream:
                hashes.append(hashlib.file_digest(stream, "sha256").hexdigest())
    return " ".join(hashes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a store made by bench/generate.py")
    parser.add_argument("--from", dest="start", default="2025-11-23", help="first tick (UTC)")
    parser.add_argument("--to", dest="end", default="2026-11-22T23:00:00", help="last tick (UTC)")
    parser.add_argument("--step", type=int, default=3600, help="seconds between ticks")
    parser.add_argument("--now", default="2026-11-23T10:00:00", help="the generator's --now, for the live path")
    parser.add_argument("--campaigns", type=Path, default=ROOT / "campaigns")
    args = parser.parse_args()
    grid = TickGrid(dt.datetime.fromisoformat(args.start), dt.datetime.fromisoformat(args.end),
                    dt.timedelta(seconds=args.step))
    app = App(Settings({"LIFECYCLE_DATABASE_URL": f"sqlite:///{args.db}",
                        "LIFECYCLE_CAMPAIGNS_DIR": str(args.campaigns),
                        "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"), "LIFECYCLE_SECRET_KEY": "bench"}))
    campaigns = app.campaigns(grid.start)
    with app.store.reading() as session:
        customers = session.execute(text("select count(*) from customer")).scalar_one()
        orders = session.execute(text("select count(*) from orders")).scalar_one()
    print(f"store: {customers:,} customers, {orders:,} orders ({args.db.stat().st_size / 2**20:,.0f} MiB)")
    print(f"simulate {grid.start:%Y-%m-%d %H:%M} to {grid.last:%Y-%m-%d %H:%M}, a tick every {args.step} s "
          f"({grid.count:,} ticks)\n")
    before = digest(args.db)
    total = 0.0
    print(f"{'campaign':<16} {'seconds':>8} {'sent':>9}  skipped")
    for campaign in campaigns:
        started = time.perf_counter()
        outcomes = Counter(o.outcome for o in app.simulate(grid, [campaign]))
        spent = time.perf_counter() - started
        total += spent
        skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items()) if k != "sent") or "-"
        print(f"{campaign.id:<16} {spent:8.2f} {outcomes['sent']:9,}  {skipped}")
    print(f"{'all campaigns':<16} {total:8.2f}")
    print(f"\npeak RSS {peak_mb():,.0f} MiB; store file unchanged: {'yes' if digest(args.db) == before else 'NO'}\n")

    live, past = dt.datetime.fromisoformat(args.now), grid.start + (grid.last - grid.start) / 2
    print(f"{'one evaluation':<16} {'live (s)':>9} {'found':>7} {'as of (s)':>10} {'found':>7}")
    with app.store.reading() as session:
        zones = store_time_zones(session)
        paths = {at: holds_orders_after(session, at) for at in (live, past)}
        assert paths == {live: False, past: True}, paths
        for campaign in campaigns:
            cells = []
            for at in (live, past):
                window = window_for(campaign, at, None, ZoneInfo("UTC"), zones, as_of=paths[at])
                started = time.perf_counter()
                found = sum(1 for _ in find_occurrences(session, campaign, window))
                cells.append(f"{time.perf_counter() - started:9.2f} {found:7,}")
            print(f"{campaign.id:<16} {cells[0]} {cells[1]:>18}")


if __name__ == "__main__":
    main()
