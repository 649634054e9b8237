"""Audience filters: campaign conditions compiled to SQL over the customer row and its tags.

`nps_score` is the customer's latest Net Promoter Score answer given by the instant. Order figures
(order_count, total_spent, first/last order) come from the customer row's aggregates
when the store holds nothing after the evaluation instant, and from the orders live at the instant
otherwise (runner/asof.py), so a filter at a past instant answers as it would have then. A `segment`
condition always reckons from the orders live at the instant, with the rules `lifecycle customers` uses
(runner/segments/).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, true

from .asof import AGGREGATES, Instant, customer_aggregate_at, shifted
from .campaigns import Condition
from .models import Customer, CustomerTag, NpsResponse
from .money import to_minor
from .segments import in_segments
from .triggers.base import Window

_COLUMNS = {
    "order_count": Customer.order_count,
    "total_spent": Customer.total_spent_cents,
    "last_order_at": Customer.last_order_at,
    "first_order_at": Customer.first_order_at,
    "created_at": Customer.created_at,
    "accepts_marketing": Customer.accepts_marketing,
    "email": Customer.email,
    "time_zone": Customer.time_zone,
    "birthday": Customer.birthday,
    "first_name": Customer.first_name,
    "last_name": Customer.last_name,
}


def _value(field: str, value: Any, currency: str) -> Any:
    if field == "total_spent":  # written in major units, stored in minor units
        return to_minor(str(value), currency)
    if field == "email" and isinstance(value, str):
        return value.strip().lower()
    return value


def _has_tags(tags: str | list[str]) -> ColumnElement[bool]:
    wanted = [tags] if isinstance(tags, str) else tags
    return exists(select(CustomerTag.tag).where(
        CustomerTag.customer_id == Customer.id, CustomerTag.tag.in_([t.strip().lower() for t in wanted])))


def latest_nps_score(at: Instant) -> ColumnElement[Any]:
    """The score of the customer's latest Net Promoter Score answer given by `at` (NULL without one): a
    correlated probe of the (customer_id, changed_at) index. An answer changed after `at` is taken as
    not given yet, since the store keeps only the latest score of each email."""
    return (select(NpsResponse.score)
            .where(NpsResponse.customer_id == Customer.id, NpsResponse.changed_at <= at)
            .order_by(NpsResponse.changed_at.desc(), NpsResponse.id.desc()).limit(1)
            .correlate_except(NpsResponse).scalar_subquery())


def condition_sql(condition: Condition, window: Window, at: Instant | None = None) -> ColumnElement[bool]:
    """One condition, evaluated at `at`: window.now unless given (the simulation gives an instant per row).
    An explicit `at` always derives order figures from the orders; window.now does when window.as_of."""
    op, value = condition.operator
    now = window.now if at is None else at
    if op == "includes":
        return _has_tags(value)
    if op == "excludes":
        return ~_has_tags(value)
    if condition.field == "segment":  # as `lifecycle customers` counts them, as of the same instant
        member = in_segments(condition.segments, window.segment_rules, now)
        return member if op in ("eq", "in") else ~member
    column: Any = latest_nps_score(now) if condition.field == "nps_score" else _COLUMNS[condition.field]
    if condition.field in AGGREGATES and (at is not None or window.as_of):
        column = customer_aggregate_at(condition.field, now)
    if condition.field == "time_zone":  # as the emails see it: no zone means the shop's
        column = func.coalesce(column, window.default_zone.key)
    if op == "older_than":
        return column <= shifted(now, -value)
    if op == "within":
        return column > shifted(now, -value)
    if op == "is_set":
        return column.is_not(None) if value else column.is_(None)
    if op in ("in", "not_in"):
        values = [_value(condition.field, v, window.currency) for v in value]
        # SQL drops NULL from NOT IN and !=; an empty value is not one of those listed
        return column.in_(values) if op == "in" else column.not_in(values) | column.is_(None)
    value = _value(condition.field, value, window.currency)
    return {
        "eq": lambda: column == value, "ne": lambda: (column != value) | column.is_(None),
        "gt": lambda: column > value, "gte": lambda: column >= value,
        "lt": lambda: column < value, "lte": lambda: column <= value,
    }[op]()


def audience_sql(conditions: list[Condition], window: Window, at: Instant | None = None) -> ColumnElement[bool]:
    """All conditions joined with AND (true for an empty audience), evaluated at window.now (or `at`),
    over the Customer row of the enclosing query."""
    clauses = [condition_sql(c, window, at) for c in conditions]
    if not clauses:
        return true()
    result = clauses[0]
    for clause in clauses[1:]:
        result = result & clause
    return result
