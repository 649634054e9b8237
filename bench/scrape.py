"""How long /metrics takes to read the ledger: `ledger_counts` over a synthetic ledger of N sends.

    python bench/scrape.py --db bench/ledger.db --sends 1000000
    python bench/scrape.py --url postgresql+psycopg://user:pass@127.0.0.1/scratch --sends 1000000

Fills a fresh store (SQLite file, or a PostgreSQL database whose tables it DROPS) with N sends
over four campaigns (2% planned, half of those due; 7% skipped; the rest sent) in one INSERT ...
SELECT, then times five reads and prints the median and the plan of the grouped count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

from sqlalchemy import text

from runner.store import Store
from runner.telemetry import ledger_counts

NOW = dt.datetime(2026, 11, 24, 9, 0)
ROWS = """
    SELECT CASE i % 4 WHEN 0 THEN 'thank-you' WHEN 1 THEN 'winback' WHEN 2 THEN 'birthday' ELSE 'replenishment' END,
           'k' || i, 1, :due, '', CASE WHEN i % 50 = 0 THEN 'planned' WHEN i % 13 = 0 THEN 'skipped' ELSE 'sent' END,
           1, CASE WHEN i % 100 = 0 THEN :later ELSE :due END, :due, :due
"""
INSERT = "INSERT INTO send (campaign_id, occurrence_key, customer_id, due_at, reason, status, attempts, " \
         "next_attempt_at, created_at, updated_at)"


def fill(store: Store, sends: int) -> None:
    series = ("FROM generate_series(1, :n) AS i" if store.url.startswith("postgresql") else
              "FROM (WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) SELECT i FROM s)")
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO customer (email, first_name, last_name, accepts_marketing, created_at, "
                          "order_count, total_spent_cents) VALUES ('bench@example.com', '', '', true, :due, 0, 0)"),
                     {"due": dt.datetime(2026, 11, 1)})
        conn.execute(text(f"{INSERT} {ROWS} {series}"),
                     {"n": sends, "due": dt.datetime(2026, 11, 1), "later": dt.datetime(2026, 11, 25)})
    if store.url.startswith("postgresql"):
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE send"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", type=Path, help="SQLite file to create (replaced if it exists)")
    where.add_argument("--url", help="PostgreSQL URL of a scratch database (its tables are dropped)")
    parser.add_argument("--sends", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.db:
        for leftover in args.db.parent.glob(args.db.name + "*"):
            leftover.unlink()
    store = Store(args.url or f"sqlite:///{args.db}")
    if args.url:
        store.drop()
    store.init()
    started = time.perf_counter()
    fill(store, args.sends)
    print(f"filled {args.sends:,} sends in {time.perf_counter() - started:.1f} s")
    with store.session() as session:
        ledger_counts(session, NOW)  # warm the cache, as a running service's would be
        times = []
        for _ in range(5):
            started = time.perf_counter()
            counts = ledger_counts(session, NOW)
            times.append(time.perf_counter() - started)
        explain = "EXPLAIN" if args.url else "EXPLAIN QUERY PLAN"
        plan = session.execute(text(f"{explain} SELECT campaign_id, status, count(*) FROM send "
                                    "GROUP BY campaign_id, status")).all()
    print(f"ledger_counts: median {statistics.median(times) * 1000:.0f} ms over 5 reads "
          f"({sum(counts.sends.values()):,} sends, due backlog {counts.due})")
    print("plan of the grouped count:", " / ".join(str(row[-1]).strip() for row in plan))
    store.close()


if __name__ == "__main__":
    main()
