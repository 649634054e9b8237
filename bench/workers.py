"""Emails per second with 1, 2 and 4 `lifecycle tick` workers at once on one PostgreSQL store, sending
through the real Postmark provider to a local Postmark stand-in that answers every request late.

    createdb -O lifecycle lifecycle_bench_workers
    python bench/workers.py --url postgresql+psycopg://lifecycle:lifecycle@127.0.0.1:5432/lifecycle_bench_workers \\
        [--customers 100000] [--due 10000] [--workers 1,2,4] [--rounds 1] [--reuse] \\
        [--latency 0.03] [--request-size 500] [--concurrency 4]

The store is rebuilt: `--customers` customers with one order each, of which `--due` placed three
hours before the tick instant (a thank-you email due for each), the rest a year earlier, written
with COPY (1,000,000 customers in about a minute). The due set is planned once, timing that
evaluation and a second one at the same instant (finding nothing, as each round's evaluating
worker does). `--reuse` keeps a store an earlier run built and planned with the same
`--customers` and `--due` instead. Each round puts every send back to `planned` and starts N real
`lifecycle tick` processes at once (LIFECYCLE_DISPATCH_CONCURRENCY requests in flight per worker,
default 4). It times the sending (from the first claim until every send is recorded, sampled every
50 ms with the connections open in pg_stat_activity) and the whole round (from the processes'
start until the last exits, start-up included). One worker at a time holds the campaign's
evaluation (the others skip it, or take it in turn once it is given back, and find nothing new);
all of them send. Each round checks that every tick exited cleanly, that every due send is
recorded `sent` and that the workers' reports add up to the due set (the exactly-once count at a
stand-in is tests/test_workers.py's job), and prints how many workers evaluated and the load
average. `--rounds` repeats every worker count; the medians and the speed-ups over the first count
come last. The stand-in (bench/postmark_sink.py) runs in its own process; `--latency` is the
seconds it waits before answering each request, standing for the network and the provider's work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.app import App  # noqa: E402  (the project root is on sys.path above)
from runner.campaign_state import finish_evaluation, take_evaluation  # noqa: E402
from runner.engine import plan, store_time_zones, window_for  # noqa: E402
from runner.models import Customer, Product, Send, SendStatus  # noqa: E402
from runner.settings import Settings  # noqa: E402
from runner.store import Store  # noqa: E402

TICK_AT = dt.datetime(2026, 11, 23, 10, 0)  # naive UTC, as the store keeps it
CHUNK = 10_000


def copy_rows(connection: Connection, table: str, columns: str, lines: Iterable[str]) -> None:
    """Rows (tab-separated text, in `columns` order) into `table` through PostgreSQL's COPY, a chunk at a time."""
    cursor = connection.connection.driver_connection.cursor()  # psycopg's own cursor: COPY is not SQLAlchemy's
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == CHUNK:
                copy.write("\n".join(chunk) + "\n")
                chunk.clear()
        if chunk:
            copy.write("\n".join(chunk) + "\n")


def build_store(store: Store, customers: int, due: int) -> None:
    """Customers 1..customers, one order and line each; the first `due` ordered three hours before TICK_AT.
    Written with COPY (a million customers in about a minute, where row-by-row inserts take many)."""
    store.drop()
    store.init()
    fresh, old = TICK_AT - dt.timedelta(hours=3), TICK_AT - dt.timedelta(days=365)

    def placed(n: int) -> str:
        return (fresh if n <= due else old).isoformat(sep=" ")

    ids = range(1, customers + 1)
    with store.engine.begin() as connection:
        connection.execute(insert(Product), [{"sku": "MUG", "name": "Mug", "url": "https://shop.example/mug"}])
        copy_rows(connection, "customer", "id, email, first_name, last_name, accepts_marketing, created_at, "
                  "order_count, total_spent_cents, first_order_at, last_order_at",
                  (f"{n}\tc{n}@example.com\tC{n}\t\tt\t{old.isoformat(sep=' ')}\t1\t1200\t{placed(n)}\t{placed(n)}"
                   for n in ids))
        copy_rows(connection, "orders", "id, external_id, name, customer_id, placed_at, subtotal_cents, "
                  "total_cents, currency",
                  (f"{n}\to{n}\t#{n}\t{n}\t{placed(n)}\t1200\t1200\tUSD" for n in ids))
        copy_rows(connection, "order_line", "order_id, customer_id, placed_at, sku, name, quantity, unit_price_cents",
                  (f"{n}\t{n}\t{placed(n)}\tMUG\tMug\t1\t1200" for n in ids))
        for table in ("customer", "orders"):  # explicit ids: the sequences move past them, as an import's would
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {customers})"))
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def kept_store(store: Store, customers: int, due: int) -> bool:
    """Whether the store is one this script built and planned before with the same sizes (--reuse)."""
    with store.engine.connect() as connection:
        try:
            held = connection.execute(select(func.count()).select_from(Customer)).scalar_one()
            planned = connection.execute(select(func.count()).select_from(Send)).scalar_one()
        except SQLAlchemyError:
            return False
    return (held, planned) == (customers, due)


