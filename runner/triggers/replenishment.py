"""`replenishment`: a product bought with a consumption cycle is about to run out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import (
    ColumnCollection,
    ColumnElement,
    DateTime,
    Select,
    and_,
    bindparam,
    exists,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import aliased

from ..asof import Instant, not_cancelled_by
from ..durations import Duration
from ..models import Order, OrderLine
from ..sql import as_text, plus_seconds
from .base import Trigger, TriggerParams, Window, occurrence_select, relative


class ReplenishmentParams(TriggerParams):
    cycles: dict[str, Duration] = Field(min_length=1)
    lead: Duration = dt.timedelta(0)
    max_quantity: int = Field(default=6, ge=1)
    recommend_bought: bool = True  # a reminder to buy again may well suggest the customer's other staples

    @field_validator("cycles")
    @classmethod
    def _positive(cls, cycles: dict[str, dt.timedelta]) -> dict[str, dt.timedelta]:
        for pattern, cycle in cycles.items():
            if cycle <= dt.timedelta(0):
                raise ValueError(f"the cycle of {pattern!r} must be longer than 0")
        return cycles


def like_pattern(sku_glob: str) -> str:
    """`COFFEE-*` -> `COFFEE-%`, escaping LIKE's own wildcards."""
    escaped = sku_glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


class ReplenishmentTrigger(Trigger):
    """One occurrence per matching order line, due at placed_at + cycle x quantity - lead.

    The first pattern that matches a SKU gives its cycle; quantity scaling stops at
    `max_quantity`. The evaluation searches only the slices of placed_at that can fall due in
    the window (`_statement`). A later
    order of the same SKU by the same customer (not cancelled, placed by `now`) cancels it.
    """

    type_name = "replenishment"
    about = "order_line"
    Params = ReplenishmentParams
    params: ReplenishmentParams

    def __init__(self, params: ReplenishmentParams) -> None:
        super().__init__(params)
        self._statements: dict[str, Select[Any]] = {}
        # each slice's time from placed_at to due, which `_bound` needs per evaluation: building the
        # slices' conditions again for them cost more than the rest of an hour's evaluation
        self._spans = [span for _, span in self.slices()]

    def occurrences(self, window: Window) -> list[Select[Any]]:
        return self._bound(window, "occurrences")

    def candidates(self, window: Window) -> list[Select[Any]]:
        return self._bound(window, "candidates")

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        reordered = _reordered(occ.customer_id, occ.sku, occ.line_placed_at, at, as_of=True)
        # a lead longer than the cycle makes the line due before it was bought
        return and_(occ.line_placed_at <= at, not_cancelled_by(occ.cancelled_at, at), ~reordered)

    def slices(self) -> Iterator[tuple[ColumnElement[bool], dt.timedelta]]:
        """Each (pattern, quantity) slice of the order lines: its condition (the SKU matches this pattern
        and no earlier one; the quantity, as capped by max_quantity) and the time from placed_at to due."""
        p = self.params
        earlier: list[ColumnElement[bool]] = []
        for glob, cycle in p.cycles.items():
            matches = OrderLine.sku.like(like_pattern(glob), escape="\\")
            for quantity in range(1, p.max_quantity + 1):
                if quantity == p.max_quantity:  # quantities from max_quantity up count as max_quantity
                    held = OrderLine.quantity >= quantity if quantity > 1 else true()
                else:
                    held = OrderLine.quantity <= 1 if quantity == 1 else OrderLine.quantity == quantity
                yield and_(matches, *[~e for e in earlier], held), cycle * quantity - p.lead
            earlier.append(matches)

    def _bound(self, window: Window, kind: str) -> list[Select[Any]]:
        """The statement of `kind` built once (`_statement`), with the window's bounds as its parameters.
        An empty window (nothing new since the last evaluation) reads nothing."""
        if window.start >= window.now:
            return []
        bounds: dict[str, Any] = {"repl_start": window.start, "repl_now": window.now}
        for number, span in enumerate(self._spans):
            bounds[f"repl_low_{number}"], bounds[f"repl_high_{number}"] = window.start - span, window.now - span
        return [self._statement(kind).params(bounds)]

    def _statement(self, kind: str) -> Select[Any]:
        """One UNION ALL arm per slice, each a range search of the placed_at index as wide as the window,
        due at placed_at plus the slice's constant: the query reads the lines that can be due, not every
        line of the longest cycle's span. The slices are disjoint, so no line is found twice. Built once
        per trigger and kind, with the window's bounds left as named parameters: building two dozen arms
        costs more than finding an hour's occurrences."""
        if kind not in self._statements:
            start, now = bindparam("repl_start", type_=DateTime()), bindparam("repl_now", type_=DateTime())
            columns: tuple[Any, ...] = ()
            where: tuple[ColumnElement[bool], ...] = ()
            if kind == "occurrences":
                reordered = _reordered(OrderLine.customer_id, OrderLine.sku, OrderLine.placed_at, now)
                where = (Order.cancelled_at.is_(None), ~reordered)
            else:
                columns = (Order.cancelled_at, OrderLine.sku, OrderLine.placed_at.label("line_placed_at"))
            arms = []
            for number, (condition, span) in enumerate(self.slices()):
                due_at = plus_seconds(OrderLine.placed_at, literal(int(span.total_seconds())))
                low, high = (bindparam(f"repl_{edge}_{number}", type_=DateTime()) for edge in ("low", "high"))
                arms.append(
                    occurrence_select(customer_id=OrderLine.customer_id,
                                      occurrence_key=literal("line:") + as_text(OrderLine.id), due_at=due_at,
                                      order_id=OrderLine.order_id, order_line_id=OrderLine.id, detail=OrderLine.sku)
                    .add_columns(*columns)
                    .join(Order, Order.id == OrderLine.order_id)
                    .where(OrderLine.placed_at > low, OrderLine.placed_at <= high, condition, due_at > start,
                           due_at <= now, *where)
                )
            self._statements[kind] = union_all(*arms)  # type: ignore[assignment]  # a compound select, used as one
        return self._statements[kind]

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        when = relative(row["due_at"] + self.params.lead, now)
        return f"{row['detail']} {'should have run out' if when.endswith(' ago') else 'should run out'} {when}"


def _reordered(customer_id: Any, sku: Any, placed_at: Any, at: Instant, *, as_of: bool = False) -> ColumnElement[bool]:
    """The customer ordered the same SKU again after `placed_at` and by `at` (an index probe); the
    reorder counts unless cancelled: by `at` when `as_of`, ever otherwise (the store holds nothing later)."""
    later, later_order = aliased(OrderLine), aliased(Order)
    kept = not_cancelled_by(later_order.cancelled_at, at) if as_of else later_order.cancelled_at.is_(None)
    return exists(
        select(later.id)
        .join(later_order, later_order.id == later.order_id)
        .where(later.customer_id == customer_id, later.sku == sku, later.placed_at > placed_at,
               later.placed_at <= at, kept)
    )
