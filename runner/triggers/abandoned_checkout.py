"""`abandoned_checkout`: a set delay after a checkout was left unfinished, unless the customer bought since.

A checkout was abandoned when it was last touched (`checkout.abandoned_at`: Shopify's `Updated at`,
else `Created at`). It is recovered, and its reminder cancelled, once it was completed or once its
customer placed any order at or after the checkout's creation: the order that completed it, or another
one. Both are judged at an instant, so at a past instant an order placed later does not cancel it yet.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnCollection, ColumnElement, Select, and_, exists, literal, select
from sqlalchemy.orm import aliased

from ..asof import Instant, not_cancelled_by
from ..durations import Duration
from ..models import Checkout, Order
from ..sql import as_text
from .base import Trigger, TriggerParams, Window, delayed, occurrence_select, relative

KEY_PREFIX = "checkout:"
_LATER_ORDER = aliased(Order)  # made once: an alias builds its columns anew on first use


def checkout_id(occurrence_key: str) -> int:
    """The store's id of the checkout an occurrence key (`checkout:<id>`) is about."""
    return int(occurrence_key.removeprefix(KEY_PREFIX))


def open_at(customer_id: Any, created_at: Any, completed_at: Any, at: Instant) -> ColumnElement[bool]:
    """The checkout is still unfinished at `at`: not completed by then, and its customer placed no order
    from its creation until then (one probe of the orders' (customer_id, placed_at) index)."""
    order = _LATER_ORDER
    bought = exists(select(order.id).where(order.customer_id == customer_id, order.placed_at >= created_at,
                                           order.placed_at <= at))
    return and_(not_cancelled_by(completed_at, at), ~bought)


class AbandonedCheckoutParams(TriggerParams):
    delay: Duration = dt.timedelta(hours=4)


class AbandonedCheckoutTrigger(Trigger):
    """Key `checkout:<checkout id>`: once per checkout, due `delay` after it was abandoned."""

    type_name = "abandoned_checkout"
    about = "checkout"
    Params = AbandonedCheckoutParams
    params: AbandonedCheckoutParams

    def occurrences(self, window: Window) -> list[Select[Any]]:
        return [self._select(window).where(open_at(Checkout.customer_id, Checkout.created_at, Checkout.completed_at,
                                                   window.now))]

    def candidates(self, window: Window) -> list[Select[Any]]:
        return [self._select(window).add_columns(Checkout.created_at.label("checkout_created_at"),
                                                 Checkout.completed_at.label("checkout_completed_at"))]

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        return open_at(occ.customer_id, occ.checkout_created_at, occ.checkout_completed_at, at)

    def _select(self, window: Window) -> Select[Any]:
        due_at, in_window = delayed(Checkout.abandoned_at, self.params.delay, window)
        return (occurrence_select(customer_id=Checkout.customer_id, due_at=due_at, detail=Checkout.name,
                                  occurrence_key=literal(KEY_PREFIX) + as_text(Checkout.id))
                .where(in_window))

    def describe(self, row: dict[str, Any], now: dt.datetime) -> str:
        return f"checkout {row['detail']} abandoned {relative(row['due_at'] - self.params.delay, now)}"

    def sample_key(self, customer_id: int, now: dt.datetime, currency: str) -> str:
        return f"{KEY_PREFIX}0"
