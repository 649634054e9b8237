"""A generated store on PostgreSQL: copied there table by table with COPY, then every shipped
campaign's evaluation timed on it and on the SQLite file it came from, in the same run.

    python bench/generate.py --customers 1000000 --db bench/store-1m.db --now 2026-11-23T10:00:00Z
    createdb -O lifecycle lifecycle_bench_pg
    python bench/postgres.py --db bench/store-1m.db \\
        --url postgresql+psycopg://lifecycle:lifecycle@127.0.0.1:5432/lifecycle_bench_pg [--reuse] [--rounds 3]

The SQLite store is only read (it must be at this program's schema: `lifecycle init` on a copy
upgrades an older one). The PostgreSQL database is emptied, created at the same schema
(`Store.init`), filled with every table's rows through COPY, its sequences moved past the copied
ids, then VACUUM ANALYZE; `--reuse` skips the copy when the database already holds as many
customers, orders and order lines as the file. Then, for each campaign the shop ships (those off by
default turned on, as bench/tick.py does; no sending policy), one evaluation at `--at` as a tick's
first one finds it (`find_occurrences`, every occurrence built), on both stores, `--rounds` times:
both must find the same (occurrence key, customer) set; prints the medians and PostgreSQL / SQLite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import inspect, text
from sqlmodel import SQLModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tick import campaign_folder  # noqa: E402  (this script's folder is on sys.path)

from runner.app import App  # noqa: E402
from runner.campaign_state import campaign_state  # noqa: E402
from runner.campaigns import Campaign  # noqa: E402
from runner.engine import find_occurrences, store_time_zones, window_for  # noqa: E402
from runner.policies.evaluation import by_priority  # noqa: E402
from runner.settings import Settings  # noqa: E402
from runner.store import Store  # noqa: E402

SIZES = ("customer", "orders", "order_line")  # what --reuse compares
Found = set[tuple[str, int]]


def counts(read: object, tables: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(read(f"SELECT count(*) FROM {table}") for table in tables)  # type: ignore[operator]


def copy_store(source: Path, store: Store) -> dict[str, int]:
    """Every table of `source` that the schema knows into `store` (emptied first); rows per table."""
    store.drop()
    store.init()
    lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    in_file = {row[0] for row in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    copied: dict[str, int] = {}
    with store.engine.begin() as connection:
        # init() wrote a few rows of its own (the signing key): the file's take their place
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name in in_file:
                connection.execute(text(f"DELETE FROM {table.name}"))
        pg_columns = {t: {c["name"] for c in inspect(connection).get_columns(t)}
                      for t in inspect(connection).get_table_names()}
        cursor = connection.connection.driver_connection.cursor()  # psycopg's own: COPY is not SQLAlchemy's
        for table in SQLModel.metadata.sorted_tables:  # parents before children
            if table.name not in in_file:
                continue
            file_columns = [row[1] for row in lite.execute(f"PRAGMA table_info({table.name})")]
            columns = [c for c in file_columns if c in pg_columns[table.name]]
            names = ", ".join(f'"{c}"' for c in columns)
            rows = 0
            # Text COPY parses SQLite's values as PostgreSQL reads them: '2026-11-23 10:00:00.000000'
            # as a timestamp, 0 and 1 as booleans, JSON text as JSON.
            with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                for row in lite.execute(f'SELECT {names} FROM "{table.name}"'):
                    copy.write_row(row)
                    rows += 1
            copied[table.name] = rows
            if "id" in columns and table.c.id.autoincrement is not False and rows:
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                                        f"(SELECT max(id) FROM \"{table.name}\"))"))
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    return copied


def evaluate(name: str, app: App, campaigns: list[Campaign], now: dt.datetime) -> dict[str, tuple[float, Found]]:
    """Seconds and the set found, per campaign, for one evaluation each in priority order."""
    shop = app.shop()
    out: dict[str, tuple[float, Found]] = {}
    with app.store.reading() as session:
        zones = store_time_zones(session)
        for campaign in by_priority(campaigns):
            window = window_for(campaign, now, campaign_state(session, campaign.id), shop.default_zone, zones,
                                shop.currency)
            started = time.perf_counter()
            found = {(o.occurrence_key, o.customer_id) for o in find_occurrences(session, campaign, window)}
            out[campaign.id] = (time.perf_counter() - started, found)
            print(f"  {name:<8} {campaign.id:<38} {out[campaign.id][0]:7.2f} s {len(found):>9,}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a store made by bench/generate.py (only read)")
    parser.add_argument("--url", required=True, help="a PostgreSQL database of its own (it is emptied)")
    parser.add_argument("--at", default="2026-11-23T10:00:00",
                        help="the evaluation instant (the generator's --now, UTC)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep the PostgreSQL copy if it holds the file's sizes")
    args = parser.parse_args()
    now = dt.datetime.fromisoformat(args.at)

    lite = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    sizes = counts(lambda sql: lite.execute(sql).fetchone()[0], SIZES)
    lite.close()
    store = Store(args.url)
    try:
        with store.engine.connect() as connection:
            held = counts(lambda sql: connection.execute(text(sql)).scalar_one(), SIZES)
    except Exception:  # no tables yet
        held = ()
    if args.reuse and held == sizes:
        print(f"PostgreSQL copy kept: {sizes[0]:,} customers, {sizes[1]:,} orders, {sizes[2]:,} order lines")
    else:
        started = time.perf_counter()
        copied = copy_store(args.db, store)
        print(f"copied in {time.perf_counter() - started:.0f} s (COPY, then VACUUM ANALYZE): "
              + ", ".join(f"{table} {rows:,}" for table, rows in copied.items() if rows))
    store.close()

    with tempfile.TemporaryDirectory() as tmp:
        folder = campaign_folder(ROOT / "campaigns", None, Path(tmp) / "campaigns")
        base = {"LIFECYCLE_CAMPAIGNS_DIR": str(folder), "LIFECYCLE_TEMPLATES_DIR": str(ROOT / "templates"),
                "LIFECYCLE_SECRET_KEY": "bench"}
        sqlite_app = App(Settings(base | {"LIFECYCLE_DATABASE_URL": f"sqlite:///{args.db}"}))
        sqlite_app.store = Store(f"sqlite:///{args.db}", read_only=True)
        postgres_app = App(Settings(base | {"LIFECYCLE_DATABASE_URL": args.url}))
        campaigns = postgres_app.campaigns(now)
        times: dict[tuple[str, str], list[float]] = {}
        found: dict[tuple[str, str], Found] = {}
        for _ in range(args.rounds):
            for name, app in (("sqlite", sqlite_app), ("postgres", postgres_app)):
                for campaign_id, (seconds, occurrences) in evaluate(name, app, campaigns, now).items():
                    times.setdefault((name, campaign_id), []).append(seconds)
                    found[name, campaign_id] = occurrences
    print(f"evaluation at {args.at}, median of {args.rounds} (s)     SQLite   PostgreSQL   ratio   occurrences")
    totals = {"sqlite": 0.0, "postgres": 0.0}
    for campaign in by_priority(campaigns):
        assert found["sqlite", campaign.id] == found["postgres", campaign.id], f"{campaign.id}: the sets differ"
        lite_s, pg_s = (statistics.median(times[name, campaign.id]) for name in ("sqlite", "postgres"))
        totals["sqlite"] += lite_s
        totals["postgres"] += pg_s
        print(f"  {campaign.id:<38} {lite_s:7.2f}   {pg_s:10.2f}   {pg_s / lite_s:5.2f}   "
              f"{len(found['postgres', campaign.id]):>11,}")
    print(f"  {'all campaigns':<38} {totals['sqlite']:7.2f}   {totals['postgres']:10.2f}   "
          f"{totals['postgres'] / totals['sqlite']:5.2f}")


if __name__ == "__main__":
    main()
