"""Time one tick over a generated store and report peak memory and each trigger's query plan.

    python bench/generate.py --customers 100000 --db bench/store-100k.db
    python bench/tick.py --db bench/store-100k.db [--provider postmark]

The tick runs against a copy of the store (the original stays reusable) with the real file
provider writing to a temporary outbox, or with --provider postmark through the real Postmark
provider to a local Postmark stand-in (bench/postmark_sink.py, in a thread of this process).
Figures: seconds per phase, occurrences found, emails sent, peak resident memory, and whether each
trigger query searches an index or scans a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from postmark_sink import PostmarkSink  # noqa: E402  (this script's folder is on sys.path)

from runner.app import App  # noqa: E402
from runner.campaign_state import campaign_state  # noqa: E402
from runner.engine import find_occurrences, store_time_zones, window_for  # noqa: E402
from runner.providers.base import Provider  # noqa: E402
from runner.providers.file import FileProvider  # noqa: E402
from runner.providers.postmark import PostmarkProvider  # noqa: E402
from runner.recommend import refresh_affinity  # noqa: E402
from runner.settings import Settings  # noqa: E402

TOKEN = "bench-token"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a store made by bench/generate.py")
    parser.add_argument("--at", default="2026-11-23T10:00:00+00:00", help="tick instant (the generator's --now)")
    parser.add_argument("--campaigns", type=Path, default=ROOT / "campaigns")
    parser.add_argument("--provider", choices=["file", "postmark"], default="file",
                        help="file: .eml files in a temporary outbox; postmark: the Postmark API path to a local sink")
    args = parser.parse_args()
    now = dt.datetime.fromisoformat(args.at)

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "store.db"
        shutil.copy(args.db, db)
        settings = Settings({"LIFECYCLE_DATABASE_URL": f"sqlite:///{db}",
                             "LIFECYCLE_CAMPAIGNS_DIR": str(args.campaigns),
                             "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"),
                             "LIFECYCLE_SECRET_KEY": "bench", "LIFECYCLE_BATCH_SIZE": "500"})
        app = App(settings)
        campaigns = app.campaigns(now)
        naive = now.astimezone(dt.UTC).replace(tzinfo=None)
        with app.store.session() as session:
            customers = session.execute(text("select count(*) from customer")).scalar_one()
            orders = session.execute(text("select count(*) from orders")).scalar_one()
            lines = session.execute(text("select count(*) from order_line")).scalar_one()
        print(f"store: {customers:,} customers, {orders:,} orders, {lines:,} order lines "
              f"({args.db.stat().st_size / 2**20:,.0f} MiB)")
        print(f"tick at {now.isoformat()}; peak RSS before: {peak_mb():,.0f} MiB\n")

        with app.store.session() as session:
            started = time.perf_counter()
            refresh_affinity(session, naive)
            print(f"{'product affinity refresh (daily)':<34} {time.perf_counter() - started:8.2f} s")
            zones = store_time_zones(session)
            shop = app.shop()
            for campaign in campaigns:
                window = window_for(campaign, naive, campaign_state(session, campaign.id),
                                    shop.default_zone, zones, shop.currency)
                started = time.perf_counter()
                found = sum(1 for _ in find_occurrences(session, campaign, window))
                elapsed = time.perf_counter() - started
                plans = []
                for query in campaign.trigger.occurrences(window):
                    compiled = query.compile(app.store.engine, compile_kwargs={"literal_binds": True})
                    # exec_driver_sql: literal keys such as ":2026" must not be read as bind parameters
                    rows = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
                    plans += [r[-1] for r in rows if r[-1].startswith(("SCAN", "SEARCH"))]
                scans = [p for p in plans if p.startswith("SCAN")]
                print(f"evaluate {campaign.id:<25} {elapsed:8.2f} s  {found:>7,} occurrences  "
                      f"plan: {'; '.join(dict.fromkeys(plans)) or '-'}{'  <-- SCAN' if scans else ''}")

        outbox = Path(tmp) / "outbox"
        app = App(settings.with_values(OUTBOX_DIR=str(outbox)))
        with ExitStack() as stack:
            provider: Provider
            if args.provider == "postmark":
                sink = stack.enter_context(PostmarkSink(TOKEN, record=False))
                provider = stack.enter_context(PostmarkProvider(TOKEN, base_url=sink.url))
            else:
                provider = FileProvider(outbox)
            started = time.perf_counter()
            report = app.tick(now, campaigns, provider)
            elapsed = time.perf_counter() - started
            sent = sum(r["sent"] for r in report.rows())
            print(f"\n{'full tick (plan + render + send)':<34} {elapsed:8.2f} s  {sent:,} emails sent via "
                  f"{provider.name} ({sent / elapsed if elapsed else 0:,.0f}/s)")
            for row in report.rows():
                print(f"  {row['campaign']:<16} due={row['due']:<6} sent={row['sent']:<6} skipped={row['skipped']}")
            started = time.perf_counter()
            app.tick(now, campaigns, provider)
            print(f"{'second tick, same instant':<34} {time.perf_counter() - started:8.2f} s  (nothing new)")
        print(f"\npeak RSS: {peak_mb():,.0f} MiB")


if __name__ == "__main__":
    main()
