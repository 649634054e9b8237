"""`milestone`: the order with which a customer reaches a threshold (their Nth order, spending over X,
entering the VIP segment).

For each order placed in the window, what the customer had before it (orders, and spending in the
shop's currency) is counted over their earlier orders: one probe of the (customer_id, placed_at)
index per order, never a pass over every customer. The order crosses a threshold when the count
before it is below the threshold and the count with it is not. An order cancelled before the
crossing order was placed does not count; a cancelled order does not cross; orders of the same
instant count in the order of their ids.

Entering the VIP segment is reaching its spend threshold (runner/segments.py), in every currency as the
segment counts it: the threshold in effect when the order was placed, read from the segment_threshold
table a nightly refresh fills (runner/thresholds.py), never a ranking of every customer on a tick.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy import ColumnCollection, ColumnElement, Select, and_, false, func, literal, not_, or_, select, true
from sqlalchemy.orm import aliased

from ..asof import Instant, not_cancelled_by
from ..durations import Duration
from ..models import Order
from ..money import Money, to_minor
from ..sql import as_text
from ..thresholds import VIP, vip_threshold_at
from .base import Trigger, TriggerParams, Window, delayed, occurrence_select, relative


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
        return [query.where(Order.cancelled_at.is_(None)) for query in self._crossings(window)]

    def candidates(self, window: Window) -> list[Select[Any]]:
        return [query.add_columns(Order.cancelled_at) for query in self._crossings(window)]

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        """The crossing order was not cancelled by then."""
        return not_cancelled_by(occ.cancelled_at, at)

    def _crossings(self, window: Window) -> list[Select[Any]]:
        due_at, in_window = delayed(Order.placed_at, self.params.delay, window)
        earlier = aliased(Order)
        # what the customer had when the order was placed: a later cancellation does not undo a
        # crossing, so the answer is the same at every instant (live, at a past instant, simulated)
        before = and_(earlier.customer_id == Order.customer_id, not_cancelled_by(earlier.cancelled_at, Order.placed_at),
                      earlier.placed_at <= Order.placed_at,  # the index range; the tie on the instant below
                      or_(earlier.placed_at < Order.placed_at, earlier.id < Order.id))
        orders_before = select(func.count()).where(before).scalar_subquery()
        all_spent_before = select(func.coalesce(func.sum(earlier.total_cents), 0)).where(before).scalar_subquery()
        spent_before = (select(func.coalesce(func.sum(earlier.total_cents), 0))
                        .where(before, earlier.currency == window.currency).scalar_subquery())

        def crossing(key: str, crossed: ColumnElement[bool]) -> Select[Any]:
            return (occurrence_select(customer_id=Order.customer_id, due_at=due_at, order_id=Order.id,
                                      detail=Order.name,
                                      occurrence_key=literal("milestone:") + as_text(Order.customer_id)
                                      + literal(f":{key}"))
                    .where(in_window, crossed))

        queries: list[Select[Any]] = []
        not_vip: ColumnElement[bool] = true()
        if self.params.segment == VIP:
            threshold = vip_threshold_at(Order.placed_at, window.segment_rules.vip_percentile)
            # the segment's spend counts every currency, as `lifecycle customers` and audiences count it
            enters = all_spent_before.between(threshold - Order.total_cents, threshold - 1)
            queries.append(crossing("segment:vip", enters))
            not_vip = not_(func.coalesce(enters, false()))  # no threshold recorded yet: NULL, not entering
        counts = sorted(set(self.params.orders))
        queries += [crossing(f"orders:{count}", and_(orders_before == count - 1, not_vip)) for count in counts]
        amounts = sorted({to_minor(str(amount), window.currency) for amount in self.params.spent})
        for cents, above in zip(amounts, [*amounts[1:], None][:len(amounts)], strict=True):
            # before < cents <= before + total, with the subquery written once (BETWEEN evaluates it once)
            crossed = [Order.currency == window.currency, spent_before.between(cents - Order.total_cents, cents - 1),
                       not_vip]
            if above is not None:  # one email per order: the highest amount it crosses
                crossed.append(spent_before + Order.total_cents < above)
            if counts:  # ... and none when it crosses an order count, which has its own email
                crossed.append(orders_before.not_in([count - 1 for count in counts]))
            queries.append(crossing(f"spent:{window.currency}:{cents}", and_(*crossed)))
        return queries

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
