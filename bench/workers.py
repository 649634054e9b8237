"""Emails per second with 1, 2 and 4 `lifecycle tick` workers at once on one PostgreSQL store, sending
through the real Postmark provider to a local Postmark stand-in that answers every request late.

    createdb -O lifecycle lifecycle_bench_workers
    python bench/workers.py --url postgresql+psycopg://lifecycle:lifecycle@127.0.0.1:5432/lifecycle_bench_workers \\
        [--customers 100000] [--due 10000] [--workers 1,2,4] [--latency 0.03] [--request-size 500]

The store is rebuilt: `--customers` customers with one order each, of which `--due` placed three
hours before the tick instant (a thank-you email due for each), the rest a year earlier. The due
set is planned once; each round puts every send back to `planned` and starts N real `lifecycle
tick` processes at once (LIFECYCLE_DISPATCH_CONCURRENCY requests in flight per worker, default
4). It times the sending (from the first claim until every send is recorded, sampled every 50
ms) and the whole round (from the processes' start until the last exits, start-up included).
One worker evaluates the campaign (finding nothing new) while the others send; all of them
send. Each round checks that every tick exited cleanly and every due send is recorded `sent`
(the exactly-once count at a stand-in is tests/test_workers.py's job). The stand-in
(bench/postmark_sink.py) runs in its own process; `--latency` is the seconds it waits before
answering each request, standing for the network and the provider's work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import func, insert, select, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.app import App  # noqa: E402  (the project root is on sys.path above)
from runner.campaign_state import finish_evaluation, take_evaluation  # noqa: E402
from runner.engine import plan, store_time_zones, window_for  # noqa: E402
from runner.models import Customer, Order, OrderLine, Product, Send, SendStatus  # noqa: E402
from runner.settings import Settings  # noqa: E402
from runner.store import Store  # noqa: E402

TICK_AT = dt.datetime(2026, 11, 23, 10, 0)  # naive UTC, as the store keeps it
CHUNK = 10_000


def build_store(store: Store, customers: int, due: int) -> None:
    """Customers 1..customers, one order and line each; the first `due` ordered three hours before TICK_AT."""
    store.drop()
    store.init()
    fresh, old = TICK_AT - dt.timedelta(hours=3), TICK_AT - dt.timedelta(days=365)
    with store.engine.begin() as connection:
        connection.execute(insert(Product), [{"sku": "MUG", "name": "Mug", "url": "https://shop.example/mug"}])
        for start in range(1, customers + 1, CHUNK):
            ids = range(start, min(start + CHUNK, customers + 1))
            placed = {n: fresh if n <= due else old for n in ids}
            connection.execute(insert(Customer), [
                {"id": n, "email": f"c{n}@example.com", "first_name": f"C{n}", "last_name": "",
                 "accepts_marketing": True, "created_at": old, "order_count": 1, "total_spent_cents": 1200,
                 "first_order_at": placed[n], "last_order_at": placed[n]} for n in ids])
            connection.execute(insert(Order), [
                {"id": n, "external_id": f"o{n}", "name": f"#{n}", "customer_id": n, "placed_at": placed[n],
                 "subtotal_cents": 1200, "total_cents": 1200, "currency": "USD"} for n in ids])
            connection.execute(insert(OrderLine), [
                {"order_id": n, "customer_id": n, "placed_at": placed[n], "sku": "MUG", "name": "Mug",
                 "quantity": 1, "unit_price_cents": 1200} for n in ids])
        connection.execute(text("ANALYZE"))


def plan_due(app: App) -> int:
    """Plan the thank-you emails due at TICK_AT, as one evaluation would; returns how many."""
    campaign = app.campaigns(TICK_AT)[0]
    shop = app.shop()
    with app.store.reading() as session:
        zones = store_time_zones(session)
    with app.store.session() as session:
        evaluation = take_evaluation(session, campaign.id, TICK_AT)
    counts = plan(app.store, campaign, window_for(campaign, TICK_AT, evaluation.state, shop.default_zone, zones))
    with app.store.session() as session:
        finish_evaluation(session, evaluation, TICK_AT, completed=True)
    return counts["due"]


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


def run_round(store: Store, env: dict[str, str], workers: int, due: int) -> tuple[float, float, int]:
    """For `workers` ticks at once: seconds from their start until the last exits, seconds from the
    first claim until every send was recorded, and the peak of open connections."""
    reset_ledger(store)
    store.engine.dispose()  # this script's own pooled connections closed: the peak counts the workers'
    command = [sys.executable, "-m", "runner.cli", "tick", "--at", TICK_AT.isoformat() + "+00:00", "--json"]
    with Watch(store) as watch:
        started = time.perf_counter()
        ticks = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(workers)]
        errors = [tick.communicate()[1] for tick in ticks]
        elapsed = time.perf_counter() - started
        time.sleep(0.1)  # one more sample
    assert watch.first_claim is not None and watch.all_sent is not None
    failed = [err for tick, err in zip(ticks, errors, strict=True) if tick.returncode != 0]
    assert not failed, failed[0][-2000:]
    with store.engine.connect() as connection:
        sent = connection.execute(select(func.count()).where(Send.status == SendStatus.SENT)).scalar_one()
    assert sent == due, f"{sent} of {due} sent"
    return elapsed, watch.all_sent - watch.first_claim, watch.peak


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
    args = parser.parse_args()

    store = Store(args.url)
    started = time.perf_counter()
    build_store(store, args.customers, args.due)
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
            planned = plan_due(app)
            app.store.close()  # its pooled connections would count as the workers'
            assert planned == args.due, f"{planned} planned, {args.due} expected"
            print(f"store: {args.customers:,} customers, {args.due:,} emails due; built and planned in "
                  f"{time.perf_counter() - started:.0f} s; stand-in latency {args.latency * 1000:g} ms per request, "
                  f"{args.request_size or 500} message(s) per request, concurrency {args.concurrency}")
            base = None
            for workers in (int(n) for n in args.workers.split(",")):
                whole, sending, connections = run_round(store, env, workers, args.due)
                rate = args.due / sending
                base = base or rate
                print(f"{workers} worker(s): {rate:6.0f} emails/s while sending ({sending:5.1f} s), speed-up "
                      f"{rate / base:4.2f}x; {args.due / whole:6.0f} emails/s from process start ({whole:5.1f} s); "
                      f"peak connections {connections}", flush=True)
        finally:
            assert sink.stdin is not None
            sink.stdin.close()
            sink.wait(timeout=10)
    store.close()


if __name__ == "__main__":
    main()
