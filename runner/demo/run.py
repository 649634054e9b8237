"""`lifecycle demo`: a synthetic shop in the configured store, one tick, and a summary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from .. import settings as s
from ..app import App
from ..errors import StoreError
from ..models import Meta
from ..recommend import refresh_affinity
from ..results import TickReport
from ..segments.thresholds import refresh_vip_threshold
from ..store import utc_naive
from .checkouts import plant_checkouts
from .shop import generate_shop, holds_shop_data

DEMO_MARK = "demo_seed"
#: shows a step: (label, total or None, unit or None) -> a context whose value takes the count done
Progress = Callable[[str, int | None, str | None], AbstractContextManager[Callable[[int], None]]]


def prepare_demo_store(app: App, seed: int) -> None:
    """Create the store, or empty it when it holds an earlier demo; refuse one with real data.

    The demo mark is written before any demo row, so a demo interrupted half-way is still
    recognised (and replaced) by the next `lifecycle demo`.
    """
    app.store.init()
    with app.store.engine.connect() as conn:
        has_data = holds_shop_data(conn)
    with app.store.session() as session:
        is_demo = session.get(Meta, DEMO_MARK) is not None
    if has_data and not is_demo:
        raise StoreError(f"{app.store.display_url} already holds shop data that is not demo data",
                         "point LIFECYCLE_DATABASE_URL at another file for the demo, e.g. sqlite:///demo.db")
    if has_data:
        app.store.drop()
        app.store.init()
    with app.store.session() as session:
        session.merge(Meta(key=DEMO_MARK, value=str(seed)))
        session.commit()


@contextmanager
def _quiet(label: str, total: int | None = None, unit: str | None = None) -> Iterator[Callable[[int], None]]:
    yield lambda done: None


def run_demo(app: App, *, now: dt.datetime, customers: int, seed: int, echo: Callable[[str], Any],
             print_report: Callable[[TickReport], None], progress: Progress = _quiet) -> TickReport:
    """`progress(label, total, unit)` shows each long step (the CLI's shows it on a terminal only)."""
    campaigns = app.campaigns(now)  # refuse an invalid campaign set before touching the store
    prepare_demo_store(app, seed)
    with progress("Generating the demo shop", customers, "customers") as advance:
        summary = generate_shop(app.store, customers=customers, now=now, seed=seed, progress=advance)
    checkouts = plant_checkouts(app.store, now=now, customers=customers)
    with progress("Computing recommendations", None, None), app.store.session() as session:
        refresh_affinity(session, utc_naive(now))
        refresh_vip_threshold(session, utc_naive(now), app.segment_rules)  # vip-milestone's `segment: vip`
    echo(f"Demo shop in {app.store.display_url}: {summary.customers:,} customers, {summary.orders:,} orders, "
         f"{summary.lines:,} order lines, {summary.products} products, {summary.suppressed} suppressed addresses, "
         f"{checkouts:,} abandoned checkouts")
    with app.provider() as provider, progress("Running one tick", None, None):
        report = app.tick(now, campaigns, provider)
    echo(f"\nOne tick at {now:%Y-%m-%d %H:%M} UTC with the {provider.name} provider:\n")
    print_report(report)
    if provider.name == "file":
        echo(f"\nRendered emails (.eml) are in {app.settings[s.OUTBOX_DIR]}/<campaign>/; "
             "`lifecycle preview --at ...` renders HTML you can browse.")
    return report
