"""Replaying a campaign over a period: what ticks at every instant of a grid would have recorded.

A tick at instant t, from an empty ledger, records an occurrence the first time it finds it: due in
its window (t - max(expire_after, step), t] (t - expire_after at the first tick), still due as of t
and in the audience as of t. It is recorded as skipped (no consent, suppressed, or expired: due at
or before t - expire_after) or planned and sent at t. The ledger's unique key makes that first time
the only time.

Instead of evaluating every tick, each campaign is evaluated once per trigger select over the whole
period. Whether an occurrence is due and in the audience can change only when its customer places or
cancels an order, when the customer is created, when a time condition of the audience (`older_than`,
`within`) crosses its threshold, or (for `nps_score`) when the customer answers. So each candidate
occurrence is judged at the first tick at or after its due instant and at the first tick after each
such change within its window; the earliest tick where it passes is when a tick would have recorded
it. One query per trigger select does all of it, with the same trigger conditions (`candidates`,
`still_due`) and audience SQL the engine uses for a past instant, and the engine's rule for
skipping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import CTE, Connection, Select, and_, func, literal, or_, select, union_all
from sqlalchemy.orm import aliased

from ..asof import shifted
from ..audience import audience_sql
from ..campaigns import Campaign, Condition
from ..engine import CHUNK, skip_reason
from ..journeys.steps import audience
from ..models import Customer, NpsResponse, Order, SkipReason, Suppression
from ..segments import SegmentRules
from ..sql import plus_seconds, unions
from ..triggers.base import Window
from .grid import TickGrid

_SLACK = 1  # second: bounds below are loose on purpose; an extra judgement instant changes nothing
# Trigger selects evaluated together (the birthday trigger has one per day): compiling the query
# costs more than running it, and SQLite allows 500 terms in a compound select.
SELECTS_PER_QUERY = 50


@dataclass(frozen=True)
class SimulatedOccurrence:
    """One occurrence as the first tick that found it would have recorded it."""

    campaign_id: str
    occurrence_key: str
    customer_id: int
    due_at: dt.datetime
    tick_at: dt.datetime  # the tick that records it, and sends it unless it is skipped
    skip_reason: SkipReason | None

    @property
    def outcome(self) -> str:
        """"sent", or the skip reason."""
        return "sent" if self.skip_reason is None else self.skip_reason.value


@dataclass(frozen=True)
class Shape:
    """What the engine's windows know about the store besides the instant."""

    default_zone: ZoneInfo
    time_zones: tuple[str | None, ...]
    currency: str
    segment_rules: SegmentRules = field(default_factory=SegmentRules)


def reach(campaign: Campaign, grid: TickGrid) -> dt.timedelta:
    """How far back from a tick its window reaches: the previous tick or expire_after, whichever is
    earlier, and never beyond the trigger's own lookback."""
    span = max(campaign.spec.expire_after, grid.step)
    lookback = campaign.trigger.max_lookback
    return min(span, lookback) if lookback is not None else span


def simulate_campaign(conn: Connection, campaign: Campaign, grid: TickGrid, shape: Shape, *,
                      assume_consent: bool = False) -> Iterator[SimulatedOccurrence]:
    """Every occurrence that ticks over `grid` would have recorded for `campaign` (in no particular order);
    for a journey, of its first step: each later step follows the ledger's record of the one before it.

    `assume_consent` counts customers without marketing consent as if they had it: the size of a
    campaign on a store imported without consent (a transaction log). Suppressions still count."""
    window = Window(start=grid.start - campaign.spec.expire_after, now=grid.last, default_zone=shape.default_zone,
                    time_zones=shape.time_zones, currency=shape.currency, as_of=True,
                    segment_rules=shape.segment_rules)
    span = reach(campaign, grid)
    conditions = audience(campaign, 1 if campaign.spec.steps else None)  # a journey: its first step only
    queries = campaign.trigger.candidates(window)
    for batch in unions(queries, SELECTS_PER_QUERY):
        candidate = batch.cte("candidate")
        first = _first_recorded(campaign, candidate, grid, span, conditions, window)
        final = (
            select(first, Customer.accepts_marketing, Suppression.reason.label("suppressed"))
            .join(Customer, Customer.id == first.c.customer_id)
            .outerjoin(Suppression, Suppression.email == Customer.email)
        )
        for row in conn.execute(final.execution_options(yield_per=CHUNK)).mappings():
            tick_at, due_at = row["tick_at"], row["due_at"]
            yield SimulatedOccurrence(
                campaign_id=campaign.id, occurrence_key=row["occurrence_key"], customer_id=row["customer_id"],
                due_at=due_at, tick_at=tick_at,
                skip_reason=skip_reason(campaign, row["suppressed"] is not None,
                                        row["accepts_marketing"] or assume_consent, due_at, tick_at))


