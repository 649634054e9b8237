"""Everything the store holds about one customer, as one JSON document (the right of access).

The document has the customer's profile and one list per entry of SECTIONS, each read with one
or two indexed queries; a table that comes to hold data about a customer adds one line there.
Rows are found by the customer's id and, where a table keys them by address, by the address
and its keyed hash (when it was forgotten before): an address that is suppressed but no
customer's is answered too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, false, or_, select
from sqlmodel import Session, SQLModel

from ..models import (
    Checkout,
    CheckoutLine,
    ConsentChange,
    Customer,
    CustomerTag,
    Event,
    NpsResponse,
    Order,
    OrderLine,
    Send,
    Suppression,
    SuppressionHistory,
)
from .forgotten import hash_key, hashed_address, requested_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    """Whom an export is about: the customer row holding the address (if any) and the forms the
    address takes in the store (itself, and its keyed hash once a hash key exists)."""

    customer_id: int | None
    addresses: tuple[str, ...]


Section = Callable[[Connection, Subject], list[Any]]


def _plain(value: Any) -> Any:
    """A stored value as JSON has it: instants in ISO 8601 UTC (the store keeps naive UTC), dates in ISO."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _rows(conn: Connection, model: type[SQLModel], where: Any, order_by: Any) -> list[dict[str, Any]]:
    table = model.__table__  # type: ignore[attr-defined]
    result = conn.execute(select(table).where(where).order_by(order_by, *table.primary_key.columns))
    return [{name: _plain(value) for name, value in row.items()} for row in result.mappings()]


def rows_of(model: type[SQLModel], order_by: Any, *, customer: Any = None, address: Any = None) -> Section:
    """A section listing, oldest first, the rows of `model` whose `customer` column is the customer's
    id or (for rows of no customer) whose `address` column holds one of the subject's addresses."""
    def section(conn: Connection, subject: Subject) -> list[Any]:
        by_customer = customer == subject.customer_id if customer is not None and subject.customer_id else false()
        by_address = false()
        if address is not None:
            by_address = address.in_(subject.addresses)
            if customer is not None:  # rows of a customer are that customer's, whatever address they name
                by_address = and_(customer.is_(None), by_address)
        return _rows(conn, model, or_(by_customer, by_address), order_by)
    return section


def _tags(conn: Connection, subject: Subject) -> list[Any]:
    return list(conn.execute(select(CustomerTag.tag).where(CustomerTag.customer_id == subject.customer_id)
                             .order_by(CustomerTag.tag)).scalars())


def _orders(conn: Connection, subject: Subject) -> list[Any]:
    orders = _rows(conn, Order, Order.customer_id == subject.customer_id, Order.placed_at)
    lines: dict[int, list[dict[str, Any]]] = {order["id"]: [] for order in orders}
    for line in _rows(conn, OrderLine, OrderLine.customer_id == subject.customer_id, OrderLine.order_id):
        lines[line["order_id"]].append(line)
    return [order | {"lines": lines[order["id"]]} for order in orders]


def _checkouts(conn: Connection, subject: Subject) -> list[Any]:
    checkouts = _rows(conn, Checkout, Checkout.customer_id == subject.customer_id, Checkout.created_at)
    lines: dict[int, list[dict[str, Any]]] = {checkout["id"]: [] for checkout in checkouts}
    for line in _rows(conn, CheckoutLine, CheckoutLine.checkout_id.in_(list(lines)), CheckoutLine.id):
        lines[line["checkout_id"]].append(line)
    return [checkout | {"lines": lines[checkout["id"]]} for checkout in checkouts]


SECTIONS: dict[str, Section] = {
    "tags": _tags,
    "consent_history": rows_of(ConsentChange, ConsentChange.at, customer=ConsentChange.customer_id),
    "orders": _orders,
    "checkouts": _checkouts,
    "sends": rows_of(Send, Send.created_at, customer=Send.customer_id),
    "events": rows_of(Event, Event.occurred_at, customer=Event.customer_id, address=Event.email),
    "nps_responses": rows_of(NpsResponse, NpsResponse.answered_at, customer=NpsResponse.customer_id),
    "suppressions": rows_of(Suppression, Suppression.created_at, address=Suppression.email),
    "suppression_history": rows_of(SuppressionHistory, SuppressionHistory.at, address=SuppressionHistory.email),
}


def export_customer(session: Session, email: str, now: dt.datetime) -> dict[str, Any]:
    """The customer with this address and everything held about them, ready for `json.dumps`.

    `customer` is None when no customer has the address; `forgotten` says the address was erased
    on request before (its keyed hash is suppressed). Changes nothing. Raises LifecycleError when
    `email` is not an address.
    """
    address = requested_address(email)
    conn = session.connection()
    customer = _rows(conn, Customer, Customer.email == address, Customer.id)
    key = hash_key(conn)
    hashed = hashed_address(key, address) if key is not None else None
    subject = Subject(customer[0]["id"] if customer else None, (address, hashed) if hashed else (address,))
    document: dict[str, Any] = {
        "email": address,
        "exported_at": _plain(now),
        "forgotten": False,
        "customer": customer[0] if customer else None,
    }
    for name, section in SECTIONS.items():
        document[name] = section(conn, subject)
    document["forgotten"] = any(row["email"] == hashed for row in document["suppressions"])
    log.info("export: %s", describe(document))
    return document


def describe(document: dict[str, Any]) -> str:
    """One line saying what an export holds; it never contains the address."""
    counts = ", ".join(f"{name} {len(document[name])}" for name in SECTIONS)
    if document["customer"] is not None:
        return f"customer {document['customer']['id']}: {counts}"
    if document["forgotten"]:
        return ("this address was forgotten (erased on request): the store keeps only a keyed hash of it "
                "on the suppression list")
    held = counts if any(document[name] for name in SECTIONS) else "nothing"
    return f"no customer has this address; the store holds {held}"


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
