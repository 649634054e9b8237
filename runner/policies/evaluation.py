"""Applying policies across one evaluation: the campaigns of a tick (or preview) in priority order.

Facts are loaded per chunk of occurrences with one query each (the chunk's customers' zones and
last engagement; their marketing mail around now), never per customer. Mail this evaluation has
itself planned is kept in memory, so a preview that writes nothing decides exactly as a tick that
writes as it goes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, null, select, true, union_all
from sqlmodel import Session

from ..campaigns import Campaign
from ..engine import Occurrence
from ..models import Customer, Event, EventType, Send, SendStatus
from ..sql import in_ids
from ..timezones import zone_or_default
from .decide import Mailed, decide
from .spec import Policy

#: mail that counts toward caps and gaps besides what was sent: going out, or going to
PENDING = (SendStatus.SENDING, SendStatus.PLANNED)


def by_priority(campaigns: Iterable[Campaign]) -> list[Campaign]:
    """The order in which an evaluation plans campaigns: highest priority first, then by id."""
    return sorted(campaigns, key=lambda c: (-c.policy.priority, c.id))


def _mail_moment():  # type: ignore[no-untyped-def]
    """When a pending ledger row's email goes out: the claim for one being sent; for a planned one
    its next attempt, or the planning instant when that is already past."""
    return case(
        (Send.status == SendStatus.SENDING, Send.updated_at),
        (Send.next_attempt_at > Send.updated_at, Send.next_attempt_at),
        else_=Send.updated_at,
    )


def _later(maybe: Any, known: Any) -> Any:
    """The later of two instants in SQL, where `maybe` may be NULL and `known` is not."""
    return case((maybe > known, maybe), else_=known)


class PolicyEvaluation:
    """Applies each campaign's policy to its occurrences, campaign after campaign, at one instant.

    Call `apply` for the campaigns in `by_priority` order: mail accepted for a higher-priority
    campaign is in place when a lower one is decided, so it takes the slot (reason `priority`).
    """

    def __init__(self, now: dt.datetime, default_zone: ZoneInfo) -> None:
        self.now = now
        self.default_zone = default_zone
        self._planned: dict[int, list[tuple[str, dt.datetime]]] = defaultdict(list)  # customer -> (campaign, at)
        self._planned_keys: set[tuple[str, str]] = set()

    def apply(self, session: Session, campaign: Campaign, chunk: list[Occurrence]) -> list[Occurrence]:
        """The chunk with each occurrence's verdict: unchanged, deferred, or skipped with a reason
        (facts read on `session`, the snapshot the occurrences were found on)."""
        if not campaign.marketing:  # transactional mail: no policy applies, and it counts toward none
            return chunk
        policy = campaign.policy
        open_ = [o for o in chunk if o.skip_reason is None]
        if not policy.restricts:
            for occ in open_:
                self._remember(campaign, occ, self.now)
            return chunk
        customers = {o.customer_id for o in open_}
        profiles = self._profiles(session, customers, policy) if policy.send_window or policy.sunset else {}
        history = self._history(session, customers, policy.spacing, policy.uncounted) if policy.spacing else {}
        decided = {}
        for occ in open_:
            zone, engaged_at = profiles.get(occ.customer_id, (self.default_zone, self.now))
            mailed = history.get(occ.customer_id, []) + [
                Mailed(at, rival=other != campaign.id) for other, at in self._planned.get(occ.customer_id, [])]
            verdict = decide(policy, now=self.now, due_at=occ.due_at, expire_after=campaign.spec.expire_after,
                             zone=zone, mailed=mailed, engaged_at=engaged_at)
            if verdict.at is not None:
                self._remember(campaign, occ, verdict.at)
            if verdict.reason is not None:
                decided[occ.occurrence_key] = replace(
                    occ, skip_reason=verdict.reason, deferred_until=verdict.at)
        return [decided.get(o.occurrence_key, o) for o in chunk]

    def _remember(self, campaign: Campaign, occ: Occurrence, at: dt.datetime) -> None:
        self._planned[occ.customer_id].append((campaign.id, at))
        self._planned_keys.add((campaign.id, occ.occurrence_key))

    def _profiles(self, session: Session, customers: set[int],
                  policy: Policy) -> dict[int, tuple[ZoneInfo, dt.datetime]]:
        """Each customer's time zone and last sign of engagement: joining, their last order and, for
        a sunset, their last click (and open, when the policy counts opens) from provider events."""
        engaged = _later(Customer.last_order_at, Customer.created_at)  # a customer always has created_at
        if policy.sunset:
            engaging = [EventType.CLICKED, *([EventType.OPENED] if policy.sunset.opens else [])]
            engaged = _later(select(func.max(Event.occurred_at))  # ix_event_customer_type_at, per customer
                             .where(Event.customer_id == Customer.id, Event.type.in_(engaging))
                             .scalar_subquery(), engaged)
        rows = session.execute(select(Customer.id, Customer.time_zone, engaged)
                               .where(in_ids(Customer.id, customers))).all()
        return {cid: (zone_or_default(zone, self.default_zone), engaged_at) for cid, zone, engaged_at in rows}

    def _history(self, session: Session, customers: set[int], spacing: dt.timedelta,
                 uncounted: frozenset[str]) -> dict[int, list[Mailed]]:
        """Marketing mail in the ledger from `spacing` before now on (later planned mail included),
        leaving out what this evaluation planned itself (kept in memory instead).

        Two searches of the index on (customer, status, sent_at, campaign): mail sent since then,
        read from the index alone, and mail being or to be sent; older history is never read.
        Mail this evaluation planned is still pending while it plans, so only the pending rows
        need their keys to be told apart.
        """
        since = self.now - spacing
        moment = _mail_moment()
        counted = Send.campaign_id.not_in(uncounted) if uncounted else true()
        query = union_all(
            select(Send.customer_id, Send.sent_at.label("at"), null().label("campaign_id"), null().label("key"))
            .where(in_ids(Send.customer_id, customers), Send.status == SendStatus.SENT, Send.sent_at > since,
                   counted),
            select(Send.customer_id, moment.label("at"), Send.campaign_id, Send.occurrence_key)
            .where(in_ids(Send.customer_id, customers), Send.status.in_(PENDING), moment > since, counted),
        )
        found: dict[int, list[Mailed]] = defaultdict(list)
        for cid, at, campaign_id, key in session.execute(query).all():
            if (campaign_id, key) not in self._planned_keys:
                found[cid].append(Mailed(at))
        return found
