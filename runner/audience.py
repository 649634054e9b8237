"""Audience filters: campaign conditions compiled to SQL over the customer row and its tags."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, exists, select, true

from .campaigns import Condition
from .models import Customer, CustomerTag

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


def _value(field: str, value: Any) -> Any:
    if field == "total_spent":  # written in major units, stored in cents
        return round(float(value) * 100)
    if field == "email" and isinstance(value, str):
        return value.strip().lower()
    return value


def _has_tags(tags: str | list[str]) -> ColumnElement[bool]:
    wanted = [tags] if isinstance(tags, str) else tags
    return exists(select(CustomerTag.tag).where(
        CustomerTag.customer_id == Customer.id, CustomerTag.tag.in_([t.strip().lower() for t in wanted])))


def condition_sql(condition: Condition, now: dt.datetime) -> ColumnElement[bool]:
    op, value = condition.operator
    if op == "includes":
        return _has_tags(value)
    if op == "excludes":
        return ~_has_tags(value)
    column: Any = _COLUMNS[condition.field]
    if op == "older_than":
        return column <= now - value
    if op == "within":
        return column > now - value
    if op == "is_set":
        return column.is_not(None) if value else column.is_(None)
    if op in ("in", "not_in"):
        values = [_value(condition.field, v) for v in value]
        return column.in_(values) if op == "in" else column.not_in(values)
    value = _value(condition.field, value)
    return {
        "eq": lambda: column == value, "ne": lambda: column != value,
        "gt": lambda: column > value, "gte": lambda: column >= value,
        "lt": lambda: column < value, "lte": lambda: column <= value,
    }[op]()


def audience_sql(conditions: list[Condition], now: dt.datetime) -> ColumnElement[bool]:
    """All conditions joined with AND (true for an empty audience)."""
    clauses = [condition_sql(c, now) for c in conditions]
    if not clauses:
        return true()
    result = clauses[0]
    for clause in clauses[1:]:
        result = result & clause
    return result