def _first_recorded(campaign: Campaign, candidate: CTE, grid: TickGrid, span: dt.timedelta,
                    conditions: list[Condition], window: Window) -> Any:
    """Per occurrence key: the earliest judgement instant at which it is visible, due and in the audience."""
    point = union_all(*_judgement_points(candidate, grid, span, conditions, window.segment_rules)).subquery("point")
    p = point.c
    in_window = and_(p.tick_at >= p.due_at, p.due_at > shifted(p.tick_at, -span))
    if span >= grid.step:  # the first tick at or after the due instant is within reach: no need to compute it
        in_window = or_(p.first_tick == 1, in_window)
    passing = (
        select(p.occurrence_key, p.customer_id, p.due_at, p.tick_at)
        .join(Customer, Customer.id == p.customer_id)
        .where(p.tick_at <= grid.last, in_window,
               campaign.trigger.still_due(p, p.tick_at), audience_sql(conditions, window, at=p.tick_at))
    ).subquery("passing")
    return (select(passing.c.occurrence_key, passing.c.customer_id, func.min(passing.c.due_at).label("due_at"),
                   func.min(passing.c.tick_at).label("tick_at"))
            .group_by(passing.c.occurrence_key, passing.c.customer_id)
            .subquery("first"))


def _judgement_points(candidate: CTE, grid: TickGrid, span: dt.timedelta, conditions: list[Condition],
                      rules: SegmentRules) -> list[Select[Any]]:
    """The candidate rows, each with every tick at which its verdict may differ from the tick before:
    the first tick at or after its due instant, and the first after each change of its customer
    (an order placed or cancelled, the account created, a time condition crossing, a score given) in its
    window."""
    c = candidate.c
    columns = list(c)
    seconds = int(span.total_seconds())

    def near(stamp: Any, plus: dt.timedelta = dt.timedelta(0)) -> Any:
        """`stamp + plus` falls after the due instant and within the window's reach of it."""
        shift = int(plus.total_seconds())
        return and_(stamp > plus_seconds(c.due_at, -shift - _SLACK), stamp <= plus_seconds(c.due_at, seconds - shift))

    def at(stamp: Any, plus: dt.timedelta = dt.timedelta(0), *, first: bool = False) -> tuple[Any, Any]:
        return grid.first_at_or_after_sql(stamp, plus).label("tick_at"), literal(int(first)).label("first_tick")

    order, customer = aliased(Order), aliased(Customer)
    by_customer = order.customer_id == c.customer_id
    points = [
        select(*columns, *at(c.due_at, first=True)),
        select(*columns, *at(order.placed_at)).join(order, and_(by_customer, near(order.placed_at))),
        select(*columns, *at(order.cancelled_at)).join(order, and_(by_customer, near(order.cancelled_at))),
        select(*columns, *at(customer.created_at)).join(
            customer, and_(customer.id == c.customer_id, near(customer.created_at))),
    ]
    if any(condition.field == "nps_score" for condition in conditions):  # the latest score changes
        answer = aliased(NpsResponse)
        points.append(select(*columns, *at(answer.changed_at)).join(
            answer, and_(answer.customer_id == c.customer_id, near(answer.changed_at))))
    for condition in conditions:
        op, value = condition.operator
        if condition.field == "segment":
            points += _segment_points(condition.segments, rules, c, at, near)
            continue
        if op not in ("older_than", "within"):
            continue
        if condition.field in ("last_order_at", "first_order_at"):  # an order's instant, plus the duration
            points.append(select(*columns, *at(order.placed_at, value)).join(
                order, and_(by_customer, near(order.placed_at, value))))
        else:  # a column of the customer row
            column = getattr(customer, condition.field)
            points.append(select(*columns, *at(column, value)).join(
                customer, and_(customer.id == c.customer_id, near(column, value))))
    return points


def _segment_points(names: list[str], rules: SegmentRules, c: Any, at: Any, near: Any) -> list[Select[Any]]:
    """The ticks at which a customer's segment may change besides their own orders placed or cancelled:
    when one of their orders becomes `lapsed_after` old and, for the percentile segments (whose
    threshold every buyer moves), after anyone's order placed or cancelled."""
    points = []
    order = aliased(Order)
    if "lapsed" in names:
        points.append(select(*c, *at(order.placed_at, rules.lapsed_after)).join(
            order, and_(order.customer_id == c.customer_id, near(order.placed_at, rules.lapsed_after))))
    if {"vip", "high_aov"} & set(names):
        points += [select(*c, *at(order.placed_at)).join(order, near(order.placed_at)),
                   select(*c, *at(order.cancelled_at)).join(order, near(order.cancelled_at))]
    return points
