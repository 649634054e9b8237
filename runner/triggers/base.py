"""The trigger extension point: one required method, `occurrences(window)`, returning SQL selects.

Two optional methods let a trigger answer as of a past instant on a store that holds later orders
(`preview --at`, `tick --at`, `simulate`): `candidates(window)` and `still_due(occ, at)`.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnCollection, ColumnElement, Select, and_, literal, select, true

from ..asof import Instant
from ..segments import SegmentRules
from ..sql import plus_seconds

OCCURRENCE_COLUMNS = ("customer_id", "occurrence_key", "due_at", "order_id", "order_line_id", "detail")


@dataclass(frozen=True)
class Window:
    """The due instants a trigger must find: start < due_at <= now (naive UTC).

    `time_zones` lists the distinct customer time zones in the store (None for "shop default"),
    for triggers that fire at a local hour. `currency` is the shop's, for amounts in conditions.
    `as_of` says the store holds orders placed after `now`, so what was true at `now` must be
    derived from the orders rather than read from the customers' current aggregates.
    `segment_rules` are the thresholds of the customer segments an audience may name.
    """

    start: dt.datetime
    now: dt.datetime
    default_zone: ZoneInfo
    time_zones: tuple[str | None, ...] = (None,)
    currency: str = "USD"
    as_of: bool = False
    segment_rules: SegmentRules = field(default_factory=SegmentRules)


def occurrence_select(*, customer_id: Any, occurrence_key: Any, due_at: Any, detail: Any,
                      order_id: Any = None, order_line_id: Any = None) -> Select[Any]:
    """A select of exactly OCCURRENCE_COLUMNS, in order (None becomes SQL NULL)."""
    values = {"customer_id": customer_id, "occurrence_key": occurrence_key, "due_at": due_at,
              "order_id": order_id, "order_line_id": order_line_id, "detail": detail}
    return select(*((literal(None) if values[name] is None else values[name]).label(name)
                    for name in OCCURRENCE_COLUMNS))


def delayed(stamp: Any, delay: dt.timedelta, window: Window) -> tuple[ColumnElement[Any], ColumnElement[bool]]:
    """The due instant `stamp + delay`, and the condition that it falls in the window, written on
    the indexed column itself (bounds shifted by the delay) so the range scan uses its index."""
    due = plus_seconds(stamp, literal(int(delay.total_seconds())))
    return due, and_(stamp > window.start - delay, stamp <= window.now - delay)


class TriggerParams(BaseModel):
    """Base for a trigger's parameters: unknown keys are errors.

    `recommend_bought`: whether the emails' recommendations may offer what the customer bought
    recently (runner/recommend.py BOUGHT_LOOKBACK); a trigger about buying again defaults it to true.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    recommend_bought: bool = False


class Trigger(ABC):
    """Finds occurrences: (customer, stable key, due instant) for one campaign.

    `occurrences` returns selects whose columns are labelled exactly OCCURRENCE_COLUMNS:
    customer_id, occurrence_key (stable text: the same occurrence always has the same key),
    due_at (naive UTC), order_id and order_line_id (or NULL), and detail (short text for the
    human-readable reason). They must use indexes: no scan of every customer or order.

    `occurrences` may assume the store holds nothing placed after `window.now`, and read the
    customers' current aggregates. For a store that holds later orders, the engine asks instead for
    `candidates(window)` (every occurrence that could fall due in the window, whatever happened
    after its source), filtered by `still_due(occ, at)`. A trigger that keeps the defaults is
    evaluated from the store as it stands.
    """

    type_name: ClassVar[str]
    Params: ClassVar[type[TriggerParams]] = TriggerParams
    #: what an occurrence is about, so templates are validated against the context a send has:
    #: "customer" (no order), "order" (`order` and `lines`), "order_line" (also `line`) or "checkout"
    #: (`checkout`, the occurrence key naming it as `checkout:<id>`)
    about: ClassVar[Literal["customer", "order", "order_line", "checkout"]] = "customer"

    def __init__(self, params: TriggerParams) -> None:
        self.params = params

    #: how far back a window reaches at most, however long it is (None: as far as it says)
    max_lookback: ClassVar[dt.timedelta | None] = None

    @abstractmethod
    def occurrences(self, window: Window) -> list[Select[Any]]:
        """Selects of the occurrences due in the window."""

    def candidates(self, window: Window) -> list[Select[Any]]:
        """Selects of every occurrence that could fall due in the window: OCCURRENCE_COLUMNS, then
        any further columns `still_due` reads. Neither `max_lookback` nor what happened after the
        occurrence's source (a newer order, a cancellation) limits them."""
        return self.occurrences(window)

    def still_due(self, occ: ColumnCollection[str, Any], at: Instant) -> ColumnElement[bool]:
        """Whether a candidate row (the columns of a `candidates` select) is due as of `at`, a datetime
        or an SQL expression: nothing placed or cancelled by then cancels it. It may depend only on
        the customer's orders, their cancellations and the customer's creation, each at its instant
        (the simulation re-judges an occurrence at each of them)."""
        return true()

    def describe(self, row: Mapping[str, Any], now: dt.datetime) -> str:
        """A human-readable reason for one occurrence row, true at `now` (naive UTC), when it is found:
        an occurrence found days late or expired must not read as if it were fresh."""
        return f"{self.type_name}: {row['detail']} (due {row['due_at']:%Y-%m-%d %H:%M} UTC)"

    def facts(self, occurrence_key: str, customer: Mapping[str, Any]) -> dict[str, Any]:
        """What templates may read about one occurrence beyond the store's rows, as `occurrence.<name>`
        (the milestone crossed, the anniversary's year): read back from its stable key, with the
        customer as the template sees them (their locale, local dates). Nothing by default."""
        return {}

    def sample_key(self, customer_id: int, now: dt.datetime, currency: str) -> str:
        """A key of the shape this trigger makes for a customer at `now` in a shop selling in `currency`,
        so that `lifecycle validate` and test sends render templates with the facts a real send has."""
        return "sample"


def relative(moment: dt.datetime, now: dt.datetime) -> str:
    """How far `moment` is from `now` in whole units: "3 days ago", "in 5 hours", "1 minute ago", "now"."""
    seconds = int((now - moment).total_seconds())
    for size, unit, at_least in ((86400, "day", 2), (3600, "hour", 2), (60, "minute", 1)):
        count = abs(seconds) // size
        if count >= at_least:
            span = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"{span} ago" if seconds > 0 else f"in {span}"
    return "now"
