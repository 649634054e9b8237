"""Hand-written floors: the least plain-sqlite3 SQL that finds the same due set as a campaign's evaluation.

`floor_due(conn, campaign, window)` returns the set of (occurrence key, customer id, due instant as the
store writes it) that `runner.engine.find_occurrences` finds for the campaign in the window: the trigger's
occurrences, for customers in the audience, that the ledger does not hold yet (suppressed customers and
those without consent are found too: the runner records them as skipped). bench/evaluate.py checks both
sets equal before it compares their times. A trigger type without a floor raises KeyError.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable

from runner.campaigns import Campaign
from runner.triggers.base import Window
from runner.triggers.replenishment import ReplenishmentTrigger, like_pattern

Found = set[tuple[str, int, str]]


def stamp(moment: dt.datetime) -> str:
    """A naive-UTC instant as the store writes it (text with six fractional digits)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def replenishment_offsets(trigger: ReplenishmentTrigger) -> set[int]:
    """The distinct spans, in seconds, from an order line's placed_at to its due instant."""
    p = trigger.params
    return {int((cycle * quantity - p.lead).total_seconds()) for cycle in p.cycles.values()
            for quantity in range(1, p.max_quantity + 1)}


def _replenishment_sql(trigger: ReplenishmentTrigger) -> str:
    """One branch per pattern and quantity: lines of that pattern (and no earlier one) and quantity,
    placed in the slice that falls due in the window, due at placed_at + a constant."""
    p = trigger.params
    lead = int(p.lead.total_seconds())
    branches, earlier = [], []
    for glob, cycle in p.cycles.items():
        pattern = f"l.sku LIKE '{like_pattern(glob)}' ESCAPE '\\'"
        not_earlier = "".join(f" AND NOT {e}" for e in earlier)
        for quantity in range(1, p.max_quantity + 1):
            offset = int(cycle.total_seconds()) * quantity - lead
            if quantity == 1:
                held = "l.quantity <= 1"
            elif quantity == p.max_quantity:
                held = f"l.quantity >= {quantity}"
            else:
                held = f"l.quantity = {quantity}"
            branches.append(
                f"SELECT l.id, l.customer_id, datetime(l.placed_at, '{offset} seconds') AS due_at, l.sku, "
                f"l.placed_at FROM order_line l "
                f"WHERE l.placed_at > :low_{offset} AND l.placed_at <= :high_{offset} "
                f"AND {pattern}{not_earlier} AND {held}")
        earlier.append(pattern)
    return f"""
        WITH due AS ({' UNION ALL '.join(branches)})
        SELECT 'line:' || due.id, due.customer_id, due.due_at
        FROM due JOIN order_line l ON l.id = due.id JOIN orders o ON o.id = l.order_id
        JOIN customer c ON c.id = due.customer_id
        LEFT JOIN send ON send.campaign_id = :campaign AND send.occurrence_key = 'line:' || due.id
        WHERE o.cancelled_at IS NULL AND send.id IS NULL
          AND due.due_at > :start_text AND due.due_at <= :now_text
          AND NOT EXISTS (SELECT 1 FROM order_line later JOIN orders lo ON lo.id = later.order_id
                          WHERE later.customer_id = due.customer_id AND later.sku = due.sku
                            AND later.placed_at > due.placed_at AND later.placed_at <= :now
                            AND lo.cancelled_at IS NULL)
    """


def replenishment_floor(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    """The placed_at bounds of each branch are computed here, as text the way the store keeps them."""
    trigger = campaign.trigger
    assert isinstance(trigger, ReplenishmentTrigger)
    if window.start >= window.now:
        return set()
    bounds = {}
    for offset in replenishment_offsets(trigger):
        bounds[f"low_{offset}"] = stamp(window.start - dt.timedelta(seconds=offset))
        bounds[f"high_{offset}"] = stamp(window.now - dt.timedelta(seconds=offset))
    rows = conn.execute(_replenishment_sql(trigger), {
        "now": stamp(window.now), "campaign": campaign.id, "start_text": stamp(window.start),
        "now_text": stamp(window.now), **bounds}).fetchall()
    return {(key, customer, due) for key, customer, due in rows}


FLOORS: dict[str, Callable[[sqlite3.Connection, Campaign, Window], Found]] = {
    "replenishment": replenishment_floor,
}


def floor_due(conn: sqlite3.Connection, campaign: Campaign, window: Window) -> Found:
    """The campaign's due set in the window, found by its trigger type's floor (KeyError without one)."""
    return FLOORS[campaign.trigger.type_name](conn, campaign, window)


def iso(stored: str) -> str:
    """A stored instant as `str(datetime)` writes it: no fractional part when it is zero."""
    return stored[:-7] if stored.endswith(".000000") else stored
