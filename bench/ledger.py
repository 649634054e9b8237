"""Time the ledger writes of `plan()` against a plain sqlite3 executemany of the same rows.

    python bench/ledger.py [--rows 100000] [--rounds 3]

Two fresh stores with the same customers; into one the runner records the occurrences the way
`plan()` does (engine.record, CHUNK rows per transaction), into the other a plain sqlite3
`executemany` writes the same rows (timestamps as the text the store keeps, the same
`ON CONFLICT DO NOTHING`, CHUNK rows per transaction). Both ledgers are checked equal, then each
writer runs again over the same rows, which must all be ignored as already planned. Prints the
median of the rounds' wall and CPU times and the ratio runner / floor for the first pass and for the
second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.engine import CHUNK, Occurrence, record  # noqa: E402
from runner.models import SkipReason  # noqa: E402
from runner.store import Store  # noqa: E402

COLUMNS = ("campaign_id", "occurrence_key", "customer_id", "order_id", "order_line_id", "due_at", "reason",
           "variant", "status", "skip_reason", "attempts", "next_attempt_at", "created_at", "updated_at")
NOW = dt.datetime(2026, 11, 23, 10, 0)


def occurrences(count: int, customers: int) -> list[Occurrence]:
    """A day's worth of replenishment-like occurrences: most planned, some skipped, some deferred."""
    found = []
    for n in range(count):
        skip = SkipReason.NO_CONSENT if n % 7 == 0 else (SkipReason.QUIET_HOURS if n % 11 == 0 else None)
        due = NOW - dt.timedelta(seconds=n % 86_400)
        found.append(Occurrence(
            campaign_id="replenishment", occurrence_key=f"line:{n + 1}", customer_id=n % customers + 1,
            email=f"customer{n}@example.com", order_id=n // 2 + 1, order_line_id=n + 1, due_at=due,
            reason=f"COFFEE-{n % 40:03d} should run out in 2 days", skip_reason=skip,
            deferred_until=NOW + dt.timedelta(hours=3) if skip is SkipReason.QUIET_HOURS else None,
            variant="b" if n % 2 else None))
    return found


def store_text(moment: dt.datetime | None) -> str | None:
    """A timestamp (naive here) as the store keeps it on SQLite."""
    return None if moment is None else moment.isoformat(" ", "microseconds")


def fresh_store(path: Path, customers: int) -> None:
    Store(f"sqlite:///{path}").init()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO customer (id, email, first_name, last_name, accepts_marketing, order_count, "
            "total_spent_cents, created_at) VALUES (?, ?, '', '', 1, 0, 0, ?)",
            [(n, f"customer{n}@example.com", store_text(NOW)) for n in range(1, customers + 1)])


def runner_writes(path: Path) -> Callable[[list[Occurrence]], None]:
    store = Store(f"sqlite:///{path}")

    def write(found: list[Occurrence]) -> None:
        with store.session() as session:
            for start in range(0, len(found), CHUNK):
                record(session.connection(), found[start:start + CHUNK], NOW)
                session.commit()
    return write


def floor_writes(path: Path) -> Callable[[list[Occurrence]], None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    sql = (f"INSERT INTO send ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
           "ON CONFLICT (campaign_id, occurrence_key) DO NOTHING")
    stamp = store_text(NOW)

    def write(found: list[Occurrence]) -> None:
        for start in range(0, len(found), CHUNK):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, [
                (o.campaign_id, o.occurrence_key, o.customer_id, o.order_id, o.order_line_id, store_text(o.due_at),
                 o.reason, o.variant, status, o.skip_reason.value if o.skip_reason else None, 0,
                 store_text(o.deferred_until or o.due_at) if status == "planned" else None, stamp, stamp)
                for o in found[start:start + CHUNK] for status in (o.status.value,)])
            conn.execute("COMMIT")
    return write


def ledger(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {', '.join(COLUMNS)} FROM send ORDER BY occurrence_key").fetchall()


def timed(write: Callable[[list[Occurrence]], None], found: list[Occurrence]) -> tuple[float, float]:
    """Wall time and the process's CPU time (steadier on a shared machine; the writes never wait on
    another process here)."""
    wall, cpu = time.perf_counter(), time.process_time()
    write(found)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="ledger rows to write (default 100000)")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    found = occurrences(args.rows, args.customers)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            paths = {name: Path(tmp) / f"{name}-{round_}.db" for name in ("runner", "floor")}
            writers = {}
            for name, path in paths.items():
                fresh_store(path, args.customers)
                writers[name] = (runner_writes if name == "runner" else floor_writes)(path)
            for name in ("runner", "floor") if round_ % 2 == 0 else ("floor", "runner"):  # alternate who goes first
                times.setdefault((name, "new"), []).append(timed(writers[name], found))
                times.setdefault((name, "again"), []).append(timed(writers[name], found))
            written = {name: ledger(path) for name, path in paths.items()}
            if written["runner"] != written["floor"] or len(written["runner"]) != args.rows:
                sys.exit("the runner's ledger differs from the floor's")
    print(f"{args.rows:,} ledger rows in transactions of {CHUNK:,}, median of {args.rounds} rounds "
          "(both ledgers checked equal)")
    for phase, label in (("new", "new rows"), ("again", "same rows again (all ignored)")):
        wall, cpu = ({name: statistics.median(t[i] for t in times[name, phase]) for name in ("runner", "floor")}
                     for i in (0, 1))
        print(f"  {label}")
        for name in ("runner", "floor"):
            print(f"    {name:<7} {wall[name]:6.2f} s wall, {cpu[name]:6.2f} s CPU "
                  f"({cpu[name] / args.rows * 1e6:5.1f} us of CPU per row)")
        print(f"    runner/floor {cpu['runner'] / cpu['floor']:.2f} (CPU; wall {wall['runner'] / wall['floor']:.2f})")

if __name__ == "__main__":
    main()
