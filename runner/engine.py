"""Evaluating campaigns: which occurrences are due at `now`, and recording them in the ledger.

`find_occurrences` is a pure read of the store; `plan` writes what it finds as ledger rows,
planned or skipped, reading on one snapshot and writing in short transactions. The ledger's
unique (campaign, occurrence key) makes a second plan of the same occurrence a no-op, however
often or concurrently ticks run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Dialect, Select, Subquery, and_, select, true
from sqlmodel import Session

from .audience import audience_sql
from .campaigns import Campaign
from .errors import StoreError
from .journeys.steps import audience, describe, later_steps
from .models import CampaignState, Customer, Send, SendStatus, SkipReason, Suppression, blocked_reason
from .segments import SegmentRules
from .sql import read_in_chunks, sqlite_stamp
from .store import Store
from .triggers.base import Window

CHUNK = 1000


@dataclass
class Occurrence:
    """One (campaign, occurrence) found due, with what should happen to it. Not frozen, though nothing
    changes one in place (`dataclasses.replace` makes another): a frozen dataclass costs about four
    times as much to build, and an evaluation builds one per due occurrence."""

    campaign_id: str
    occurrence_key: str
    customer_id: int
    email: str
    order_id: int | None
    order_line_id: int | None
    due_at: dt.datetime
    reason: str
    skip_reason: SkipReason | None  # None: to be sent when due
    deferred_until: dt.datetime | None = None  # held back for skip_reason until then, not skipped
    variant: str | None = None  # the message variant (campaigns with variants), recorded when planned
    step: int | None = None  # a journey's step (runner/journeys/), recorded when planned

    @property
    def status(self) -> SendStatus:
        return SendStatus.PLANNED if self.skip_reason is None or self.deferred_until else SendStatus.SKIPPED

    @property
    def outcome(self) -> str:
        """How a tick counts it: due, deferred:<reason> or skipped:<reason>."""
        if self.skip_reason is None:
            return "due"
        return f"{'deferred' if self.deferred_until else 'skipped'}:{self.skip_reason.value}"


#: applies sending policies to a chunk of one campaign's occurrences, reading on the given session
#: (runner/policies/)
Policies = Callable[[Session, Campaign, list[Occurrence]], list[Occurrence]]


def store_time_zones(session: Session | Connection) -> tuple[str | None, ...]:
    """The distinct customer time zones (an index scan), None standing for the shop default."""
    zones = set(session.execute(select(Customer.time_zone).distinct()).scalars())
    return tuple(sorted(zones - {None, ""}, key=str)) + (None,)


def window_for(campaign: Campaign, now: dt.datetime, state: CampaignState | None,
               default_zone: ZoneInfo, time_zones: tuple[str | None, ...], currency: str = "USD", *,
               as_of: bool = False, segment_rules: SegmentRules | None = None) -> Window:
    """Occurrences due since the campaign was last evaluated, and at least within expire_after.

    A new campaign (no state yet) looks back only expire_after: it does not dig up history.
    After downtime, the window reaches back to the last completed evaluation, so that
    everything that fell due meanwhile is either sent or recorded as expired. A campaign seen
    before but never evaluated to the end (its first tick died before planning) reaches back
    to expire_after before it was first seen, as that first tick would have. `as_of`: the store
    holds orders placed after `now` (runner/asof.py `holds_orders_after`). `segment_rules`: the shop's
    segment thresholds, for `segment:` in the audience.
    """
    start = now - campaign.spec.expire_after
    if state is not None:
        since = (state.last_evaluated_at if state.last_evaluated_at is not None
                 else state.first_seen_at - campaign.spec.expire_after)
        start = min(start, since)
    return Window(start=start, now=now, default_zone=default_zone, time_zones=time_zones, currency=currency,
                  as_of=as_of, segment_rules=segment_rules or SegmentRules())


def skip_reason(campaign: Campaign, suppressed: bool, accepts_marketing: bool, due_at: dt.datetime,
                now: dt.datetime) -> SkipReason | None:
    """Why an occurrence found at `now` is recorded as skipped instead of planned, or None."""
    reason = blocked_reason(suppressed, accepts_marketing, campaign.marketing)
    if reason is None and due_at <= now - campaign.spec.expire_after:
        reason = SkipReason.EXPIRED
    return reason


def due_selects(campaign: Campaign, window: Window) -> Iterator[tuple[Subquery, ColumnElement[bool]]]:
    """The trigger's selects as subqueries `occ`, each with the condition that its row is due at
    window.now: the trigger's own occurrences where the store holds nothing later, its candidates
    still due then otherwise."""
    trigger = campaign.trigger
    if window.start >= window.now:  # no instant is due in an empty window: nothing to ask the store
        return
    if not window.as_of:
        for query in trigger.occurrences(window):
            yield query.subquery("occ"), true()
        return
    for query in trigger.candidates(window):
        occ = query.subquery("occ")
        yield occ, trigger.still_due(occ.c, window.now)


def first_step_selects(campaign: Campaign, window: Window, customer_id: int | None = None) -> Iterator[Select[Any]]:
    """The selects of the occurrences due in the window that the ledger does not hold yet, for customers
    in the audience (or only for `customer_id`), with the customer's address, consent and suppression:
    what an evaluation runs for the trigger (a journey's first step), and what `bench/tick.py` explains."""
    first_step = 1 if campaign.spec.steps else None
    for occ, due in due_selects(campaign, window):
        yield (
            select(occ, Customer.email, Customer.accepts_marketing, Suppression.reason.label("suppressed"))
            .join(Customer, Customer.id == occ.c.customer_id)
            .outerjoin(Suppression, Suppression.email == Customer.email)
            .outerjoin(Send, and_(Send.campaign_id == campaign.id, Send.occurrence_key == occ.c.occurrence_key))
            .where(Send.id.is_(None), due, audience_sql(audience(campaign, first_step), window))
            .where(true() if customer_id is None else occ.c.customer_id == customer_id)
            .order_by(occ.c.due_at, occ.c.occurrence_key)
        )


def find_occurrences(session: Session, campaign: Campaign, window: Window,
                     customer_id: int | None = None) -> Iterator[Occurrence]:
    """Occurrences due in the window that the ledger does not hold yet, for customers in the audience
    (or only for `customer_id`); for a journey, the trigger's occurrences are its first step, and each
    later step is found from the ledger rows of the step before (runner/journeys/steps.py)."""
    first_step = 1 if campaign.spec.steps else None
    step_of = f"step 1 of {len(campaign.spec.steps)}: " if first_step else ""
    # per row, only what differs from row to row: the rest is looked up once
    campaign_id, describe_row, variant_for = campaign.id, campaign.trigger.describe, campaign.variant_for
    now, varies = window.now, bool(campaign.variant_names)
    for full in first_step_selects(campaign, window, customer_id):
        for row in read_in_chunks(session, full, CHUNK).mappings():
            due_at, customer = row["due_at"], row["customer_id"]
            skip = skip_reason(campaign, row["suppressed"] is not None, row["accepts_marketing"], due_at, now)
            yield Occurrence(
                campaign_id, row["occurrence_key"], customer, row["email"], row["order_id"], row["order_line_id"],
                due_at, step_of + describe_row(row, now), skip, None, variant_for(customer) if varies else None,
                first_step,
            )
    for step, query in later_steps(campaign, window, customer_id):
        for row in read_in_chunks(session, query, CHUNK).mappings():
            exit_reason = row["exit_reason"]
            yield Occurrence(
                campaign_id=campaign.id, occurrence_key=row["occurrence_key"], customer_id=row["customer_id"],
                email=row["email"], order_id=row["order_id"], order_line_id=row["order_line_id"],
                due_at=row["due_at"], reason=describe(campaign, step, row, window.now), step=step,
                skip_reason=SkipReason(exit_reason) if exit_reason else skip_reason(
                    campaign, row["suppressed"] is not None, row["accepts_marketing"], row["due_at"], window.now),
            )


def plan(store: Store, campaign: Campaign, window: Window, policies: Policies | None = None) -> Counter[str]:
    """Record every occurrence due in the window as planned (maybe deferred) or skipped, after
    `policies` had their say (reading on the same snapshot); returns counts by outcome.

    The occurrences are read on one snapshot and written CHUNK rows per transaction, so that no
    SQLite writer holds the store for a whole evaluation. A crash part-way leaves some chunks in
    the ledger and the campaign's evaluation mark where it was: the next evaluation finds the
    rest. The mark itself is moved by the caller once plan returns (campaign_state).
    """
    counts: Counter[str] = Counter()
    with store.reading() as reading, store.session() as writing:
        occurrences = find_occurrences(reading, campaign, window)
        while chunk := list(islice(occurrences, CHUNK)):
            if policies:
                chunk = policies(reading, campaign, chunk)
            record(writing.connection(), chunk, window.now)
            writing.commit()
            counts.update(o.outcome for o in chunk)
    return counts


# The ledger columns `record` writes (the others keep their defaults: NULL, or the row's id).
LEDGER_COLUMNS = ("campaign_id", "occurrence_key", "customer_id", "order_id", "order_line_id", "due_at", "reason",
                  "variant", "step", "status", "skip_reason", "attempts", "next_attempt_at", "created_at",
                  "updated_at")
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # positional, as the drivers take them


def ledger_insert_sql(dialect: Dialect) -> str:
    """The ledger's INSERT, doing nothing for an occurrence the ledger holds already (another tick or
    worker planned it): the same text on SQLite and PostgreSQL but for the placeholders."""
    mark = _PLACEHOLDERS.get(dialect.paramstyle)
    if mark is None:
        raise StoreError(f"the store's driver takes {dialect.paramstyle} parameters, which the ledger cannot write",
                         "use a sqlite:/// or postgresql+psycopg:// LIFECYCLE_DATABASE_URL")
    return (f"INSERT INTO send ({', '.join(LEDGER_COLUMNS)}) VALUES ({', '.join([mark] * len(LEDGER_COLUMNS))}) "
            "ON CONFLICT (campaign_id, occurrence_key) DO NOTHING")


def record(connection: Connection, occurrences: list[Occurrence], stamp: dt.datetime) -> None:
    """Insert the occurrences as ledger rows (planned, deferred or skipped), in the caller's transaction.

    One `executemany` of plain tuples straight to the driver: SQLAlchemy's per-row parameter processing
    cost as much as the insert itself. Timestamps are passed as the column type would pass them (on
    SQLite the text the store keeps, `sqlite_stamp`; PostgreSQL's driver takes datetimes).
    """
    if not occurrences:
        return
    when = sqlite_stamp if connection.dialect.name == "sqlite" else _as_is
    planned, now = SendStatus.PLANNED, when(stamp)
    rows = []
    for o in occurrences:
        status = o.status
        rows.append((o.campaign_id, o.occurrence_key, o.customer_id, o.order_id, o.order_line_id, when(o.due_at),
                     o.reason, o.variant, o.step, status.value, o.skip_reason.value if o.skip_reason else None, 0,
                     when(o.deferred_until or o.due_at) if status is planned else None, now, now))
    connection.exec_driver_sql(ledger_insert_sql(connection.dialect), rows)


def _as_is(moment: dt.datetime) -> dt.datetime:
    return moment
