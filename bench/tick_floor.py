"""Time a whole tick (file provider) against a hand-written tick doing the same work on the same store.

    python bench/tick_floor.py --db bench/store-100k.db [--rounds 3] [--work DIR]

The store is copied once and made ready the way a shop's store is before a tick (upgraded, the
daily product-affinity table built); then each round copies it twice and runs, each in a process of
its own at the same instant (the generator's --now):

- runner: `App.tick` with the shipped enabled campaigns (without the shop's `_policy.yaml`) and the
  file provider writing `.eml` files;
- floor: the same campaigns by hand: each due set by the plain-sqlite3 floors of bench/floors.py,
  the ledger rows by one executemany per 1,000, then per campaign the dispatch of
  bench/floor_dispatch.py (claim, contexts from plain queries, plain jinja2, lean stdlib MIME,
  `.eml` files, recorded as sent).

A campaign whose trigger has no floor yet is left out of both sides (and named). The first round
checks both ticks equal: the same ledger rows (campaign, occurrence key, customer, due instant,
status, skip reason, variant), and the same `.eml` file for every sent row, parsed back (headers
but Message-ID, and decoded parts, as bench/render.py compares them). Prints, per phase, the
median over the rounds of wall and CPU seconds for each side and the ratio runner / floor, and each
side's peak resident memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import floors  # noqa: E402  (this script's folder is on sys.path)
from floor_dispatch import FloorDispatch, as_json, stamp  # noqa: E402
from render import PlainRenderer, content  # noqa: E402

from runner.app import App  # noqa: E402
from runner.campaign_state import campaign_state  # noqa: E402
from runner.campaigns import Campaign  # noqa: E402
from runner.engine import CHUNK, window_for  # noqa: E402
from runner.policies.evaluation import by_priority  # noqa: E402
from runner.providers.file import FileProvider  # noqa: E402
from runner.recommend import refresh_affinity  # noqa: E402
from runner.settings import Settings  # noqa: E402
from runner.triggers.base import Window  # noqa: E402

BATCH_SIZE = 500
MESSAGE_ID = re.compile(rb"^Message-ID:.*$", re.MULTILINE)
BOUNDARY = re.compile(rb"=_[0-9a-f]{32}")
PHASES = ("due set", "ledger", "claim + record", "contexts", "render", "MIME + write", "other", "tick")
LEDGER = ("campaign_id", "occurrence_key", "customer_id", "due_at", "status", "skip_reason", "variant")


def settings(db: Path, campaigns: Path, outbox: Path | None = None) -> Settings:
    values = {"LIFECYCLE_DATABASE_URL": f"sqlite:///{db}", "LIFECYCLE_CAMPAIGNS_DIR": str(campaigns),
              "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"), "LIFECYCLE_SECRET_KEY": "bench",
              "LIFECYCLE_BATCH_SIZE": str(BATCH_SIZE)}
    if outbox is not None:
        values["LIFECYCLE_OUTBOX_DIR"] = str(outbox)
    return Settings(values)


class Phases:
    """Wall and CPU seconds per phase name, added up over every `timer(name)` block."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    @contextmanager
    def timer(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - wall
            self.cpu[name] += time.process_time() - cpu

    def timed(self, name: str, work: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            with self.timer(name):
                return work(*args, **kwargs)
        return run

    def report(self, emails: int) -> dict[str, Any]:
        return {"wall": dict(self.wall), "cpu": dict(self.cpu), "emails": emails, "peak_mib": peak_mib()}


def peak_mib() -> float:
    """This process's peak resident memory. Linux's VmHWM, where there is one: getrusage's maxrss carries
    over exec from the parent that started this process, whose own peak may be the higher one."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- the two sides, each in its own process

def runner_tick(app: App, db: Path, campaigns: list[Campaign], now: dt.datetime, outbox: Path) -> dict[str, Any]:
    """`App.tick`, its phases timed by wrapping the functions it calls (a few microseconds per call)."""
    import runner.dispatch
    import runner.engine
    phases = Phases()
    runner.engine.record = phases.timed("ledger", runner.engine.record)  # type: ignore[assignment]
    runner.dispatch.build_contexts = phases.timed("contexts", runner.dispatch.build_contexts)  # type: ignore
    app.renderer.render = phases.timed("render", app.renderer.render)  # type: ignore[method-assign]
    app._evaluate = phases.timed("evaluate", app._evaluate)  # type: ignore[method-assign]
    app._dispatch = phases.timed("dispatch", app._dispatch)  # type: ignore[method-assign]
    provider = FileProvider(outbox)
    provider.send_batch = phases.timed("MIME + write", provider.send_batch)  # type: ignore[method-assign]
    with phases.timer("tick"):
        report = app.tick(now, campaigns, provider)
    for times in (phases.wall, phases.cpu):
        times["due set"] = times.pop("evaluate") - times["ledger"]
        times["claim + record"] = times.pop("dispatch") - times["contexts"] - times["render"] - times["MIME + write"]
        times["other"] = times["tick"] - sum(times[p] for p in PHASES[:-2])
    return phases.report(sum(row["sent"] for row in report.rows()))


def ledger_rows(conn: sqlite3.Connection, campaign: Campaign, due: set[tuple[str, int, str]],
                window: Window) -> list[tuple[Any, ...]]:
    """The due set as ledger rows, in the order `plan()` writes them (due instant, then key): skipped
    where the customer is suppressed, has no consent (marketing) or the occurrence expired."""
    now, stamp_now = window.now, stamp(window.now)
    blocked = dict(conn.execute(
        "SELECT c.id, CASE WHEN s.id IS NOT NULL THEN 'suppressed' ELSE 'no_consent' END "
        "FROM customer c LEFT JOIN suppression s ON s.email = c.email "
        "WHERE c.id IN (SELECT value FROM json_each(?)) AND (s.id IS NOT NULL OR ? AND NOT c.accepts_marketing)",
        (as_json({customer for _, customer, _ in due}), campaign.marketing)).fetchall())
    orders: dict[str, tuple[int | None, int | None]] = {}
    kind = campaign.trigger.type_name
    if kind == "replenishment":
        lines = {f"line:{line}": order for line, order in conn.execute(
            "SELECT id, order_id FROM order_line WHERE id IN (SELECT value FROM json_each(?))",
            (as_json(int(key[5:]) for key, _, _ in due),))}
        orders = {key: (order, int(key[5:])) for key, order in lines.items()}
    elif kind == "order":
        orders = {key: (int(key[6:]), None) for key, _, _ in due}
    elif kind == "milestone":  # the order that crossed it, placed `delay` before the due instant
        delay = campaign.trigger.params.delay
        placed = {(customer, stamp(dt.datetime.fromisoformat(at) - delay)): key for key, customer, at in due}
        for order, customer, at in conn.execute(
                "SELECT o.id, o.customer_id, o.placed_at FROM json_each(?) j JOIN orders o "
                "ON o.customer_id = j.value ->> 0 AND o.placed_at = j.value ->> 1",
                (json.dumps(list(placed)),)):
            orders[placed[customer, at]] = (order, None)
    expired = now - campaign.spec.expire_after
    rows = []
    for key, customer, at in sorted(due, key=lambda d: (dt.datetime.fromisoformat(d[2]), d[0])):
        due_at = dt.datetime.fromisoformat(at)
        skip = blocked.get(customer) or ("expired" if due_at <= expired else None)
        order, line = orders.get(key, (None, None))
        rows.append((campaign.id, key, customer, order, line, stamp(due_at), f"{kind}: due {at}",
                     campaign.variant_for(customer), "skipped" if skip else "planned", skip, 0,
                     None if skip else stamp(due_at), stamp_now, stamp_now))
    return rows


def floor_tick(app: App, db: Path, campaigns: list[Campaign], now: dt.datetime, outbox: Path) -> dict[str, Any]:
    """The hand-written tick: plan every campaign in priority order, then dispatch them in that order."""
    phases = Phases()
    shop = app.shop()
    renderer = PlainRenderer(ROOT / "templates", app.renderer.locale)
    renderer.files.auto_reload = False  # templates are not edited during a tick: no stat per email
    with phases.timer("tick"):
        conn = sqlite3.connect(db, isolation_level=None)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        with phases.timer("other"):
            found = {zone for (zone,) in conn.execute("SELECT DISTINCT time_zone FROM customer")} - {None, ""}
            zones = (*sorted(found), None)
        insert = (f"INSERT INTO send (campaign_id, occurrence_key, customer_id, order_id, order_line_id, due_at, "
                  f"reason, variant, status, skip_reason, attempts, next_attempt_at, created_at, updated_at) "
                  f"VALUES ({', '.join('?' * 14)}) ON CONFLICT (campaign_id, occurrence_key) DO NOTHING")
        for campaign in by_priority(campaigns):
            window = window_for(campaign, now, None, shop.default_zone, zones, shop.currency)
            with phases.timer("due set"):
                rows = ledger_rows(conn, campaign, floors.floor_due(conn, campaign, window), window)
            with phases.timer("ledger"):
                for start in range(0, len(rows), CHUNK):
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(insert, rows[start:start + CHUNK])
                    conn.execute("COMMIT")
            with phases.timer("other"):
                conn.execute("INSERT INTO campaign_state (campaign_id, first_seen_at, last_evaluated_at) "
                             "VALUES (?1, ?2, ?2) ON CONFLICT (campaign_id) DO UPDATE SET last_evaluated_at = ?2",
                             (campaign.id, stamp(now)))
        dispatch = FloorDispatch(conn, renderer, shop, app.default_from, outbox, now, BATCH_SIZE, phases.timer)
        emails = sum(dispatch.campaign(campaign) for campaign in by_priority(campaigns))
        conn.close()
    return phases.report(emails)


def run_side(args: argparse.Namespace) -> None:
    """One side's tick in this process; its figures as one JSON line on stdout."""
    now = dt.datetime.fromisoformat(args.at)
    app = App(settings(args.db, args.campaigns, args.outbox))
    campaigns = [c for c in app.campaigns(now) if c.id in args.only.split(",")]
    tick = runner_tick if args.side == "runner" else floor_tick
    print(json.dumps(tick(app, args.db, campaigns, now, args.outbox)))


# ---------------------------------------------------------------- preparing, checking, comparing

def prepare(source: Path, work: Path, now: dt.datetime) -> tuple[Path, Path]:
    """The store ready for a tick (upgraded, affinity built) and a folder of the shipped campaigns
    without the shop's policy file; made once per work folder."""
    ready, campaigns = work / f"ready-{source.stem}.db", work / "campaigns"
    if not campaigns.exists():
        campaigns.mkdir(parents=True)
        for path in (ROOT / "campaigns").glob("*.y*ml"):
            if not path.name.startswith("_"):
                shutil.copy(path, campaigns / path.name)
    if ready.exists() and ready.stat().st_mtime > source.stat().st_mtime:
        return ready, campaigns
    started = time.perf_counter()
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(ready) as dst:
        src.backup(dst)
    app = App(settings(ready, campaigns))
    app.store.init()
    with app.store.session() as session:
        refresh_affinity(session, now)
    with sqlite3.connect(ready) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"store made ready in {time.perf_counter() - started:.1f} s (upgrade, affinity)")
    return ready, campaigns


def with_floors(ready: Path, campaigns: list[Campaign], now: dt.datetime) -> tuple[list[Campaign], list[str]]:
    """The campaigns the floor can do, and why each other one is left out."""
    kept, left_out = [], []
    with sqlite3.connect(f"file:{ready}?mode=ro", uri=True) as conn:
        for campaign in campaigns:
            empty = Window(start=now, now=now, default_zone=ZoneInfo("UTC"), time_zones=(None,))
            try:
                floors.floor_due(conn, campaign, empty)
            except KeyError:
                left_out.append(f"{campaign.id} (no floor for trigger {campaign.trigger.type_name} yet)")
                continue
            if campaign.spec.steps or (campaign.coupon is not None and campaign.coupon.pool is not None):
                left_out.append(f"{campaign.id} (journey steps or a coupon pool: not in the floor's dispatch)")
                continue
            kept.append(campaign)
    return kept, left_out


def message(raw: bytes, send_id: int) -> bytes:
    """A digest of the message's bytes with its Message-ID and MIME boundary (random on both sides) blanked, and its
    X-Send-ID checked to be the row's own id and left out: ids follow the order rows were inserted in,
    which may differ between triggers of several queries."""
    if f"\r\nX-Send-ID: {send_id}\r\n".encode() not in raw:
        sys.exit(f"the message of send {send_id} carries another X-Send-ID")
    raw = raw.replace(f"\r\nX-Send-ID: {send_id}\r\n".encode(), b"\r\n")
    return hashlib.sha256(BOUNDARY.sub(b"=_", MESSAGE_ID.sub(b"Message-ID:", raw))).digest()


def outcome(db: Path) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Each ledger row's fields compared, and for a sent row its message's digest and its file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(f"SELECT {', '.join(LEDGER)}, id, provider_message_id FROM send").fetchall()
    return {(r[0], r[1]): (*r[2:-2], message(Path(r[-1]).read_bytes(), r[-2]) if r[-1] else None, r[-1])
            for r in rows}


def same(runner: tuple[Any, ...] | None, floor: tuple[Any, ...] | None) -> bool:
    """Equal rows, their messages equal byte for byte or, failing that, as a mail client reads them
    (headers and decoded parts, bench/render.py's `content`)."""
    if runner is None or floor is None or runner[:-2] != floor[:-2]:
        return False
    if runner[-2] == floor[-2]:
        return True
    if None in (runner[-1], floor[-1]):
        return False
    return bool(content(Path(runner[-1]).read_bytes()) == content(Path(floor[-1]).read_bytes()))


def check_equal(work: Path) -> int:
    runner, floor = outcome(work / "runner.db"), outcome(work / "floor.db")
    differ = [key for key in runner.keys() | floor.keys() if not same(runner.get(key), floor.get(key))]
    if differ:
        key = sorted(differ)[0]
        mine, theirs = runner.get(key) or (), floor.get(key) or ()
        fields = [*LEDGER[2:], "message digest", "file"]
        shown = [f"  {name}: runner {str(a)[:300]}\n  {' ' * len(name)}  floor  {str(b)[:300]}"
                 for name, a, b in zip(fields, mine, theirs, strict=False) if a != b] or [f"  {mine} / {theirs}"]
        sys.exit(f"the floor's tick differs from the runner's in {len(differ):,} of {len(runner):,} ledger rows, "
                 f"e.g. {key}:\n" + "\n".join(shown))
    return len(runner)


def side(name: str, ready: Path, campaigns_dir: Path, work: Path, at: str, only: list[str]) -> dict[str, Any]:
    db, outbox = work / f"{name}.db", work / f"{name}-outbox"
    shutil.rmtree(outbox, ignore_errors=True)
    shutil.copy(ready, db)
    done = subprocess.run([sys.executable, __file__, "--side", name, "--db", str(db), "--outbox", str(outbox),
                           "--campaigns", str(campaigns_dir), "--at", at, "--only", ",".join(only)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a store made by bench/generate.py")
    parser.add_argument("--at", default="2026-11-23T10:00:00", help="the tick's instant (the generator's --now, UTC)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, help="a folder for the copies (default: a temporary one)")
    parser.add_argument("--side", choices=["runner", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--outbox", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--campaigns", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return run_side(args)
    now = dt.datetime.fromisoformat(args.at)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ready, campaigns_dir = prepare(args.db, work, now)
        app = App(settings(ready, campaigns_dir))
        with app.store.reading() as session:
            assert all(campaign_state(session, c.id) is None for c in app.campaigns(now)), "a fresh store expected"
        campaigns, left_out = with_floors(ready, app.campaigns(now), now)
        print(f"{args.db.name}, tick at {now} with {', '.join(c.id for c in campaigns)}")
        for reason in left_out:
            print(f"  left out of both sides: {reason}")
        only = [c.id for c in campaigns]
        results: dict[str, list[dict[str, Any]]] = {"runner": [], "floor": []}
        for round_ in range(args.rounds):
            for name in ("runner", "floor") if round_ % 2 == 0 else ("floor", "runner"):
                results[name].append(side(name, ready, campaigns_dir, work, args.at, only))
                (work / "results.json").write_text(json.dumps(results))  # kept should a later round not finish
            if round_ == 0:
                rows = check_equal(work)
                print(f"  checked equal: {rows:,} ledger rows, {results['runner'][0]['emails']:,} .eml files")
        report(results, args.rounds)


def report(results: dict[str, list[dict[str, Any]]], rounds: int) -> None:
    emails = results["runner"][0]["emails"]
    print(f"\nmedian of {rounds} rounds, seconds          runner wall / CPU    floor wall / CPU   "
          f"runner/floor wall   CPU")
    for phase in PHASES:
        wall = {n: statistics.median(r["wall"].get(phase, 0.0) for r in runs) for n, runs in results.items()}
        cpu = {n: statistics.median(r["cpu"].get(phase, 0.0) for r in runs) for n, runs in results.items()}
        ratio = (f"{wall['runner'] / wall['floor'] if wall['floor'] else float('nan'):13.2f}"
                 f"{cpu['runner'] / cpu['floor'] if cpu['floor'] else float('nan'):10.2f}")
        print(f"  {'whole tick' if phase == 'tick' else phase:<32} {wall['runner']:8.2f} / {cpu['runner']:6.2f}  "
              f"{wall['floor']:8.2f} / {cpu['floor']:6.2f}  {ratio}")
    for name, runs in results.items():
        tick = statistics.median(r["wall"]["tick"] for r in runs)
        print(f"  {name}: {emails:,} emails, {emails / tick:,.0f}/s wall; peak memory "
              f"{max(r['peak_mib'] for r in runs):,.0f} MiB")


if __name__ == "__main__":
    main()
