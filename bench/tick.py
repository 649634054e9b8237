"""Time one tick over a generated store and report peak memory and each trigger's query plan.

    python bench/generate.py --customers 100000 --db bench/store-100k.db
    python bench/tick.py --db bench/store-100k.db [--provider postmark] [--policy campaigns/_policy.yaml]

The tick runs against a copy of the store (the original stays reusable) with the real file
provider writing to a temporary outbox, or with --provider postmark through the real Postmark
provider to a local Postmark stand-in (bench/postmark_sink.py, in a thread of this process).
Every campaign file of the folder is evaluated, those shipped disabled included (marked so).
Figures: seconds per phase, occurrences found, emails sent, peak resident memory, and the query plan
of each evaluation query as a tick runs it (the trigger's occurrences joined with the customer, the
suppression list, the ledger and the audience; a journey's later steps too), with any SCAN of one
of BIG_TABLES flagged: a query that reads a whole big table grows with the store, not the window.
--markdown prints the evaluations again as the table docs/performance.md holds.

The campaigns run without the shop's `_policy.yaml` unless --policy names one. With it, the copy
of the store first gets a marketing history to count (HISTORY_SENDS emails to every consenting
customer over the last HISTORY_DAYS days, with opens and clicks for the sunset to read), and each
campaign's evaluation is timed twice: the trigger query alone, and the same with every policy
decided (in priority order, as a tick does).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from postmark_sink import PostmarkSink  # noqa: E402  (this script's folder is on sys.path)

from runner.app import App  # noqa: E402
from runner.campaign_state import campaign_state  # noqa: E402
from runner.campaigns import Campaign  # noqa: E402
from runner.engine import find_occurrences, first_step_selects, store_time_zones, window_for  # noqa: E402
from runner.journeys.steps import later_steps  # noqa: E402
from runner.policies.evaluation import PolicyEvaluation, by_priority  # noqa: E402
from runner.policies.loader import POLICY_FILE  # noqa: E402
from runner.providers.base import Provider  # noqa: E402
from runner.providers.file import FileProvider  # noqa: E402
from runner.providers.postmark import PostmarkProvider  # noqa: E402
from runner.recommend import refresh_affinity  # noqa: E402
from runner.segments.thresholds import refresh_vip_threshold  # noqa: E402
from runner.settings import Settings  # noqa: E402
from runner.triggers.base import Window  # noqa: E402

TOKEN = "bench-token"
HISTORY_SENDS = 8
HISTORY_DAYS = 28
CHUNK = 1000
ROUNDS = 5
# tables that grow with the shop: a SCAN of one of them (not a SEARCH of an index range) is flagged
BIG_TABLES = ("customer", "orders", "order_line", "send", "event", "checkout", "checkout_line", "reorder_forecast",
              "consent_change", "nps_response", "suppression")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def campaign_folder(source: Path, policy: Path | None, into: Path) -> set[str]:
    """The campaign files of `source` (not its `_` files) copied `into`, those off by default turned on so
    that every shipped trigger is measured, with `policy` as the shop's policy file. Returns the file
    stems (the campaign ids of the shipped files) that were off."""
    into.mkdir()
    disabled = set()
    for path in source.glob("*.y*ml"):
        if not path.name.startswith("_"):
            content = path.read_text()
            if "\nenabled: false\n" in content:
                disabled.add(path.stem)
            (into / path.name).write_text(content.replace("\nenabled: false\n", "\nenabled: true\n"))
    if policy:
        shutil.copy(policy, into / POLICY_FILE)
    return disabled


def query_plan(session: Session, store_engine: Engine, campaign: Campaign, window: Window) -> list[str]:
    """The SCAN and SEARCH lines of SQLite's plan of every query a tick runs to evaluate the campaign."""
    queries = [*first_step_selects(campaign, window), *(query for _, query in later_steps(campaign, window))]
    plans = []
    for query in queries:
        compiled = query.compile(store_engine, compile_kwargs={"literal_binds": True})
        # exec_driver_sql: literal keys such as ":2026" must not be read as bind parameters
        rows = session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
        plans += [r[-1] for r in rows if r[-1].startswith(("SCAN", "SEARCH"))]
    return list(dict.fromkeys(plans))


def big_table_scans(plans: list[str]) -> list[str]:
    """The plan lines that read a whole big table (or a whole index of one): `SCAN orders`, `SCAN send_1 ...`."""
    scanned = (re.match(r"SCAN (\w+)", line) for line in plans)
    return [line for line, found in zip(plans, scanned, strict=True)
            if found and re.sub(r"_\d+$", "", found.group(1)) in BIG_TABLES]


