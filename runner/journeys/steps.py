"""Finding a journey's later steps: one query per step, from the ledger rows of the step before it.

The first step of a journey is the trigger's occurrence, found like any campaign's. Step N+1 of a
journey is due once step N is settled (sent, skipped or failed): `after` from that instant
(`from: previous`) or from the instant the journey began, the first step's due instant
(`from: trigger`), and never before step N settled. Its key is the journey's key (the first step's)
with `#<N+1>`, so the ledger's unique (campaign, occurrence key) holds each step at most once.

An exit the campaign declares is checked when a step falls due: the step is then recorded as skipped
with the exit as its reason, and since no step follows a step skipped for an exit, the journey ends
there; dispatch checks the exits again for a step planned earlier and held back (`exits`). A step
skipped for any other reason (no consent, suppressed, expired, a sending policy) or failed does not
end it: the next step counts its wait from that instant and is judged on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, or_, select, true
from sqlalchemy.orm import aliased

from ..audience import audience_sql
from ..campaigns import Campaign, Condition
from ..durations import format_duration
from ..models import JOURNEY_EXITS, Customer, Send, SendStatus, Suppression
from ..sql import plus_seconds
from ..triggers.base import Window, relative
from .exits import ended, exit_reason, journey_key

#: the ledger rows a step's query reads: the step before, the journey's first step, and the step itself.
#: Made once: an alias of a table builds its columns anew on first use, which costs more than the query.
_PREVIOUS, _FIRST, _FOLLOWING = aliased(Send), aliased(Send), aliased(Send)

#: the ledger states after which a step is settled and the next one may follow
SETTLED = (SendStatus.SENT, SendStatus.SKIPPED, SendStatus.FAILED)


def step_key(journey_key: str, step: int) -> str:
    """A step's occurrence key: the journey's own (the trigger's key) for the first, `<key>#<N>` after."""
    return journey_key if step == 1 else f"{journey_key}#{step}"


def audience(campaign: Campaign, step: int | None) -> list[Condition]:
    """The conditions a step's customer must meet: the campaign's and the step's own."""
    own = campaign.spec.steps[step - 1].audience if step and campaign.spec.steps else []
    return [*campaign.spec.audience, *own]


def step_select(campaign: Campaign, step: int, window: Window, customer_id: int | None = None) -> Select[Any]:
    """The occurrences of step `step` (2 or later) due at window.now and not in the ledger yet: one row
    per settled row of the step before, with its customer's address facts and any exit that stops it.

    Only rows of the step before settled since `after` before the earliest due instant it could
    still find are read (the index on campaign, step and updated_at): older ones fell due before."""
    spec = campaign.spec.steps[step - 1]
    previous, first, following = _PREVIOUS, _FIRST, _FOLLOWING
    journey = journey_key(previous, step - 1)
    settled = func.coalesce(previous.sent_at, previous.updated_at)
    began = (previous if step == 2 else first).due_at  # the first step falls due when the journey begins
    wait = plus_seconds(settled if spec.from_ == "previous" else began, literal(int(spec.after.total_seconds())))
    due_at = case((wait > settled, wait), else_=settled)  # never before the step before it settled
    reach = window.start - campaign.spec.expire_after
    stopped_by = exit_reason(campaign, previous, began, window.now)
    key = journey + literal(f"#{step}")
    query = (
        select(previous.customer_id, key.label("occurrence_key"), due_at.label("due_at"), previous.order_id,
               previous.order_line_id, settled.label("previous_at"), previous.status.label("previous_status"),
               stopped_by.label("exit_reason"), Customer.email, Customer.accepts_marketing,
               Suppression.reason.label("suppressed"))
        .join(Customer, Customer.id == previous.customer_id)
        .outerjoin(Suppression, Suppression.email == Customer.email)
        .outerjoin(following, and_(following.campaign_id == campaign.id, following.occurrence_key == key))
        .where(previous.campaign_id == campaign.id, previous.step == step - 1, previous.status.in_(SETTLED),
               or_(previous.skip_reason.is_(None), previous.skip_reason.not_in([r.value for r in JOURNEY_EXITS])),
               previous.updated_at > reach - spec.after, following.id.is_(None),
               due_at <= window.now, due_at > reach,
               or_(stopped_by.is_not(None), audience_sql(audience(campaign, step), window)))
        .where(true() if customer_id is None else previous.customer_id == customer_id)
        .order_by(due_at, key)
    )
    if step > 2:
        query = query.join(first, and_(first.campaign_id == campaign.id, first.occurrence_key == journey))
    return query


def describe(campaign: Campaign, step: int, row: Mapping[str, Any], now: dt.datetime) -> str:
    """Why a later step is due, or which exit stopped it: true at `now`, when it is found."""
    spec, count = campaign.spec.steps[step - 1], len(campaign.spec.steps)
    if row["exit_reason"] is not None:
        return ended(campaign, step, row["exit_reason"])
    wait = format_duration(spec.after)
    since = (f"step {step - 1} was {row['previous_status']}" if spec.from_ == "previous"
             else "the journey began")
    return (f"step {step} of {count}: {wait} after {since} "
            f"(due {row['due_at']:%Y-%m-%d %H:%M} UTC, {relative(row['due_at'], now)})")


def later_steps(campaign: Campaign, window: Window,
                customer_id: int | None = None) -> Iterator[tuple[int, Select[Any]]]:
    """Each later step of a journey with its select, in order (nothing for a campaign of one email)."""
    for step in campaign.step_numbers[1:]:
        yield step, step_select(campaign, step, window, customer_id)
