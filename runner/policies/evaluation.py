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
from zoneinfo import ZoneInfo

from sqlalchemy import case, select, true, union_all
from sqlmodel import Session

from ..campaigns import Campaign
from ..engine import Occurrence
from ..models import Customer, Send, SendStatus
from ..timezones import zone_or_default
from .decide import Mailed, decide

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
        profiles = self._profiles(session, customers) if policy.send_window or policy.sunset else {}
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

    def _profiles(self, session: Session, customers: set[int]) -> dict[int, tuple[ZoneInfo, dt.datetime]]:
        """Each customer's time zone and last sign of engagement (joining, or their last order)."""
        rows = session.execute(select(Customer.id, Customer.time_zone, Customer.created_at,
                                           Customer.last_order_at).where(Customer.id.in_(customers)))
        return {cid: (zone_or_default(zone, self.default_zone), max(filter(None, (created, last_order))))
                for cid, zone, created, last_order in rows}

    def _history(self, session: Session, customers: set[int], spacing: dt.timedelta,
                 uncounted: frozenset[str]) -> dict[int, list[Mailed]]:
        """Marketing mail in the ledger from `spacing` before now on (later planned mail included),
        leaving out what this evaluation planned itself (kept in memory instead).

        Two index searches on (customer, status, sent_at): mail sent since then, and mail being or
        to be sent; a customer's older history is never read.
        """
        since = self.now - spacing
        moment = _mail_moment()
        columns = (Send.customer_id, Send.campaign_id, Send.occurrence_key)
        counted = Send.campaign_id.not_in(uncounted) if uncounted else true()
        query = union_all(
            select(*columns, Send.sent_at.label("at"))
            .where(Send.customer_id.in_(customers), Send.status == SendStatus.SENT, Send.sent_at > since, counted),
            select(*columns, moment.label("at"))
            .where(Send.customer_id.in_(customers), Send.status.in_(PENDING), moment > since, counted),
        )
        found: dict[int, list[Mailed]] = defaultdict(list)
        for cid, campaign_id, key, at in session.execute(query):
            if (campaign_id, key) not in self._planned_keys:
                found[cid].append(Mailed(at))
        return found
