"""Erasing a customer's personal data on request, keeping what the shop's figures and the law need.

Erased: name, email (replaced by `forgotten-<id>`, which is not an address), the Shopify customer
id, birthday, time zone and locale (derived from their address and language), consent date,
tags, abandoned checkouts with their carts and recovery links, the ledger's reasons and errors (they
can name a birthday or quote the address), and the address itself wherever the suppression list held it.
Kept: the customer row's id and order aggregates, orders with their lines (amounts and dates for
the shop's figures), the ledger's rows with their statuses and times (counts and reports), the
consent history (the record of consent the law asks for; it holds no personal data).

Two suppressions stay behind, and no column joins them: the erased row's placeholder (so the
engine's unchanged join skips it in every campaign, transactional ones too) and the keyed hash
of the address (so an import of the same address is recognised and suppressed again).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlmodel import Session

from ..models import (
    Checkout,
    CheckoutLine,
    Customer,
    CustomerTag,
    Event,
    Send,
    Suppression,
    SuppressionAction,
    SuppressionHistory,
    SuppressionReason,
    normalise_email,
)
from ..sql import dialect_insert
from .consent import FORGET, withdraw_consent
from .forgotten import ensure_hash_key, erased_addresses, hashed_address, requested_address

log = logging.getLogger(__name__)


def placeholder(customer_id: int) -> str:
    """What an erased customer's email becomes: unique per customer, never an address."""
    return f"forgotten-{customer_id}"


@dataclass(frozen=True)
class Erasure:
    """What one `forget` did. `customer_id` is the row erased now (None when no customer had the
    address); `already_forgotten` says the address's hash was on the suppression list before."""

    customer_id: int | None
    already_forgotten: bool

    def summary(self) -> str:
        """One line for the user and the log; it never contains the address."""
        if self.customer_id is not None:
            return (f"customer {self.customer_id} forgotten: personal data erased, orders' amounts and the "
                    "ledger's statuses kept, the address kept only as a keyed hash on the suppression list")
        if self.already_forgotten:
            return "already forgotten: the store holds only a keyed hash of this address; nothing left to erase"
        return ("no customer has this address; its keyed hash is now on the suppression list, so an import "
                "will not bring it back")


def _erase_profile(conn: Connection, customer_id: int, now: dt.datetime) -> None:
    withdraw_consent(conn, Customer.id == customer_id, now, FORGET)
    conn.execute(update(Customer).where(Customer.id == customer_id).values(
        email=placeholder(customer_id), external_id=None, first_name="", last_name="", birthday=None,
        birthday_md=None, time_zone=None, locale=None, consent_at=None))


def _erase_tags(conn: Connection, customer_id: int, now: dt.datetime) -> None:
    conn.execute(delete(CustomerTag).where(CustomerTag.customer_id == customer_id))


def _erase_checkouts(conn: Connection, customer_id: int, now: dt.datetime) -> None:
    """Unfinished checkouts count in no figure; their recovery links open the customer's checkout."""
    checkouts = select(Checkout.id).where(Checkout.customer_id == customer_id)
    conn.execute(delete(CheckoutLine).where(CheckoutLine.checkout_id.in_(checkouts)))
    conn.execute(delete(Checkout).where(Checkout.customer_id == customer_id))


def _erase_ledger_text(conn: Connection, customer_id: int, now: dt.datetime) -> None:
    conn.execute(update(Send).where(Send.customer_id == customer_id).values(reason="", last_error=None))


def _erase_events(conn: Connection, customer_id: int, now: dt.datetime) -> None:
    """The provider's events stay for the ledger's counts, without the address or the provider's detail
    (a bounce message, a clicked link with the address in it)."""
    conn.execute(update(Event).where(Event.customer_id == customer_id).values(
        email=placeholder(customer_id), detail=None))


def _add_suppression(conn: Connection, email: str, reason: str, now: dt.datetime, detail: str | None = None) -> None:
    """A suppression added by `forget`, with its history row, as the suppression list records every addition."""
    conn.execute(dialect_insert(conn, Suppression).values(
        email=email, reason=reason, created_at=now, detail=detail, source=FORGET)
        .on_conflict_do_nothing(index_elements=["email"]))
    conn.execute(insert(SuppressionHistory).values(email=email, action=SuppressionAction.ADDED.value, reason=reason,
                                                   source=FORGET, detail=detail, at=now))


def _suppress_placeholder(conn: Connection, customer_id: int, now: dt.datetime) -> None:
    _add_suppression(conn, placeholder(customer_id), SuppressionReason.FORGOTTEN.value, now)


# Each step erases one kind of data held on the customer row's id; a table that comes to hold
# personal data about a customer adds its step here.
CUSTOMER_ERASURES: tuple[Callable[[Connection, int, dt.datetime], None], ...] = (
    _erase_profile, _erase_tags, _erase_checkouts, _erase_ledger_text, _erase_events, _suppress_placeholder)


def _keep_only_the_hash(conn: Connection, address: str, hashed: str, already_forgotten: bool,
                        now: dt.datetime) -> None:
    """Leave the suppression list and its history holding the hash of the address, never the address.

    An existing suppression keeps its reason, date and history, re-keyed to the hash, but loses its
    detail (a bounce message can quote the address); without one, the hash is added with reason
    `forgotten`. Provider events that name the address and belong to no customer are deleted.
    """
    erased = "address erased on request"
    conn.execute(update(SuppressionHistory).where(SuppressionHistory.email == address)
                 .values(email=hashed, detail=None))
    conn.execute(delete(Event).where(Event.customer_id.is_(None), Event.email == address))
    if already_forgotten:
        conn.execute(delete(Suppression).where(Suppression.email == address))
        return
    rewritten = conn.execute(update(Suppression).where(Suppression.email == address)
                             .values(email=hashed, detail=erased)).rowcount
    if not rewritten:
        _add_suppression(conn, hashed, SuppressionReason.FORGOTTEN.value, now, erased)


def forget_customer(session: Session, email: str, now: dt.datetime) -> Erasure:
    """Erase the personal data held on the customer with this address and commit (see the module's
    docstring for what is erased and what is kept). Idempotent: forgetting twice changes nothing the
    second time. Raises LifecycleError when `email` is not an address."""
    address = requested_address(email)
    conn = session.connection()
    hashed = hashed_address(ensure_hash_key(conn), address)
    already = conn.execute(select(Suppression.id).where(Suppression.email == hashed)).scalar() is not None
    customer_id = conn.execute(select(Customer.id).where(Customer.email == address)).scalar()
    if customer_id is not None:
        for erase in CUSTOMER_ERASURES:
            erase(conn, customer_id, now)
    _keep_only_the_hash(conn, address, hashed, already, now)
    session.commit()
    erasure = Erasure(customer_id, already)
    log.info("forget: %s", erasure.summary())
    return erasure


def redact_late_events(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Provider event rows (dicts with `email`, `customer_id`, `detail`) as they may be stored when
    they arrive about an address after it was forgotten (a late bounce, an open of an old message):
    under the erased row's placeholder and without the provider's detail when they belong to a
    customer, not at all otherwise. One lookup per thousand addresses; none when nobody was forgotten."""
    erased = erased_addresses(conn, {normalise_email(row["email"]) for row in rows})
    if not erased:
        return rows
    kept = []
    for row in rows:
        if normalise_email(row["email"]) not in erased:
            kept.append(row)
        elif row["customer_id"] is not None:
            kept.append(row | {"email": placeholder(row["customer_id"]), "detail": None})
    return kept
