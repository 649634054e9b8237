"""`milestone`: the order with which a customer reaches a threshold (their Nth order, spending over X,
entering the VIP segment).

For each order placed in the window, what the customer had before it (orders, and spending in the
shop's currency) is counted over their earlier orders: one probe of the (customer_id, placed_at)
index per order, never a pass over every customer. The order crosses a threshold when the count
before it is below the threshold and the count with it is not. An order cancelled before the
crossing order was placed does not count; a cancelled order does not cross; orders of the same
instant count in the order of their ids.

Entering the VIP segment is reaching its spend threshold (runner/segments/), in every currency as the
segment counts it: the threshold in effect when the order was placed, read from the segment_threshold
table a nightly refresh fills (runner/segments/thresholds.py), never a ranking of every customer on a tick.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy import ColumnCollection, ColumnElement, Select, and_, case, func, literal, or_, select, true
from sqlalchemy.orm import aliased

from ..asof import Instant, not_cancelled_by
from ..durations import Duration
from ..models import Order
from ..money import Money, to_minor
from ..segments.thresholds import VIP, vip_threshold_at
from ..sql import as_text, plus_seconds
from .base import Trigger, TriggerParams, Window, delayed, occurrence_select, relative

_EARLIER = aliased(Order)  # the customer's orders before the crossing one; made once (its columns cost)


class MilestoneParams(TriggerParams):
    orders: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, description="order counts to celebrate: 5 is the customer's fifth order")
    spent: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=list,
        description="lifetime spending to celebrate, in major units of the shop's currency (LIFECYCLE_SHOP_CURRENCY)")
    segment: Literal["vip"] | None = Field(
        default=None,
        description="a segment to celebrate entering: vip is spending at or above the "
                    "LIFECYCLE_SEGMENT_VIP_PERCENTILE percentile (the threshold is refreshed nightly)")
    delay: Duration = dt.timedelta(0)

    @field_validator("segment", mode="before")
    @classmethod
    def _only_vip(cls, value: Any) -> Any:
        if value is not None and value != VIP:
            raise ValueError(f"only vip can be entered as a milestone (spending at or above the VIP percentile), "
                             f"not {value!r}; pick customers in the other segments with an audience `segment:`")
        return value

    @model_validator(mode="after")
    def _some_threshold(self) -> MilestoneParams:
        if not self.orders and not self.spent and not self.segment:
            raise ValueError("give at least one threshold: orders (e.g. [5]), spent (e.g. [500]) or segment (vip)")
        return self


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


class MilestoneTrigger(Trigger):
    """Key `milestone:<customer id>:orders:<N>`, `milestone:<customer id>:spent:<currency>:<minor units>` or
    `milestone:<customer id>:segment:vip`: once per threshold per customer, whichever order crosses it (a
    cancelled one's successor included).

    An order that crosses several thresholds is one email, about the one that says most: entering the
    VIP segment, else the order count it reaches (an order adds one order, so it reaches at most one),
    else the highest amount.
    The thresholds it passed over stay unsent; the customer's totals only grow, so they are not
    crossed again (unless cancellations bring the totals back below them).
    """

    type_name = "milestone"
    about = "order"
    Params = MilestoneParams
    params: MilestoneParams

    def occurrences(self, window: Window) -> list[Select[Any]]:
        return [self._crossings(window, live=True)]

    def candidates(self, window: Window) -> list[Select[Any]]:
        return [self._crossings(window, live=False)]

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        """The crossing order was not cancelled by then."""
        return not_cancelled_by(occ.cancelled_at, at)

    def _crossings(self, window: Window, *, live: bool) -> Select[Any]:
        """One query: each order placed in the window with what its customer had before it (one outer
        join on the (customer_id, placed_at) index, grouped by order), then one CASE naming the threshold
        it crosses, if any: entering the VIP segment first, then the order count, else the highest amount.
        `live`: only orders not cancelled; otherwise every order, with its cancellation for `still_due`."""
        _, in_window = delayed(Order.placed_at, self.params.delay, window)
        earlier = _EARLIER
        # what the customer had when the order was placed: a later cancellation does not undo a
        # crossing, so the answer is the same at every instant (live, at a past instant, simulated)
        before = and_(earlier.customer_id == Order.customer_id, not_cancelled_by(earlier.cancelled_at, Order.placed_at),
                      earlier.placed_at <= Order.placed_at,  # the index range; the tie on the instant below
                      or_(earlier.placed_at < Order.placed_at, earlier.id < Order.id))
        columns = [Order.id, Order.customer_id, Order.name, Order.placed_at, Order.currency, Order.total_cents,
                   Order.cancelled_at, func.count(earlier.id).label("orders_before"),
                   func.coalesce(func.sum(case((earlier.currency == window.currency, earlier.total_cents))),
                                 0).label("spent_before")]
        if self.params.segment == VIP:
            # the segment's spend counts every currency, as `lifecycle customers` and audiences count it
            columns += [func.coalesce(func.sum(earlier.total_cents), 0).label("all_spent_before"),
                        vip_threshold_at(Order.placed_at, window.segment_rules.vip_percentile).label("vip_threshold")]
        counted = (
            select(*columns)
            .outerjoin(earlier, before)
            .where(in_window, Order.cancelled_at.is_(None) if live else true())
            .group_by(Order.id)
        ).subquery("counted")
        order = counted.c
        whens = []
        if self.params.segment == VIP:  # no threshold recorded yet: NULL, which no WHEN takes
            whens.append((and_(order.all_spent_before < order.vip_threshold,
                               order.all_spent_before + order.total_cents >= order.vip_threshold),
                          literal("segment:vip")))
        counts = sorted(set(self.params.orders))
        whens += [(order.orders_before == count - 1, literal(f"orders:{count}")) for count in counts]
        amounts = sorted({to_minor(str(amount), window.currency) for amount in self.params.spent}, reverse=True)
        whens += [(and_(order.currency == window.currency, order.spent_before < cents,
                        order.spent_before + order.total_cents >= cents), literal(f"spent:{window.currency}:{cents}"))
                  for cents in amounts]
        crossed = case(*whens)
        query = (occurrence_select(customer_id=order.customer_id, order_id=order.id, detail=order.name,
                                   due_at=plus_seconds(order.placed_at,
                                                       literal(int(self.params.delay.total_seconds()))),
                                   occurrence_key=literal("milestone:") + as_text(order.customer_id) + literal(":")
                                   + crossed)
                 .where(crossed.is_not(None)))
        return query if live else query.add_columns(order.cancelled_at)

    @staticmethod
    def _threshold(occurrence_key: str) -> tuple[int | None, Money | None, str | None]:
        """The order count, the amount or the segment a key names."""
        kind, *rest = occurrence_key.split(":")[2:]
        if kind == "orders":
            return int(rest[0]), None, None
        if kind == "segment":
            return None, None, rest[0]
        return None, Money(int(rest[1]), rest[0]), None

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        count, amount, segment = self._threshold(row["occurrence_key"])
        reached = (f"is the customer's {ordinal(count)} order" if count
                   else f"takes their spending into the {segment.upper()} segment" if segment
                   else f"takes their spending to {amount} or more")
        return f"order {row['detail']} {reached}, placed {relative(row['due_at'] - self.params.delay, now)}"

    def facts(self, occurrence_key: str, customer: Mapping[str, Any]) -> dict[str, Any]:
        count, amount, segment = self._threshold(occurrence_key)
        if amount is not None:
            amount = Money(amount.cents, amount.currency, customer["locale"])
        return {"milestone": {"orders": count, "ordinal": ordinal(count) if count else None, "spent": amount,
                              "segment": segment}}

    def sample_key(self, customer_id: int, now: dt.datetime, currency: str) -> str:
        if self.params.segment:
            return f"milestone:{customer_id}:segment:{self.params.segment}"
        if self.params.orders:
            return f"milestone:{customer_id}:orders:{self.params.orders[0]}"
        return f"milestone:{customer_id}:spent:{currency}:{to_minor(str(self.params.spent[0]), currency)}"
