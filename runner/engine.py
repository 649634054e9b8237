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
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Insert, Subquery, and_, select, true
from sqlmodel import Session

from .audience import audience_sql
from .campaigns import Campaign
from .journeys.steps import audience, describe, later_steps
from .models import CampaignState, Customer, Send, SendStatus, SkipReason, Suppression, blocked_reason
from .segments import SegmentRules
from .sql import dialect_insert, read_in_chunks
from .store import Store
from .triggers.base import Window

CHUNK = 1000


@dataclass(frozen=True)
class Occurrence:
    """One (campaign, occurrence) found due, with what should happen to it."""

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
    if not window.as_of:
        for query in trigger.occurrences(window):
            yield query.subquery("occ"), true()
        return
    for query in trigger.candidates(window):
        occ = query.subquery("occ")
        yield occ, trigger.still_due(occ.c, window.now)


def find_occurrences(session: Session, campaign: Campaign, window: Window,
                     customer_id: int | None = None) -> Iterator[Occurrence]:
    """Occurrences due in the window that the ledger does not hold yet, for customers in the audience
    (or only for `customer_id`); for a journey, the trigger's occurrences are its first step, and each
    later step is found from the ledger rows of the step before (runner/journeys/steps.py)."""
    first_step = 1 if campaign.spec.steps else None
    step_of = f"step 1 of {len(campaign.spec.steps)}: " if first_step else ""
    for occ, due in due_selects(campaign, window):
        full = (
            select(occ, Customer.email, Customer.accepts_marketing, Suppression.reason.label("suppressed"))
            .join(Customer, Customer.id == occ.c.customer_id)
            .outerjoin(Suppression, Suppression.email == Customer.email)
            .outerjoin(Send, and_(Send.campaign_id == campaign.id, Send.occurrence_key == occ.c.occurrence_key))
            .where(Send.id.is_(None), due, audience_sql(audience(campaign, first_step), window))
            .where(true() if customer_id is None else occ.c.customer_id == customer_id)
            .order_by(occ.c.due_at, occ.c.occurrence_key)
        )
        for row in read_in_chunks(session, full, CHUNK).mappings():
            skip = skip_reason(campaign, row["suppressed"] is not None, row["accepts_marketing"], row["due_at"],
                               window.now)
            yield Occurrence(
                campaign_id=campaign.id, occurrence_key=row["occurrence_key"], customer_id=row["customer_id"],
                email=row["email"], order_id=row["order_id"], order_line_id=row["order_line_id"],
                due_at=row["due_at"], reason=step_of + campaign.trigger.describe(row, window.now), skip_reason=skip,
                variant=campaign.variant_for(row["customer_id"]), step=first_step,
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


def ledger_insert(bind: Connection) -> Insert:
    """The ledger's INSERT that does nothing for an occurrence the ledger holds already (another tick or
    worker planned it), on the table itself: executed with a list of rows it is one executemany, without
    the ORM's per-row bookkeeping."""
    return dialect_insert(bind, Send.__table__).on_conflict_do_nothing(index_elements=["campaign_id",
                                                                                         "occurrence_key"])


def record(connection: Connection, occurrences: list[Occurrence], stamp: dt.datetime) -> None:
    """Insert the occurrences as ledger rows (planned, deferred or skipped), in the caller's transaction."""
    if not occurrences:
        return
    planned = SendStatus.PLANNED
    connection.execute(ledger_insert(connection), [{
        "campaign_id": o.campaign_id, "occurrence_key": o.occurrence_key, "customer_id": o.customer_id,
        "order_id": o.order_id, "order_line_id": o.order_line_id, "due_at": o.due_at, "reason": o.reason,
        "variant": o.variant, "step": o.step,
        "status": o.status.value, "skip_reason": o.skip_reason.value if o.skip_reason else None,
        "attempts": 0, "next_attempt_at": (o.deferred_until or o.due_at) if o.status is planned else None,
        "created_at": stamp, "updated_at": stamp,
    } for o in occurrences])