def seed_history(session: Session, now: dt.datetime) -> tuple[int, int]:
    """HISTORY_SENDS sent marketing emails per consenting customer, spread over the last HISTORY_DAYS,
    with provider events an hour later: an open for every second one, a click for every tenth."""
    session.execute(text("""
        WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < :sends)
        INSERT INTO send (campaign_id, occurrence_key, customer_id, due_at, reason, status, attempts,
                          created_at, updated_at, sent_at)
        SELECT 'history-' || n, 'history:' || id, id, at, 'bench history', 'sent', 1, at, at, at
        FROM (SELECT c.id, k.n, datetime(:now, '-' || ((c.id * 7919 + k.n * 104729) % (:days * 86400)) || ' seconds')
                                AS at
              FROM customer c CROSS JOIN k WHERE c.accepts_marketing)
    """), {"sends": HISTORY_SENDS, "days": HISTORY_DAYS, "now": now.isoformat(sep=" ")})
    session.execute(text("""
        INSERT INTO event (provider, provider_event_id, type, send_id, customer_id, email, occurred_at, received_at)
        SELECT 'bench', kind || '-' || s.id, kind, s.id, s.customer_id, c.email,
               datetime(s.sent_at, '+1 hour'), datetime(s.sent_at, '+1 hour')
        FROM send s JOIN customer c ON c.id = s.customer_id
        JOIN (SELECT 'opened' AS kind, 2 AS every UNION ALL SELECT 'clicked', 10) ON s.id % every = 0
        WHERE s.reason = 'bench history'
    """))
    session.commit()
    sends = session.execute(text("select count(*) from send where reason = 'bench history'")).scalar_one()
    return sends, session.execute(text("select count(*) from event where provider = 'bench'")).scalar_one()


def timed_evaluation(session: Session, campaign: Campaign, window: Window,
                     policies: PolicyEvaluation | None) -> tuple[float, float, int, Counter[str]]:
    """Wall and CPU seconds to find (and, with `policies`, decide) every occurrence; how many; outcomes."""
    wall, cpu = time.perf_counter(), time.process_time()
    found = find_occurrences(session, campaign, window)
    outcomes: Counter[str] = Counter()
    while chunk := list(islice(found, CHUNK)):
        outcomes.update(o.outcome for o in (policies.apply(session, campaign, chunk) if policies else chunk))
    return time.perf_counter() - wall, time.process_time() - cpu, sum(outcomes.values()), outcomes


