"""Time the evaluation of a journey's later steps over a ledger of many journeys, and show their query plans.

    python bench/journey.py --customers 100000
    python bench/journey.py --customers 100000 --db postgresql+psycopg://user:pass@host/db   # drops its tables

The store gets `--customers` lapsed customers, each with one order and a win-back journey whose first
step was sent on a day spread evenly over the last 120 days, and whose second step was sent 30 days
after it where that instant is past (the steady state of a daily tick). The shipped winback-journey is
then evaluated at one instant: every step's query (the trigger's for step 1, the ledger's for steps 2
and 3), timed ROUNDS times, best of each, with the plan of each later step's query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.campaigns import parse_campaign  # noqa: E402
from runner.engine import find_occurrences, window_for  # noqa: E402
from runner.journeys.steps import step_select  # noqa: E402
from runner.store import Store  # noqa: E402

NOW = dt.datetime(2026, 11, 23, 10, 0)
SPREAD_DAYS = 120
ROUNDS = 3


def fill(store: Store, customers: int) -> None:
    """Customers, their last orders and their journeys' ledger rows, in a few set-based statements."""
    seconds = SPREAD_DAYS * 86400
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE n (i INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO n (i) VALUES " + ",".join(f"({i})" for i in range(1, 1001))))
        conn.execute(text(
            "INSERT INTO customer (id, email, first_name, last_name, accepts_marketing, created_at, order_count, "
            "total_spent_cents, last_order_at) SELECT a.i * 1000 + b.i - 1000, 'c' || (a.i * 1000 + b.i) || "
            "'@example.com', 'C', 'B', true, :created, 1, 2500, :created FROM n a, n b "
            "WHERE a.i * 1000 + b.i - 1000 <= :customers"), {"created": NOW - dt.timedelta(days=400),
                                                              "customers": customers})
        sent_at = ("CAST(:now AS TIMESTAMP) - (c.id * :step) * INTERVAL '1 second'"
                   if conn.dialect.name == "postgresql" else "datetime(:now, '-' || (c.id * :step) || ' seconds')")
        rows = ("'winback-journey', 'lapse:' || c.id, c.id, {at}, 'bench', 'sent', 1, {at}, {at}, {at}, 1")
        conn.execute(text(
            "INSERT INTO send (campaign_id, occurrence_key, customer_id, due_at, reason, status, attempts, "
            f"created_at, updated_at, sent_at, step) SELECT {rows.format(at=sent_at)} FROM customer c"),
            {"now": NOW, "step": seconds // max(customers, 1)})
        second = ("s.sent_at + INTERVAL '30 days'" if conn.dialect.name == "postgresql"
                  else "datetime(s.sent_at, '+30 days')")
        conn.execute(text(
            "INSERT INTO send (campaign_id, occurrence_key, customer_id, due_at, reason, status, attempts, "
            f"created_at, updated_at, sent_at, step) SELECT s.campaign_id, s.occurrence_key || '#2', s.customer_id, "
            f"{second}, 'bench', 'sent', 1, {second}, {second}, {second}, 2 FROM send s "
            f"WHERE s.step = 1 AND {second} <= :now"), {"now": NOW})
        conn.execute(text("DROP TABLE n"))
    if store.engine.dialect.name == "postgresql":  # the planner's statistics, as a store in use has them
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--db", help="a database URL (default: a new SQLite file in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.db or f"sqlite:///{Path(tmp) / 'journey.db'}")
        store.drop()
        store.init()
        started = time.perf_counter()
        fill(store, args.customers)
        print(f"{args.customers:,} journeys written in {time.perf_counter() - started:.1f} s "
              f"({store.engine.dialect.name})")
        campaign, problems = parse_campaign(ROOT / "campaigns" / "winback-journey.yaml")
        assert campaign is not None, problems
        first = window_for(campaign, NOW, None, ZoneInfo("UTC"), (None,))
        daily = replace(first, start=NOW - dt.timedelta(days=1))  # evaluated a day before, as by a daily tick
        with store.reading() as session:
            for label, window in (("a first evaluation (reaching back 2 x expire_after)", first),
                                  ("a daily tick (reaching back a day and expire_after)", daily)):
                best, found = float("inf"), 0
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    found = sum(1 for _ in find_occurrences(session, campaign, window))
                    best = min(best, time.perf_counter() - started)
                print(f"every step, {label}: {best:.3f} s (best of {ROUNDS}), {found:,} occurrences due")
            window = first
            for step in (2, 3):
                query = step_select(campaign, step, window)
                sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
                explain = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
                print(f"step {step}:")
                for row in session.execute(text(explain + sql)):
                    print(f"  {row[-1]}")
        store.drop()
        store.close()


if __name__ == "__main__":
    main()
