"""Generate a synthetic shop store for benchmarks and report rows, size, time and peak memory.

    python bench/generate.py --customers 100000 --db bench/store-100k.db [--seed 7] [--now 2026-11-23T10:00:00Z]

The same --customers, --seed and --now always give the same rows; without --now the current
time is used (and printed, so the run can be repeated).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import SQLModel

from runner.demo.checkouts import plant_checkouts
from runner.demo.shop import generate_shop
from runner.errors import LifecycleError
from runner.segments import SegmentRules
from runner.segments.thresholds import refresh_vip_threshold
from runner.store import Store


def parse_now(text: str) -> dt.datetime:
    """An ISO 8601 instant; without an offset it is taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (try 2026-11-23T10:00:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000, help="customers to generate (default 100000)")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file to create, e.g. bench/store-100k.db")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--now", type=parse_now, default=None,
                        help="the instant the shop's history ends at, ISO 8601 (default: the current time)")
    parser.add_argument("--replace", action="store_true", help="delete an existing file at --db first")
    return parser


def peak_memory_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.customers < 0:
        print("Error: --customers must be 0 or more", file=sys.stderr)
        return 2
    now = args.now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    db: Path = args.db
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    if db.exists():
        if not args.replace:
            print(f"Error: {db} already exists. Use --replace to overwrite it.", file=sys.stderr)
            return 1
        for path in files:
            path.unlink(missing_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)

    print(f"generating {args.customers:,} customers into {db} (seed {args.seed}, now {now.isoformat()})")
    started = time.perf_counter()
    store = Store(f"sqlite:///{db}")
    try:
        store.init()

        def progress(done: int) -> None:
            elapsed = time.perf_counter() - started
            print(f"  {done:>10,} customers  {elapsed:7.1f} s", flush=True)

        summary = generate_shop(store, customers=args.customers, now=now, seed=args.seed, progress=progress)
        plant_checkouts(store, now=now, customers=args.customers)  # counted with the other tables below
        with store.session() as session:  # as the demo does: vip-milestone's `segment: vip` compares with it
            refresh_vip_threshold(session, now.replace(tzinfo=None), SegmentRules())
        generated = time.perf_counter() - started
        with store.engine.connect() as conn:
            counts = {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                      for name, table in sorted(SQLModel.metadata.tables.items())}
    except LifecycleError as exc:
        print(f"Error: {exc}" + (f" ({exc.hint})" if exc.hint else ""), file=sys.stderr)
        return 1
    finally:
        store.close()  # the last connection closing checkpoints the WAL into the file

    print("rows per table:")
    for name, count in counts.items():
        print(f"  {name:<18} {count:>12,}")
    print(f"summary: {summary}")
    size = sum(path.stat().st_size for path in files if path.exists())
    print(f"file size: {size / 1024 / 1024:,.1f} MiB")
    print(f"elapsed: {generated:,.1f} s")
    print(f"peak memory: {peak_memory_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
