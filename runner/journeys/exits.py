"""A journey's exits: the SQL that says whether one holds, checked when a step is planned and again at dispatch.

A later step planned and then held back (by quiet hours, a sending policy or a provider's retry) may
wait hours or days before it is claimed; an order or a click in between ends the journey all the same.
So dispatch asks `journey_exits` about each claimed batch, in one query per step number in it, and
skips what an exit stopped with the same reason and text as when the step is planned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, null, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from ..asof import live_at
from ..campaigns import Campaign
from ..models import Event, EventType, Order, Send, SkipReason


def journey_key(row: Any, step: int) -> ColumnElement[str]:
    """The journey's key (its first step's), from the key of `row`, a ledger row of step `step`."""
    if step == 1:
        return row.occurrence_key  # type: ignore[no-any-return]
    suffix = len(f"#{step}")
    return func.substr(row.occurrence_key, 1, func.length(row.occurrence_key) - suffix)


def exit_reason(campaign: Campaign, previous: Any, began: Any, now: dt.datetime) -> ColumnElement[Any]:
    """The exit that stops the step after `previous` (a SkipReason value), or NULL: an order live at
    `now` placed since the journey began; a click on the previous step's email recorded by `now`."""
    whens = []
    if "ordered" in campaign.spec.exit:  # ix_orders_customer_placed
        whens.append((exists(select(Order.id).where(Order.customer_id == previous.customer_id,
                                                    Order.placed_at > began, live_at(Order, now))),
                      literal(SkipReason.EXIT_ORDERED.value)))
    if "clicked" in campaign.spec.exit:  # ix_event_send_type
        whens.append((exists(select(Event.id).where(Event.send_id == previous.id, Event.type == EventType.CLICKED,
                                                    Event.occurred_at <= now)),
                      literal(SkipReason.EXIT_CLICKED.value)))
    return case(*whens, else_=null()) if whens else null()


def ended(campaign: Campaign, step: int, reason: str) -> str:
    """The ledger's reason for a step an exit stopped."""
    why = {SkipReason.EXIT_ORDERED.value: "the customer ordered since the journey began",
           SkipReason.EXIT_CLICKED.value: f"the customer clicked step {step - 1}'s email"}[reason]
    return f"journey ended before step {step} of {len(campaign.spec.steps)}: {why}"


def journey_exits(session: Session, campaign: Campaign, sends: Sequence[Send],
                  now: dt.datetime) -> dict[int, SkipReason]:
    """The exit that holds at `now` for each of `sends` (claimed ledger rows) of a journey's later steps,
    by send id; each such send's `reason` is set to say so. Nothing for a campaign without exits."""
    if not campaign.spec.exit:
        return {}
    by_step: dict[int, list[int]] = {}
    for send in sends:
        if send.step is not None and send.step > 1:
            by_step.setdefault(send.step, []).append(send.id)  # type: ignore[arg-type]
    found: dict[int, SkipReason] = {}
    for step, ids in sorted(by_step.items()):
        current, previous, first = aliased(Send), aliased(Send), aliased(Send)
        journey = journey_key(current, step)
        previous_key = journey if step == 2 else journey + literal(f"#{step - 1}")
        reason = exit_reason(campaign, previous, first.due_at, now)
        rows = session.execute(  # each join on the ledger's unique (campaign, occurrence key)
            select(current.id, reason)
            .join(previous, and_(previous.campaign_id == campaign.id, previous.occurrence_key == previous_key))
            .join(first, and_(first.campaign_id == campaign.id, first.occurrence_key == journey))
            .where(current.id.in_(ids), reason.is_not(None)))
        found.update((send_id, SkipReason(value)) for send_id, value in rows)
    for send in sends:
        if send.id in found:
            send.reason = ended(campaign, send.step or 0, found[send.id].value)  # type: ignore[index]
    return found