def compare_policies(session: Session, campaigns: list[Campaign], windows: dict[str, Window], now: dt.datetime,
                     default_zone: ZoneInfo) -> None:
    """Each campaign's evaluation without and then with its policies, ROUNDS times; the best of each.

    CPU time is printed beside wall time: on a machine shared with other work it is the fairer
    comparison (the evaluation is CPU-bound once the store is in the page cache)."""
    wall: dict[tuple[str, bool], float] = {}
    cpu: dict[tuple[str, bool], float] = {}
    outcomes: dict[str, Counter[str]] = {}
    for _ in range(ROUNDS):
        policies = PolicyEvaluation(now, default_zone)
        for campaign in by_priority(campaigns):  # each campaign without then with, on the same warm cache
            for key, applied in (((campaign.id, False), None), ((campaign.id, True), policies)):
                elapsed, used, _, counted = timed_evaluation(session, campaign, windows[campaign.id], applied)
                wall[key], cpu[key] = min(wall.get(key, elapsed), elapsed), min(cpu.get(key, used), used)
            outcomes[campaign.id] = counted
    print(f"\nevaluation, best of {ROUNDS} (wall / CPU s)     without      with policies   outcomes with policies")
    for campaign in by_priority(campaigns):
        shown = ", ".join(f"{k}={v:,}" for k, v in sorted(outcomes[campaign.id].items()))
        print(f"  {campaign.id:<32} {wall[campaign.id, False]:6.2f} / {cpu[campaign.id, False]:5.2f}  "
              f"{wall[campaign.id, True]:6.2f} / {cpu[campaign.id, True]:5.2f}   {shown}")
    totals = {(kind, flag): sum(t for (_, w), t in times.items() if w is flag)
              for kind, times in (("wall", wall), ("cpu", cpu)) for flag in (False, True)}
    ratio = {kind: totals[kind, True] / totals[kind, False] for kind in ("wall", "cpu")}
    print(f"  {'all campaigns':<32} {totals['wall', False]:6.2f} / {totals['cpu', False]:5.2f}  "
          f"{totals['wall', True]:6.2f} / {totals['cpu', True]:5.2f}   ratio with/without: "
          f"wall {ratio['wall']:.2f}, CPU {ratio['cpu']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a store made by bench/generate.py")
    parser.add_argument("--at", default="2026-11-23T10:00:00+00:00", help="tick instant (the generator's --now)")
    parser.add_argument("--campaigns", type=Path, default=ROOT / "campaigns")
    parser.add_argument("--provider", choices=["file", "postmark"], default="file",
                        help="file: .eml files in a temporary outbox; postmark: the Postmark API path to a local sink")
    parser.add_argument("--policy", type=Path, help="a policy file (e.g. campaigns/_policy.yaml) to evaluate with")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="stop after timing the evaluations (no affinity refresh, no tick)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="evaluate every campaign this many times and print the median (the first warms the cache)")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the evaluations as a Markdown table (campaign, time, occurrences, plan)")
    args = parser.parse_args()
    now = dt.datetime.fromisoformat(args.at)

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "store.db"
        shutil.copy(args.db, db)
        campaigns_dir = Path(tmp) / "campaigns"
        disabled = campaign_folder(args.campaigns, args.policy, campaigns_dir)
        settings = Settings({"LIFECYCLE_DATABASE_URL": f"sqlite:///{db}",
                             "LIFECYCLE_CAMPAIGNS_DIR": str(campaigns_dir),
                             "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"),
                             "LIFECYCLE_SECRET_KEY": "bench", "LIFECYCLE_BATCH_SIZE": "500"})
        app = App(settings)
        print(app.store.init())  # a store generated by an older release is upgraded (on the copy)
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
            if not args.evaluate_only:  # what the emails recommend: no part of an evaluation
                started = time.perf_counter()
                refresh_affinity(session, naive)
                print(f"{'product affinity refresh (daily)':<34} {time.perf_counter() - started:8.2f} s")
            ranked = []
            for _ in range(args.rounds):  # one ranked scan of every buying customer: daily, never on a tick
                started = time.perf_counter()
                refresh_vip_threshold(session, naive, app.segment_rules)
                ranked.append(time.perf_counter() - started)
            print(f"{'VIP threshold refresh (daily)':<34} {statistics.median(ranked):8.2f} s  "
                  f"(median of {args.rounds})")
            if args.policy:
                started = time.perf_counter()
                sends, events = seed_history(session, naive)
                print(f"{'marketing history for the cap':<34} {time.perf_counter() - started:8.2f} s  "
                      f"{sends:,} sent emails over the last {HISTORY_DAYS} days, {events:,} opens and clicks")
            zones = store_time_zones(session)
            shop = app.shop()
            windows = {c.id: window_for(c, naive, campaign_state(session, c.id), shop.default_zone, zones,
                                        shop.currency) for c in campaigns}
            walls: dict[str, list[float]] = {c.id: [] for c in campaigns}
            cpus: dict[str, list[float]] = {c.id: [] for c in campaigns}
            found: dict[str, int] = {}
            for _ in range(args.rounds):  # round-robin, so that every campaign sees the cache alike
                for campaign in campaigns:
                    wall, cpu, found[campaign.id], _ = timed_evaluation(session, campaign, windows[campaign.id], None)
                    walls[campaign.id].append(wall)
                    cpus[campaign.id].append(cpu)
            print(f"evaluation of each campaign, median of {args.rounds} round(s): wall / CPU seconds")
            rows = []
            for campaign in campaigns:
                plans = query_plan(session, app.store.engine, campaign, windows[campaign.id])
                scans = big_table_scans(plans)
                name = campaign.id + (" (shipped disabled)" if campaign.id in disabled else "")
                wall, cpu = statistics.median(walls[campaign.id]), statistics.median(cpus[campaign.id])
                rows.append((name, wall, cpu, found[campaign.id], plans, scans))
                print(f"evaluate {name:<38} {wall:6.2f} / {cpu:5.2f} s  {found[campaign.id]:>7,} occurrences  "
                      f"plan: {'; '.join(plans) or '-'}{'  <-- SCAN of a big table' if scans else ''}")
            print(f"{'evaluate all':<47} {sum(r[1] for r in rows):6.2f} / {sum(r[2] for r in rows):5.2f} s  "
                  f"{sum(r[3] for r in rows):>7,} occurrences; {sum(bool(r[5]) for r in rows)} campaign(s) scan a "
                  "big table")
            if args.markdown:  # the lines every campaign's plan has (the ledger, the customer...) said once
                common = set.intersection(*(set(r[4]) for r in rows)) if rows else set()
                print("\n| campaign | wall / CPU | occurrences | plan |\n| --- | ---: | ---: | --- |")
                for name, wall, cpu, count, plans, scans in rows:
                    shown = "; ".join(f"`{p}`" for p in plans if p not in common)
                    flag = " **(scans a big table)**" if scans else ""
                    print(f"| {name} | {wall:.2f} s / {cpu:.2f} s | {count:,} | {shown}{flag} |")
                print(f"\nand in every campaign's plan: {'; '.join(f'`{p}`' for p in sorted(common))}")
            if args.policy:
                compare_policies(session, campaigns, windows, naive, shop.default_zone)
        if args.evaluate_only:
            print(f"\npeak RSS: {peak_mb():,.0f} MiB")
            return

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
                print(f"  {row['campaign']:<16} due={row['due']:<6} sent={row['sent']:<6} deferred={row['deferred']} "
                      f"skipped={row['skipped']}")
            started = time.perf_counter()
            app.tick(now, campaigns, provider)
            print(f"{'second tick, same instant':<34} {time.perf_counter() - started:8.2f} s  (nothing new)")
        print(f"\npeak RSS: {peak_mb():,.0f} MiB")


if __name__ == "__main__":
    main()