def plan_due(app: App) -> tuple[int, float]:
    """Plan the thank-you emails due at TICK_AT, as one evaluation would: how many, and the seconds the
    evaluation took (its lease, the trigger query, the ledger rows)."""
    started = time.perf_counter()
    campaign = app.campaigns(TICK_AT)[0]
    shop = app.shop()
    with app.store.reading() as session:
        zones = store_time_zones(session)
    with app.store.session() as session:
        evaluation = take_evaluation(session, campaign.id, TICK_AT)
    counts = plan(app.store, campaign, window_for(campaign, TICK_AT, evaluation.state, shop.default_zone, zones))
    with app.store.session() as session:
        finish_evaluation(session, evaluation, TICK_AT, completed=True)
    return counts["due"], time.perf_counter() - started


def reset_ledger(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(update(Send).values(status=SendStatus.PLANNED, attempts=0, claim_token=None,
                                               lease_until=None, sent_at=None, provider_message_id=None,
                                               provider=None))


def start_sink(latency: float) -> tuple[subprocess.Popen[str], str]:
    sink = subprocess.Popen([sys.executable, str(ROOT / "bench" / "postmark_sink.py"), "--token", "bench-token",
                             "--latency", str(latency)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    return sink, sink.stdout.readline().strip()


class Watch:
    """Samples the database every 50 ms while a round runs: when the first send was claimed, when the
    last was recorded, and the most connections open at once (this sampler's own left out)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.peak = 0
        self.first_claim: float | None = None
        self.all_sent: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        connections = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        with self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            while not self._done.wait(0.05):
                self.peak = max(self.peak, int(connection.execute(connections).scalar_one()) - 1)
                if self.all_sent is not None:
                    continue
                by_status = dict(connection.execute(select(Send.status, func.count()).group_by(Send.status)).all())
                if self.first_claim is None and set(by_status) != {SendStatus.PLANNED}:
                    self.first_claim = time.perf_counter()
                if set(by_status) == {SendStatus.SENT}:
                    self.all_sent = time.perf_counter()

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


@dataclass
class Round:
    whole: float  # seconds from the processes' start until the last exits
    sending: float  # seconds from the first claim until every send was recorded
    connections: int  # the most connections open at once
    evaluated: int  # workers that held the campaign's evaluation (the others skipped it)
    sent_by: list[int]  # emails each worker sent


def run_round(store: Store, env: dict[str, str], workers: int, due: int) -> Round:
    """`workers` ticks at once, timed and checked."""
    reset_ledger(store)
    store.engine.dispose()  # this script's own pooled connections closed: the peak counts the workers'
    command = [sys.executable, "-m", "runner.cli", "tick", "--at", TICK_AT.isoformat() + "+00:00", "--json"]
    with Watch(store) as watch:
        started = time.perf_counter()
        ticks = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(workers)]
        outputs = [tick.communicate() for tick in ticks]
        elapsed = time.perf_counter() - started
        time.sleep(0.1)  # one more sample
    assert watch.first_claim is not None and watch.all_sent is not None
    failed = [err for tick, (_, err) in zip(ticks, outputs, strict=True) if tick.returncode != 0]
    assert not failed, failed[0][-2000:]
    reports = [json.loads(out)[0] for out, _ in outputs]  # one campaign: one row each
    with store.engine.connect() as connection:
        sent = connection.execute(select(func.count()).where(Send.status == SendStatus.SENT)).scalar_one()
    assert sent == due, f"{sent} of {due} sent"
    assert sum(r["sent"] for r in reports) == due, [r["sent"] for r in reports]
    return Round(elapsed, watch.all_sent - watch.first_claim, watch.peak,
                 sum(1 for r in reports if r["evaluated"]), [r["sent"] for r in reports])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database of its own (it is emptied)")
    parser.add_argument("--customers", type=int, default=100_000, help="customers in the store (default 100000)")
    parser.add_argument("--due", type=int, default=10_000, help="emails due at the tick (default 10000)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure (default 1,2,4)")
    parser.add_argument("--latency", type=float, default=0.03, help="seconds the stand-in waits per request")
    parser.add_argument("--request-size", type=int, default=None,
                        help="messages per API request (LIFECYCLE_PROVIDER_BATCH_SIZE; default Postmark's 500)")
    parser.add_argument("--concurrency", type=int, default=4, help="LIFECYCLE_DISPATCH_CONCURRENCY (default 4)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every worker count (medians printed)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the store and its planned emails if an earlier run left them with the same "
                             "--customers and --due (otherwise it is rebuilt)")
    args = parser.parse_args()

    store = Store(args.url)
    started = time.perf_counter()
    reused = args.reuse and kept_store(store, args.customers, args.due)
    if not reused:
        build_store(store, args.customers, args.due)
        print(f"store: {args.customers:,} customers built in {time.perf_counter() - started:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        campaigns = Path(folder) / "campaigns"
        campaigns.mkdir()
        (campaigns / "thank-you.yaml").write_text((ROOT / "campaigns" / "thank-you.yaml").read_text())
        sink, url = start_sink(args.latency)
        try:
            env = os.environ | {
                "LIFECYCLE_DATABASE_URL": args.url, "LIFECYCLE_CAMPAIGNS_DIR": str(campaigns),
                "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"), "LIFECYCLE_SECRET_KEY": "bench-signing-key",
                "LIFECYCLE_PROVIDER": "postmark", "LIFECYCLE_POSTMARK_SERVER_TOKEN": "bench-token",
                "LIFECYCLE_POSTMARK_BASE_URL": url, "LIFECYCLE_DISPATCH_CONCURRENCY": str(args.concurrency),
                "LIFECYCLE_PROVIDER_BATCH_SIZE": str(args.request_size or ""),
            }
            app = App(Settings(env))
            if reused:
                print(f"store: {args.customers:,} customers and {args.due:,} planned emails kept from an earlier run")
            else:
                planned, first = plan_due(app)
                assert planned == args.due, f"{planned} planned, {args.due} expected"
                again, nothing_new = plan_due(app)  # what the evaluating worker of every round does
                assert again == 0, f"{again} planned again"
                print(f"evaluation: {first:.2f} s to plan the {planned:,} due emails, {nothing_new:.2f} s to find "
                      "nothing new at the same instant (each round's evaluating worker)")
            app.store.close()  # its pooled connections would count as the workers'
            print(f"stand-in latency {args.latency * 1000:g} ms per request, {args.request_size or 500} message(s) "
                  f"per request, concurrency {args.concurrency}; load average {load_average()}", flush=True)
            counts = [int(n) for n in args.workers.split(",")]
            rates: dict[int, list[float]] = {n: [] for n in counts}
            for number in range(1, args.rounds + 1):
                for workers in counts:
                    result = run_round(store, env, workers, args.due)
                    rates[workers].append(args.due / result.sending)
                    print(f"round {number}, {workers} worker(s): {rates[workers][-1]:6.0f} emails/s while sending "
                          f"({result.sending:5.1f} s); {args.due / result.whole:6.0f} emails/s from process start "
                          f"({result.whole:5.1f} s); peak connections {result.connections}; evaluated by "
                          f"{result.evaluated} of {workers}; sent per worker {result.sent_by}; "
                          f"load average {load_average()}", flush=True)
            base = statistics.median(rates[counts[0]])
            for workers in counts:
                rate = statistics.median(rates[workers])
                print(f"{workers} worker(s), median of {args.rounds}: {rate:6.0f} emails/s while sending, "
                      f"speed-up {rate / base:4.2f}x over {counts[0]}")
        finally:
            assert sink.stdin is not None
            sink.stdin.close()
            sink.wait(timeout=10)
    store.close()


def load_average() -> str:
    return " ".join(f"{n:.1f}" for n in os.getloadavg())


if __name__ == "__main__":
    main()
